import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { runChatctl } from '@chat/chatctl';
import { type QuarantinedEvent, readCheckpoint } from '@chat/consumer';
import { migrateReadModels } from '@chat/db';
import { conversationStream, natsSubjects, receiptsStream, userStream } from '@chat/events';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
} from '@chat/eventstore';
import { createNotificationConsumer, migrateNotifier } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { createProjector } from '@chat/projection';
import { createRelay } from '@chat/relay';
import {
  consumerOutages,
  createTestDatabase,
  natsUrl,
  type TestDatabase,
  testEvent,
  testMessageSent,
  testSubjectPrefix,
  waitFor,
} from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// DESIGN.md guarantee 7 with the real consumers (projection, notifier, relay) on real Postgres and
// NATS: no event stops them. Poison is appended straight to the store, as a bug, an older build or an
// operator could have written it; the write path's validation is not what is tested here.

const APP = 'consumers-under-test';
const logger = createLogger('consumers-test', 'silent');
let database: TestDatabase;
let pool: pg.Pool;
let consumerPool: pg.Pool;
let store: EventStore;
let nats: NatsConnection;
const prefix = testSubjectPrefix();
const subjects = natsSubjects(prefix);
const registry = new Registry();
const stop = new AbortController();
let running: Promise<unknown>;
const published = new Map<string, string[]>();

beforeAll(async () => {
  database = await createTestDatabase('consumers');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // The consumers' connections, named so a test can terminate exactly them.
  consumerPool = new pg.Pool({ connectionString: database.url, max: 10, application_name: APP });
  consumerPool.on('error', () => {});
  await migrateEventStore(pool);
  await migrateReadModels(pool);
  await migrateNotifier(pool);
  store = createPostgresEventStore({ pool, pollIntervalMs: 50 });
  nats = await connect({ servers: natsUrl() });
  nats.subscribe(`${prefix}.conv.>`, {
    callback: (_err, msg) => {
      const { id } = msg.json<{ id: string }>();
      published.set(msg.subject, [...(published.get(msg.subject) ?? []), id]);
    },
  });
  await nats.flush();
  const deps = { store, pool: consumerPool, logger, registry, leaderRetryMs: 50 };
  running = Promise.all([
    createProjector(deps).run(stop.signal),
    createRelay({ ...deps, nats, subjects }).run(stop.signal),
    createNotificationConsumer({
      ...deps,
      subjects,
      publish: (subject, message) => nats.publish(subject, JSON.stringify(message)),
      webhook: false,
      batchSize: 500,
    }).run(stop.signal),
  ]);
});

afterAll(async () => {
  stop.abort();
  await running;
  await nats?.close();
  await store?.close();
  await consumerPool?.end();
  await pool?.end();
  await database?.drop();
});

const append = async (stream: string, ...events: NewEvent[]) =>
  (await store.append(stream, events, 'any')).position;

