import { randomUUID } from 'node:crypto';
import { migrateConsumers } from '@chat/consumer';
import {
  conversationStream,
  natsSubjects,
  receiptsStream,
  typingStream,
  type UserChannelMessage,
  userStream,
} from '@chat/events';
import { createEventStore, type EventStore, migrateEventStore, type NewEvent } from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { createTestDatabase, natsUrl, type TestDatabase, testSubjectPrefix, waitFor } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay } from '../src/index.js';

const logger = createLogger('relay-test', 'silent');
const meta = { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 };
const ev = (type: string, data: Record<string, unknown>): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: meta,
});

let db: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
let nats: NatsConnection;
const subjects = natsSubjects(testSubjectPrefix());

beforeAll(async () => {
  db = await createTestDatabase('relay');
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await migrateEventStore(pool);
  await migrateConsumers(pool);
  store = createEventStore({ databaseUrl: db.url, logger, scavengeIntervalMs: 0 });
  nats = await connect({ servers: natsUrl() });
});

afterAll(async () => {
  await nats?.close();
  await store?.close();
  await pool?.end();
  await db?.drop();
});

type Received = { subject: string; body: Record<string, unknown> };

const collect = (subject: string): Received[] => {
  const out: Received[] = [];
  nats.subscribe(subject, {
    callback: (_err, msg) => out.push({ subject: msg.subject, body: JSON.parse(msg.string()) }),
  });
  return out;
};

const runRelay = () => {
  const controller = new AbortController();
  const done = createRelay({ store, nats, subjects, pool, logger, registry: new Registry() }).run(
    controller.signal,
  );
  return {
    stop: async () => {
      controller.abort();
      await done;
    },
  };
};

describe('relay', () => {
  it('publishes every event in log order, membership also to the users, and resumes from its checkpoint', async () => {
    const c = randomUUID();
    const conv = collect(subjects.conversation(c));
    const bob = collect(subjects.user('bob@x.io'));
    const carol = collect(subjects.user('carol'));
    await nats.flush();

    await store.append(
      conversationStream(c),
      [
        ev('ConversationStarted', {
          conversationId: c,
          kind: 'group',
          title: 't',
          createdBy: 'alice',
          members: ['alice', 'bob@x.io'],
        }),
        ev('MessageSent', {
          conversationId: c,
          messageId: randomUUID(),
          senderId: 'alice',
          body: 'hi',
          replyTo: null,
          sentAt: new Date().toISOString(),
        }),
      ],
      'no_stream',
    );
    await store.append(
      receiptsStream(c),
      [
        ev('ConversationRead', {
          conversationId: c,
          userId: 'bob@x.io',
          upToSeq: 1,
          readAt: new Date().toISOString(),
        }),
      ],
      'any',
    );
    await store.append(
      typingStream(c),
      [ev('TypingStarted', { conversationId: c, userId: 'bob@x.io', at: new Date().toISOString() })],
      'any',
    );
    await store.append(
      userStream('alice'),
      [ev('ConversationMuted', { conversationId: c, userId: 'alice', until: null })],
      'any',
    );
    await store.append(
      conversationStream(c),
      [ev('MemberJoined', { conversationId: c, userId: 'carol', addedBy: 'alice' })],
      1,
    );

    const relay = runRelay();
    await waitFor(() => conv.length === 5, { what: 'five events on the conversation subject' });
    expect(conv.map((r) => r.body.type)).toEqual([
      'ConversationStarted',
      'MessageSent',
      'ConversationRead',
      'TypingStarted',
      'MemberJoined',
    ]);
    const positions = conv.map((r) => String(r.body.position));
    expect([...positions].sort()).toEqual(positions);
    await waitFor(() => bob.length === 1 && carol.length === 1, { what: 'membership on user subjects' });
    const toBob = bob[0]!.body as UserChannelMessage;
    expect(toBob.type).toBe('membership');
    expect(toBob.type === 'membership' && toBob.event.type).toBe('ConversationStarted');
    expect((carol[0]!.body as { event: { type: string } }).event.type).toBe('MemberJoined');
    await relay.stop();

    // A restart resumes after the checkpoint: only the new event is published.
    await store.append(
      conversationStream(c),
      [ev('MemberLeft', { conversationId: c, userId: 'carol', removedBy: 'alice' })],
      2,
    );
    const relay2 = runRelay();
    await waitFor(() => conv.length >= 6 && carol.length >= 2, { what: 'event after restart' });
    await new Promise((r) => setTimeout(r, 200));
    expect(conv.map((r) => r.body.type).slice(5)).toEqual(['MemberLeft']);
    expect((carol[1]!.body as { event: { type: string } }).event.type).toBe('MemberLeft');
    await relay2.stop();
  });
});
