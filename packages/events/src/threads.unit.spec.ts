import { describe, expect, it } from 'vitest';
import { parseEvent } from './events.js';
import { decodeSearchCursor, encodeSearchCursor, searchQuery } from './search.js';
import { upcasters } from './upcasters.js';

const C = '11111111-1111-4111-8111-111111111111';
const M = '22222222-2222-4222-8222-222222222222';
const v1 = {
  conversationId: C,
  messageId: M,
  senderId: 'ann',
  body: 'hi',
  replyTo: null,
  sentAt: '2026-01-01T00:00:00.000Z',
};

describe('MessageSent with threads', () => {
  it('reads an event stored before threads unchanged: no thread fields, no upcaster needed', () => {
    const envelope = {
      id: M,
      type: 'MessageSent',
      streamId: `conversation-${C}`,
      revision: 1,
      position: '0'.repeat(32),
      occurredAt: v1.sentAt,
      data: v1,
      metadata: { userId: 'ann', correlationId: M, causationId: null, schemaVersion: 1 },
    };
    const read = upcasters.upcast(envelope);
    expect(parseEvent(read.type, read.data)).toEqual({ type: 'MessageSent', data: v1 });
  });

  it('refuses a thread root that is not a UUID or participants that are not user ids', () => {
    expect(() => parseEvent('MessageSent', { ...v1, threadRootId: 'x', threadParticipantIds: [] })).toThrow();
    expect(() =>
      parseEvent('MessageSent', { ...v1, threadRootId: M, threadParticipantIds: ['no spaces'] }),
    ).toThrow();
  });
});

describe('search query and cursor', () => {
  it('round-trips a cursor and refuses anything the server did not make', () => {
    const cursor = { rank: 0.0607927, conversationId: C, seq: 12 };
    expect(decodeSearchCursor(encodeSearchCursor(cursor))).toEqual(cursor);
    for (const forged of [
      '',
      'Zm9v',
      encodeSearchCursor({ ...cursor, seq: -1 }),
      btoa('[1,"x",1]'),
      btoa('[NaN]'),
    ]) {
      expect(decodeSearchCursor(forged), forged).toBeNull();
    }
  });

  it('trims q and refuses an empty, over-long or unstorable one', () => {
    expect(searchQuery.parse({ q: '  lunch  ' })).toMatchObject({ q: 'lunch', limit: 20 });
    for (const q of ['', '   ', 'x'.repeat(201), 'a\u0000b'])
      expect(searchQuery.safeParse({ q }).success, q).toBe(false);
  });
});