const chatctl = async (args: string[]) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const code = await runChatctl(args, {
    stdout: out,
    stderr: new PassThrough(),
    env: { DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: text };
};

const quarantined = async (): Promise<Record<string, string[]>> => {
  const { stdout } = await chatctl(['quarantine', 'list', '--json']);
  const byConsumer: Record<string, string[]> = {};
  for (const q of JSON.parse(stdout) as QuarantinedEvent[]) {
    byConsumer[q.consumer] = [...(byConsumer[q.consumer] ?? []), q.eventId];
  }
  return byConsumer;
};

/** Every consumer has applied (or quarantined) the log up to `position`. */
const allAt = (position: string) =>
  waitFor(
    async () => {
      for (const name of ['read_models', 'relay', 'notifier']) {
        if (((await readCheckpoint(pool, name)) ?? '') < position) return false;
      }
      return true;
    },
    { timeoutMs: 60_000, what: `every consumer at ${position}` },
  );

const count = async (sql: string, params: unknown[]) =>
  (await pool.query<{ n: number }>(sql, params)).rows[0]?.n ?? 0;

describe('no event can stop a consumer', () => {
  const c = randomUUID();
  const poison: Record<string, NewEvent> = {};

  it('quarantines what a consumer cannot apply, lists it, and the stream after it keeps flowing', async () => {
    const started = testEvent('ConversationStarted', {
      conversationId: c,
      kind: 'group',
      title: 'poison',
      createdBy: 'alice',
      members: ['alice', 'bob', 'carol'],
    });
    await append(conversationStream(c), started);
    for (const userId of ['bob', 'carol']) {
      await append(
        userStream(userId),
        testEvent('NotificationLevelSet', { conversationId: c, userId, level: 'all' }, userId),
      );
    }
    // A mute until a time JavaScript parses and Postgres refuses (issue 11): projection and notifier.
    poison.mute = testEvent(
      'ConversationMuted',
      { conversationId: c, userId: 'bob', until: '0000-01-01T00:00:00Z' },
      'bob',
    );
    await append(userStream('bob'), poison.mute);
    // Data failing its zod schema: projection and notifier (the relay publishes what is stored).
    poison.schema = testEvent('MessageSent', {
      conversationId: c,
      messageId: randomUUID(),
      senderId: 'alice',
      body: 42,
    });
    // A type this build does not know (a newer build's): every consumer passes it over, none quarantines it.
    const unknown = testEvent('PollCreated', { conversationId: c, pollId: randomUUID(), question: '?' });
    // Larger than the NATS server accepts: the relay.
    const maxPayload = nats.info?.max_payload ?? 1024 * 1024;
    poison.size = testEvent('AttachmentAdded', { conversationId: c, blob: 'x'.repeat(maxPayload + 1024) });
    await append(conversationStream(c), poison.schema, unknown, poison.size);

    const normal = [
      testMessageSent(c, 'hello @bob'),
      testMessageSent(c, 'second'),
      testMessageSent(c, 'third'),
    ];
    await append(conversationStream(c), ...normal.slice(0, 2));
    const read = testEvent(
      'ConversationRead',
      { conversationId: c, userId: 'bob', upToSeq: 5, readAt: new Date().toISOString() },
      'bob',
    );
    await append(receiptsStream(c), read);
    const until = '2999-01-01T00:00:00.000Z';
    await append(
      userStream('carol'),
      testEvent('ConversationMuted', { conversationId: c, userId: 'carol', until }, 'carol'),
    );
    const last = await append(conversationStream(c), normal[2]!);
    await allAt(last);

    // Projected: the three messages, bob's read, carol's mute; bob's poison mute is not applied.
    expect(
      await count('SELECT count(*)::int AS n FROM read_models.messages WHERE conversation_id = $1', [c]),
    ).toBe(3);
    const members = await pool.query<{ user_id: string; muted_until: Date | null; read_seq: number }>(
      'SELECT user_id, muted_until, read_seq FROM read_models.members WHERE conversation_id = $1 ORDER BY user_id',
      [c],
    );
    expect(members.rows.map((m) => [m.user_id, m.muted_until?.toISOString() ?? null, m.read_seq])).toEqual([
      ['alice', null, 6],
      ['bob', null, 5],
      ['carol', until, 0],
    ]);
    // Notified: bob of every message (his poison mute never took effect), carol until her mute.
    const notified = await pool.query<{ recipient_id: string; n: number }>(
      `SELECT recipient_id, count(*)::int AS n FROM notifier.notifications
        WHERE conversation_id = $1 GROUP BY recipient_id ORDER BY recipient_id`,
      [c],
    );
    expect(notified.rows).toEqual([
      { recipient_id: 'bob', n: 3 },
      { recipient_id: 'carol', n: 2 },
    ]);
    // Relayed in log order (at least once): everything of the conversation but what NATS refuses.
    const expected = [started, poison.schema, unknown, normal[0]!, normal[1]!, read, normal[2]!].map(
      (e) => e.id,
    );
    await waitFor(() => new Set(published.get(subjects.conversation(c))).size === expected.length, {
      what: 'relayed events',
    });
    expect([...new Set(published.get(subjects.conversation(c)))]).toEqual(expected);

    expect(await quarantined()).toEqual({
      notifier: [poison.mute.id, poison.schema.id],
      read_models: [poison.mute.id, poison.schema.id],
      relay: [poison.size.id],
    });
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^projector_quarantined_total 2$/m);
    expect(metrics).toMatch(/^notifier_quarantined_total 2$/m);
    expect(metrics).toMatch(/^relay_quarantined_total 1$/m);
  });

  it('chatctl: stats count them, a retry that fails again leaves them listed, a rebuild sets them aside again', async () => {
    const stats = JSON.parse((await chatctl(['stats', '--json'])).stdout) as {
      checkpoints: { name: string; quarantined: number; lagEvents: number }[];
    };
    expect(stats.checkpoints.map((cp) => [cp.name, cp.quarantined])).toEqual([
      ['notifier', 2],
      ['read_models', 2],
      ['relay', 1],
    ]);

    const retried = await chatctl(['quarantine', 'retry', 'notifier', poison.mute!.id, '--wait-ms', '20000']);
    expect(retried.stdout).toMatch(/failed again; it stays quarantined/);
    expect(retried.code).toBe(4);
    const relay = await chatctl(['quarantine', 'retry', 'relay', '--all', '--wait-ms', '20000']);
    expect(relay.code).toBe(4);
    const [size] = JSON.parse(
      (await chatctl(['quarantine', 'list', '--consumer', 'relay', '--json'])).stdout,
    );
    expect(size).toMatchObject({ eventId: poison.size!.id, attempts: 4, retryRequestedAt: null });
    expect(size.error).toMatch(/MAX_PAYLOAD_EXCEEDED/);

    const before = await pool.query('SELECT * FROM read_models.messages ORDER BY conversation_id, seq');
    const rebuilt = await chatctl(['rebuild', 'read-models', '--no-progress']);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(/2 events could not be applied/);
    expect(
      (await pool.query('SELECT * FROM read_models.messages ORDER BY conversation_id, seq')).rows,
    ).toEqual(before.rows);
    expect((await quarantined()).read_models).toEqual([poison.mute!.id, poison.schema!.id]);
    // The live projection goes on after the swap.
    const after = await append(conversationStream(c), testMessageSent(c, 'after the rebuild'));
    await allAt(after);
    expect(
      await count('SELECT count(*)::int AS n FROM read_models.messages WHERE conversation_id = $1', [c]),
    ).toBe(4);
  });

  it('Postgres failing mid-run (connections terminated, new ones refused) quarantines nothing, loses nothing', async () => {
    const before = await quarantined();
    const d = randomUUID();
    await append(
      conversationStream(d),
      testEvent('ConversationStarted', {
        conversationId: d,
        kind: 'direct',
        title: null,
        createdBy: 'alice',
        members: ['bob'],
      }),
    );
    const messages: NewEvent[] = [];
    let last = '';
    const sendSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const m = testMessageSent(d, `m${messages.length}`);
        messages.push(m);
        last = await append(conversationStream(d), m);
        await new Promise((r) => setTimeout(r, 40));
      }
    };
    await sendSome(5);
    const terminated = await consumerOutages(pool, {
      database: database.name,
      applicationName: APP,
      ms: 3000,
      during: () => sendSome(15),
      recovered: () => allAt(last),
    });
    await sendSome(5);
    await allAt(last);

    expect(terminated).toBeGreaterThan(0);
    expect(await quarantined()).toEqual(before);
    const projected = await pool.query<{ message_id: string }>(
      'SELECT message_id FROM read_models.messages WHERE conversation_id = $1 ORDER BY seq',
      [d],
    );
    expect(projected.rows.map((r) => r.message_id)).toEqual(messages.map((m) => m.data.messageId));
    expect(
      await count(
        `SELECT count(*)::int AS n FROM notifier.notifications WHERE conversation_id = $1 AND recipient_id = 'bob'`,
        [d],
      ),
    ).toBe(messages.length);
    await waitFor(() => new Set(published.get(subjects.conversation(d))).size === messages.length + 1, {
      what: 'every message relayed',
    });
  });
});
