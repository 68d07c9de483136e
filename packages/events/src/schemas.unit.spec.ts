import { describe, expect, it } from 'vitest';
import { COMMAND_NAMES, commandShapes, createConversationBody, sendMessageBody } from './commands.js';
import { queryShapes } from './queries.js';
import { responseSchemas } from './routes.js';
import { parseStreamId } from './streams.js';
import { natsSubjects, subjectToken } from './subjects.js';
import { mentions, preview } from './text.js';
import { clientFrameSchema, frameCommand } from './ws.js';

const id = '0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9';

describe('command schemas', () => {
  it('accepts UUIDs in any case and returns them lower-case', () => {
    const parsed = sendMessageBody.parse({ messageId: id, body: 'hi' });
    expect(parsed.messageId).toBe(id.toLowerCase());
  });

  it('counts code points: 4,000 emoji pass, 4,001 fail; whitespace-only fails', () => {
    expect(sendMessageBody.safeParse({ messageId: id, body: '😀'.repeat(4000) }).success).toBe(true);
    expect(sendMessageBody.safeParse({ messageId: id, body: '😀'.repeat(4001) }).success).toBe(false);
    expect(sendMessageBody.safeParse({ messageId: id, body: ' \n\t ' }).success).toBe(false);
    expect(sendMessageBody.parse({ messageId: id, body: '  hi  ' }).body).toBe('hi');
  });

  it('refuses unknown fields', () => {
    const r = createConversationBody.safeParse({ kind: 'group', members: ['bob'], colour: 'red' });
    expect(r.success).toBe(false);
  });

  it('reads client frames by type', () => {
    expect(clientFrameSchema.parse({ type: 'ping', ref: 'r1' })).toEqual({ type: 'ping', ref: 'r1' });
    expect(clientFrameSchema.safeParse({ type: 'dance' }).success).toBe(false);
  });
});

describe('text rules', () => {
  it('finds whole-token mentions only', () => {
    expect(mentions('hi @bob', 'bob')).toBe(true);
    expect(mentions('hi @bob.', 'bob')).toBe(true);
    expect(mentions('@bob, look', 'bob')).toBe(true);
    expect(mentions('hi @bobby', 'bob')).toBe(false);
    expect(mentions('hi @bob.smith', 'bob')).toBe(false);
    expect(mentions('hi @bob.smith', 'bob.smith')).toBe(true);
    expect(mentions('mail bob@example.com', 'example.com')).toBe(false);
  });

  it('previews at most 200 code points', () => {
    expect([...preview('😀'.repeat(300))]).toHaveLength(200);
    expect(preview('😀'.repeat(300))).toBe('😀'.repeat(200));
    expect(preview(`${'a'.repeat(199)}😀😀`)).toBe(`${'a'.repeat(199)}😀`);
    expect(preview('short 😀 body')).toBe('short 😀 body');
    // A lone surrogate counts as one code point, as string iteration counts it.
    expect(preview(`\ud800${'b'.repeat(250)}`)).toBe(`\ud800${'b'.repeat(199)}`);
  });
});

describe('names', () => {
  it('encodes user ids into single NATS tokens and scopes subjects by prefix', () => {
    expect(subjectToken('a.b:c@d')).toBe('a~2eb~3ac~40d');
    const s = natsSubjects('t_run1');
    expect(s.user('a.b')).toBe('t_run1.user.a~2eb');
    expect(s.presenceBucket).toBe('t_run1_presence');
    expect(() => natsSubjects('bad prefix')).toThrow();
  });

  it('parses stream ids', () => {
    expect(parseStreamId(`receipts-${id}`)).toEqual({ category: 'receipts', id });
    expect(parseStreamId('nope')).toBeNull();
  });
});

describe('route shapes', () => {
  it('name every command by its key, and document every status of every route', () => {
    for (const name of COMMAND_NAMES) expect(commandShapes[name].name).toBe(name);
    for (const [name, shape] of Object.entries(queryShapes)) expect(shape.name).toBe(name);
    expect(Object.keys(responseSchemas(commandShapes.sendMessage)).sort()).toEqual([
      '200',
      '201',
      '400',
      '401',
      '404',
      '409',
      '413',
      '429',
      '503',
    ]);
  });

  it('build the send, read and typing frames from their commands, and split them back', () => {
    const frame = clientFrameSchema.parse({
      type: 'send',
      ref: 'r1',
      conversationId: id,
      messageId: id,
      body: ' hi ',
    });
    expect(frameCommand(frame as Extract<typeof frame, { type: 'send' }>)).toEqual({
      name: 'sendMessage',
      ack: true,
      params: { conversationId: id.toLowerCase() },
      body: { messageId: id.toLowerCase(), body: 'hi' },
    });
    const typing = clientFrameSchema.parse({ type: 'typing', conversationId: id });
    expect(frameCommand(typing as Extract<typeof typing, { type: 'typing' }>)).toEqual({
      name: 'typing',
      ack: false,
      params: { conversationId: id.toLowerCase() },
      body: {},
    });
    expect(clientFrameSchema.safeParse({ type: 'typing', conversationId: id, extra: 1 }).success).toBe(false);
  });
});
