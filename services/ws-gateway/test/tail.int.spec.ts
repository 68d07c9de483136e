import { randomUUID } from 'node:crypto';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
  type PostgresEventStore,
  START_POSITION,
} from '@chat/eventstore';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MembershipTail } from '../src/membership/tail.js';

let database: TestDatabase;
let store: PostgresEventStore;
/** Every position returned by an append, in order, with what it was. */
const log: { position: string; type: string; conversationId: string }[] = [];

const event = (type: string, data: Record<string, unknown>): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

const append = async (conversationId: string, e: NewEvent) => {
  const r = await store.append(`conversation-${conversationId}`, [e], 'any');
  log.push({ position: r.position, type: e.type, conversationId });
};

/** A store that counts its readAll calls: how many log scans the tail made. */
const counting = (inner: EventStore) => {
  let reads = 0;
  const wrapped: EventStore = Object.create(inner);
  wrapped.readAll = (options) => {
    reads++;
    return inner.readAll(options);
  };
  return { store: wrapped, reads: () => reads };
};

beforeAll(async () => {
  database = await createTestDatabase('membershiptail');
  await migrateEventStore(database.url);
  store = createPostgresEventStore({ connectionString: database.url, pollIntervalMs: 50 });
  // Ten conversations: started by alice with bob, carol joins each, messages between, bob leaves the odd ones.
  for (let i = 0; i < 10; i++) {
    const c = `c${i}`;
    await append(c, event('ConversationStarted', { conversationId: c, members: ['alice', 'bob'] }));
    await append(c, event('MessageSent', { conversationId: c, body: 'hi' }));
    await append(c, event('MemberJoined', { conversationId: c, userId: 'carol' }));
    if (i % 2) await append(c, event('MemberLeft', { conversationId: c, userId: 'bob' }));
  }
  const last = log.at(-1)!.position;
  await waitFor(async () => (await store.headPosition()) >= last, { what: 'log head' });
}, 60_000);

afterAll(async () => {
  await store?.close();
  await database?.drop();
});

const membershipAfter = (checkpoint: string) =>
  log.filter((l) => l.type !== 'MessageSent' && l.position > checkpoint).map((l) => l.position);

describe('MembershipTail', () => {
  it('gives every membership change after the checkpoint, in log order, and no messages', async () => {
    const tail = new MembershipTail(store, START_POSITION);
    const head = await store.headPosition();
    const changes = await tail.since(START_POSITION, head);
    expect(changes.map((c) => c.position)).toEqual(membershipAfter(START_POSITION));
    expect(changes[0]).toEqual({
      position: log[0]!.position,
      conversationId: 'c0',
      seq: 0,
      joined: ['alice', 'bob'],
      left: null,
    });
    expect(changes.find((c) => c.left === 'bob')?.conversationId).toBe('c1');
  });

  it('serves concurrent connects from one scan of the log', async () => {
    const { store: counted, reads } = counting(store);
    const tail = new MembershipTail(counted, START_POSITION);
    const head = await store.headPosition();
    const results = await Promise.all(Array.from({ length: 50 }, () => tail.since(START_POSITION, head)));
    for (const r of results) expect(r.map((c) => c.position)).toEqual(membershipAfter(START_POSITION));
    expect(reads()).toBe(1);
  });

  it('a connect whose checkpoint is older than the window (trimmed by a newer one) still gets its gap', async () => {
    const tail = new MembershipTail(store, START_POSITION, 4);
    const head = await store.headPosition();
    const newer = log[20]!.position;
    expect((await tail.since(newer, head)).map((c) => c.position)).toEqual(membershipAfter(newer));
    const older = log[5]!.position;
    expect((await tail.since(older, head)).map((c) => c.position)).toEqual(membershipAfter(older));
    // A window capped at 4 changes still answers completely.
    expect((await tail.since(START_POSITION, head)).map((c) => c.position)).toEqual(
      membershipAfter(START_POSITION),
    );
  });

  it('extends as the head moves, and starts over when the read model is past its end', async () => {
    const tail = new MembershipTail(store, START_POSITION);
    const first = await tail.since(START_POSITION, await store.headPosition());
    await append('c10', event('ConversationStarted', { conversationId: 'c10', members: ['dave'] }));
    const head = log.at(-1)!.position;
    await waitFor(async () => (await store.headPosition()) >= head, { what: 'log head' });
    const next = await tail.since(START_POSITION, head);
    expect(next.length).toBe(first.length + 1);
    expect(next.at(-1)).toMatchObject({ conversationId: 'c10', joined: ['dave'] });
    expect(await tail.since(head, head)).toEqual([]);
  });
});
