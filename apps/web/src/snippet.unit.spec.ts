import { describe, expect, it } from 'vitest';
import { snippetParts } from './snippet.js';

// Search snippets are escaped text with <mark> around matches: the page shows them as text and marks,
// never as parsed HTML.

describe('snippetParts', () => {
  it('splits the marks out and unescapes the text between them', () => {
    expect(
      snippetParts(
        'x &lt; y &amp;&amp; &lt;img src=x onerror=alert(1)&gt; &quot;<mark>quokka</mark>&quot; it&#39;s',
      ),
    ).toEqual([
      { text: 'x < y && <img src=x onerror=alert(1)> "', mark: false },
      { text: 'quokka', mark: true },
      { text: '" it\'s', mark: false },
    ]);
  });

  it('marks several matches and keeps anything else, even stray markup, as plain characters', () => {
    expect(snippetParts('<mark>a</mark> and <mark>b</mark>')).toEqual([
      { text: 'a', mark: true },
      { text: ' and ', mark: false },
      { text: 'b', mark: true },
    ]);
    expect(snippetParts('<b>bold</b> <mark>open')).toEqual([{ text: '<b>bold</b> <mark>open', mark: false }]);
    expect(snippetParts('&amp;lt; &nbsp;')).toEqual([{ text: '&lt; &nbsp;', mark: false }]);
  });
});
