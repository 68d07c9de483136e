import { randomUUID } from 'node:crypto';
import type { ChatEvent, ConversationKind, NotificationLevel } from '@chat/events';
import { conversationStream, userStream } from '@chat/events';
import { createPostgresEventStore, type EventStore, migrateEventStore } from '@chat/eventstore';
import { migrateNotifier } from '@chat/notifications';
import {
  createTestDatabase,
  freePort,
  natsUrl,
  type ServiceProcess,
  startService,
  type TestDatabase,
  testSubjectPrefix,
} from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import pg from 'pg';

/** One test file's infrastructure: its own database (event store + notifier schema) and NATS prefix. */
export type Harness = {
  db: TestDatabase;
  pool: pg.Pool;
  store: EventStore;
  nats: NatsConnection;
  prefix: string;
  close: () => Promise<void>;
};

export const createHarness = async (label: string): Promise<Harness> => {
  const db = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: db.url, max: 10 });
  await migrateEventStore(pool);
  await migrateNotifier(pool);
  const store = createPostgresEventStore({ pool, pollIntervalMs: 50 });
  const nats = await connect({ servers: natsUrl() });
  return {
    db,
    pool,
    store,
    nats,
    prefix: testSubjectPrefix(),
    close: async () => {
      await nats.close();
      await store.close();
      await pool.end();
      await db.drop();
    },
  };
};

/**
 * The real notifier (`services/notifier/src/main.ts`) as a child process on the harness's database and
 * subject prefix, ready once its /readyz answers; `env` adds or overrides variables.
 */
export const startNotifierProcess = async (
  h: Harness,
  env: Record<string, string> = {},
): Promise<{ service: ServiceProcess; opsPort: number }> => {
  const opsPort = await freePort();
  const service = await startService({
    name: 'notifier',
    entry: 'services/notifier',
    env: {
      DATABASE_URL: h.db.url,
      NATS_URL: natsUrl(),
      NATS_SUBJECT_PREFIX: h.prefix,
      PORT: String(opsPort),
      LEADER_RETRY_MS: '100',
      ...env,
    },
    ready: { url: `http://127.0.0.1:${opsPort}/readyz` },
    timeoutMs: 60_000,
  });
  return { service, opsPort };
};

const meta = (userId: string) => ({
  userId,
  correlationId: randomUUID(),
  causationId: null,
  schemaVersion: 1,
});

/** Appends domain events the way the command-api would, straight through the event store. */
export const append = async (store: EventStore, streamId: string, userId: string, ...events: ChatEvent[]) =>
  store.append(
    streamId,
    events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: meta(userId) })),
    'any',
  );

export const startConversation = async (
  store: EventStore,
  createdBy: string,
  members: string[],
  kind: ConversationKind = 'group',
) => {
  const conversationId = randomUUID();
  await append(store, conversationStream(conversationId), createdBy, {
    type: 'ConversationStarted',
    data: { conversationId, kind, title: kind === 'group' ? 'test' : null, createdBy, members },
  });
  return conversationId;
};

/** A message; `reply` names the message it replies to and that message's sender. */
export const sendMessage = async (
  store: EventStore,
  conversationId: string,
  senderId: string,
  body: string,
  sentAt = new Date().toISOString(),
  reply?: { messageId: string; senderId: string },
) => {
  const messageId = randomUUID();
  const result = await append(store, conversationStream(conversationId), senderId, {
    type: 'MessageSent',
    data: {
      conversationId,
      messageId,
      senderId,
      body,
      replyTo: reply?.messageId ?? null,
      sentAt,
      ...(reply ? { replyToSenderId: reply.senderId } : {}),
    },
  });
  return { messageId, position: result.position };
};

export const setLevel = (
  store: EventStore,
  userId: string,
  conversationId: string,
  level: NotificationLevel,
) =>
  append(store, userStream(userId), userId, {
    type: 'NotificationLevelSet',
    data: { conversationId, userId, level },
  });

/** Many messages in one append per conversation, for load and crash tests. */
export const sendMany = async (
  store: EventStore,
  conversationId: string,
  senderId: string,
  bodies: string[],
) => {
  const sentAt = new Date().toISOString();
  return append(
    store,
    conversationStream(conversationId),
    senderId,
    ...bodies.map(
      (body): ChatEvent => ({
        type: 'MessageSent',
        data: { conversationId, messageId: randomUUID(), senderId, body, replyTo: null, sentAt },
      }),
    ),
  );
};

export const mute = (store: EventStore, userId: string, conversationId: string, until: string | null) =>
  append(store, userStream(userId), userId, {
    type: 'ConversationMuted',
    data: { conversationId, userId, until },
  });

export type Row = {
  notification_id: string;
  recipient_id: string;
  kind: string;
  conversation_id: string;
  message_id: string;
  actor_id: string;
  preview: string;
  created_at: Date;
  read_at: Date | null;
};

export const notificationRows = async (pool: pg.Pool, where = 'TRUE', params: unknown[] = []) =>
  (
    await pool.query<Row>(
      `SELECT notification_id, recipient_id, kind, conversation_id, message_id, actor_id, preview, created_at,
              read_at
         FROM notifier.notifications
        WHERE ${where} ORDER BY recipient_id, created_at, notification_id`,
      params,
    )
  ).rows;

export const checkpoint = async (pool: pg.Pool) =>
  (
    await pool.query<{ position: string }>(
      `SELECT position FROM consumers.checkpoints WHERE name = 'notifier'`,
    )
  ).rows[0]?.position;
