import { SNIPPET_MARK_CLOSE, SNIPPET_MARK_OPEN } from '@chat/events';

/** A piece of a search snippet: plain text, highlighted (a match) or not. */
export type SnippetPart = { text: string; mark: boolean };

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

/** Undoes the server's escaping of `&<>"'`; any other `&…;` stays as written. */
const unescapeHtml = (s: string): string =>
  s.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ENTITIES[e]!);

/**
 * Splits a search snippet (escaped text whose only markup is `<mark>`…`</mark>`) into parts the page
 * renders as text nodes, so no part of it is ever parsed as HTML: a `<mark>` becomes a <mark> element,
 * anything else — even a tag the server failed to escape — is shown as the characters it is.
 */
export const snippetParts = (snippet: string): SnippetPart[] => {
  const parts: SnippetPart[] = [];
  let rest = snippet;
  for (let guard = 0; rest.length > 0 && guard < 1000; guard++) {
    const open = rest.indexOf(SNIPPET_MARK_OPEN);
    const close = open < 0 ? -1 : rest.indexOf(SNIPPET_MARK_CLOSE, open + SNIPPET_MARK_OPEN.length);
    if (open < 0 || close < 0) {
      parts.push({ text: unescapeHtml(rest), mark: false });
      break;
    }
    if (open > 0) parts.push({ text: unescapeHtml(rest.slice(0, open)), mark: false });
    parts.push({ text: unescapeHtml(rest.slice(open + SNIPPET_MARK_OPEN.length, close)), mark: true });
    rest = rest.slice(close + SNIPPET_MARK_CLOSE.length);
  }
  return parts.filter((p) => p.text.length > 0);
};
