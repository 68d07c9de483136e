import { describe, expect, it } from 'vitest';
import type { RawEnvelope } from './envelope.js';
import { UpcasterRegistry } from './upcasters.js';

// An older MessageSent shape: schema version 1 had `text` and `author` and no `replyTo`.
const legacyMessageSent: RawEnvelope = {
  id: '5a1d6a0e-3c8b-4f2a-9d0e-2b7e6c1f4a10',
  type: 'MessageSent',
  streamId: 'conversation-0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9',
  revision: 3,
  position: '00000000000000010000000000000004',
  occurredAt: '2026-01-02T03:04:05.678Z',
  data: {
    conversationId: '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9',
    messageId: 'c0ffee00-0000-4000-8000-000000000001',
    author: 'alice',
    text: 'hello',
    sentAt: '2026-01-02T03:04:05.678Z',
  },
  metadata: {
    userId: 'alice',
    correlationId: 'c0ffee00-0000-4000-8000-000000000002',
    causationId: null,
    schemaVersion: 1,
  },
};

const registry = () =>
  new UpcasterRegistry()
    .register('MessageSent', 1, ({ author, text, ...rest }) => ({ ...rest, senderId: author, body: text }))
    .register('MessageSent', 2, (data) => ({ replyTo: null, ...data }));

describe('upcasters', () => {
  it('lifts an old event through every step to the current schema version', () => {
    const upcast = registry().upcast(legacyMessageSent);
    expect(upcast.metadata.schemaVersion).toBe(3);
    expect(upcast.data).toEqual({
      conversationId: '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9',
      messageId: 'c0ffee00-0000-4000-8000-000000000001',
      senderId: 'alice',
      body: 'hello',
      replyTo: null,
      sentAt: '2026-01-02T03:04:05.678Z',
    });
    expect(legacyMessageSent.data).toHaveProperty('text', 'hello');
  });

  it('starts from the stored version, skipping steps the event already has', () => {
    const v2 = {
      ...legacyMessageSent,
      data: { senderId: 'bob', body: 'hi' },
      metadata: { ...legacyMessageSent.metadata, schemaVersion: 2 },
    };
    expect(registry().upcast(v2).data).toEqual({ senderId: 'bob', body: 'hi', replyTo: null });
  });

  it('leaves current events and types without upcasters untouched', () => {
    const current = { ...legacyMessageSent, metadata: { ...legacyMessageSent.metadata, schemaVersion: 3 } };
    expect(registry().upcast(current)).toBe(current);
    const other = { ...legacyMessageSent, type: 'MemberJoined' };
    expect(registry().upcast(other)).toBe(other);
  });

  it('fails loudly on a missing step instead of handing out a half-upcast event', () => {
    const gap = new UpcasterRegistry().register('MessageSent', 2, (d) => d);
    expect(() => gap.upcast(legacyMessageSent)).toThrow(/no upcaster for MessageSent from schema version 1/);
  });
});
