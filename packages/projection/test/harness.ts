import { randomUUID } from 'node:crypto';
import { createReadModelDb, migrateReadModels, type ReadModelDb, readCheckpoint } from '@chat/db';
import { type ChatEvent, conversationStream, receiptsStream, streamIdOf, userStream } from '@chat/events';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
  type RecordedEvent,
} from '@chat/eventstore';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import pino from 'pino';
import { PROJECTED_STREAMS, projectEvents } from '../src/index.js';

export const silentLogger = pino({ level: 'silent' });

export type Harness = {
  database: TestDatabase;
  pool: pg.Pool;
  store: EventStore;
  db: ReadModelDb;
  close: () => Promise<void>;
};

/** Appends `event` by `by` to its stream (any revision); resolves to its position. */
export const appendEvent = async (store: EventStore, by: string, event: ChatEvent): Promise<string> =>
  (
    await store.append(
      streamIdOf(event),
      [
        {
          id: randomUUID(),
          type: event.type,
          data: event.data,
          metadata: { userId: by, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
        },
      ],
      'any',
    )
  ).position;

/** A fresh database with the event store and the read models migrated. */
export const createHarness = async (label: string): Promise<Harness> => {
  const database = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 12 });
  await migrateEventStore(pool);
  await migrateReadModels(pool);
  const store = createPostgresEventStore({
    connectionString: database.url,
    logger: silentLogger,
    pollIntervalMs: 50,
  });
  const db = createReadModelDb(pool);
  return {
    database,
    pool,
    store,
    db,
    close: async () => {
      await store.close();
      await pool.end();
      await database.drop();
    },
  };
};

/**
 * Waits until subscribers can see `position`: the Postgres log shows a commit only once every older
 * transaction in the cluster has finished, and other test files share the cluster.
 */
export const untilVisible = (store: EventStore, position: string) =>
  waitFor(async () => (await store.headPosition()) >= position, {
    timeoutMs: 60_000,
    what: `log visible to ${position}`,
  });

/** The whole log, after waiting until it shows `upTo` when given. */
export const readWholeLog = async (store: EventStore, upTo?: string): Promise<RecordedEvent[]> => {
  if (upTo) await untilVisible(store, upTo);
  const out: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readAll({ fromPosition: out.at(-1)?.position, maxCount: 5000 });
    out.push(...page);
    if (page.length < 5000) return out;
  }
};

export const waitForCheckpoint = (db: ReadModelDb, position: string, timeoutMs = 60_000) =>
  waitFor(async () => (await readCheckpoint(db)) >= position, { timeoutMs, what: `checkpoint ${position}` });

/** Every read-model row, in a stable order, for comparing two schemas. */
export const dumpSchema = async (pool: pg.Pool, schema: string) => {
  const q = async (table: string, order: string) =>
    (await pool.query(`SELECT * FROM "${schema}".${table} ORDER BY ${order}`)).rows;
  return {
    conversations: await q('conversations', 'conversation_id'),
    members: await q('members', 'conversation_id, user_id'),
    messages: await q('messages', 'conversation_id, seq'),
    message_reactions: await q('message_reactions', 'conversation_id, message_id, reaction, user_id'),
    conversation_bans: await q('conversation_bans', 'conversation_id, user_id'),
    reports: await q('reports', 'report_id'),
    user_blocks: await q('user_blocks', 'user_id, blocked_user_id'),
  };
};

/**
 * A fresh replay of the whole log into `schema`, to compare the live read models with; events the
 * projection cannot apply are skipped, as the live one quarantines them.
 */
export const replayInto = async (pool: pg.Pool, store: EventStore, schema: string): Promise<number> => {
  await migrateReadModels(pool, schema);
  const db = createReadModelDb(pool, schema);
  let position: string | undefined;
  let n = 0;
  for (;;) {
    const page = await store.readAll({ fromPosition: position, maxCount: 5000, filter: PROJECTED_STREAMS });
    const last = page.at(-1);
    if (!last) return n;
    await projectEvents(db, schema, page, () => {});
    n += page.length;
    position = last.position;
  }
};

/**
 * Appends a large history quickly: per conversation, messages (with edits and deletes) in chunks of
 * up to 500 events per append, conversations in parallel; then reads and mutes.
 */
export const appendBulkHistory = async (
  store: EventStore,
  options: { conversations: number; eventsPerConversation: number; users?: number },
): Promise<string> => {
  const users = Array.from({ length: options.users ?? 40 }, (_, i) => `user${i}`);
  let last = '';
  const track = (p: string) => {
    if (p > last) last = p;
  };
  const meta = (userId: string) => ({
    userId,
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: 1,
  });
  const base = Date.now() - 3_600_000;
  await Promise.all(
    Array.from({ length: options.conversations }, async (_, ci) => {
      const id = randomUUID();
      const members = users.filter((_, ui) => (ui + ci) % 5 === 0);
      const events: NewEvent[] = [
        {
          id: randomUUID(),
          type: 'ConversationStarted',
          data: { conversationId: id, kind: 'group', title: `c${ci}`, createdBy: members[0], members },
          metadata: meta(members[0] ?? 'user0'),
        },
      ];
      const sent: { id: string; sender: string }[] = [];
      for (let seq = 1; seq < options.eventsPerConversation; seq++) {
        const at = new Date(base + seq).toISOString();
        const prev = sent[Math.floor(sent.length / 2)];
        if (seq % 10 === 0 && prev) {
          events.push({
            id: randomUUID(),
            type: 'MessageEdited',
            data: {
              conversationId: id,
              messageId: prev.id,
              editorId: prev.sender,
              body: `edit ${seq}`,
              editedAt: at,
            },
            metadata: meta(prev.sender),
          });
        } else if (seq % 25 === 0 && prev) {
          events.push({
            id: randomUUID(),
            type: 'MessageDeleted',
            data: { conversationId: id, messageId: prev.id, deletedBy: prev.sender, deletedAt: at },
            metadata: meta(prev.sender),
          });
        } else {
          const sender = members[seq % members.length] ?? 'user0';
          const messageId = randomUUID();
          sent.push({ id: messageId, sender });
          events.push({
            id: randomUUID(),
            type: 'MessageSent',
            data: {
              conversationId: id,
              messageId,
              senderId: sender,
              body: `message ${seq}`,
              replyTo: null,
              sentAt: at,
            },
            metadata: meta(sender),
          });
        }
      }
      for (let i = 0; i < events.length; i += 500) {
        const r = await store.append(
          conversationStream(id),
          events.slice(i, i + 500),
          i === 0 ? 'no_stream' : i - 1,
        );
        track(r.position);
      }
      const reads: NewEvent[] = members.map((userId, ui) => ({
        id: randomUUID(),
        type: 'ConversationRead',
        data: {
          conversationId: id,
          userId,
          upToSeq: Math.floor(((ui + 1) * (options.eventsPerConversation - 1)) / (members.length + 1)),
          readAt: new Date(base).toISOString(),
        },
        metadata: meta(userId),
      }));
      track((await store.append(receiptsStream(id), reads, 'any')).position);
      const muter = members[1] ?? 'user0';
      track(
        (
          await store.append(
            userStream(muter),
            [
              {
                id: randomUUID(),
                type: 'ConversationMuted',
                data: { conversationId: id, userId: muter, until: new Date(base + 86_400_000).toISOString() },
                metadata: meta(muter),
              },
            ],
            'any',
          )
        ).position,
      );
    }),
  );
  return last;
};
