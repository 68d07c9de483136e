import { migrateReadModels } from '@chat/db';
import type { ServerFrame } from '@chat/events';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type PostgresEventStore,
} from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import {
  createTestDatabase,
  natsUrl,
  signToken,
  TEST_JWT_SECRET,
  type TestDatabase,
  testSubjectPrefix,
  waitFor,
} from '@chat/testkit';
import pg from 'pg';
import WebSocket from 'ws';
import { loadGatewayConfig } from '../src/config.js';
import { type Gateway, startGateway } from '../src/gateway.js';

/** A fresh database with the event store and read models, and a store on it (no projector runs). */
export const gatewayDatabase = async (
  label: string,
): Promise<{ database: TestDatabase; store: PostgresEventStore }> => {
  const database = await createTestDatabase(label);
  await migrateEventStore(database.url);
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  await migrateReadModels(pool);
  await pool.end();
  return { database, store: createPostgresEventStore({ connectionString: database.url }) };
};

/**
 * A ws-gateway in this process on `database`, with its own NATS subject prefix unless given; `store`
 * is what it reads the log through (a wrapper of the test's store, to count or hold reads).
 */
export const startInProcessGateway = (
  database: TestDatabase,
  store: EventStore,
  prefix: string = testSubjectPrefix(),
): Promise<Gateway> =>
  startGateway(
    loadGatewayConfig({
      DATABASE_URL: database.url,
      NATS_URL: natsUrl(),
      NATS_SUBJECT_PREFIX: prefix,
      JWT_SECRET: TEST_JWT_SECRET,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    }),
    createLogger('ws-gateway', 'warn'),
    { store },
  );

/** A socket of `userId` on the gateway, its frames recorded, once its `hello` came. */
export const openSocket = async (gateway: Gateway, userId: string) => {
  const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/ws?access_token=${await signToken(userId)}`);
  const frames: ServerFrame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
  await waitFor(() => frames.some((f) => f.type === 'hello'), { what: 'hello' });
  return { ws, frames };
};

/** The seqs of `conversationId`'s event frames, in the order they came. */
export const seqsOf = (frames: readonly ServerFrame[], conversationId: string): number[] =>
  frames.flatMap((f) => (f.type === 'event' && f.conversationId === conversationId ? [f.seq] : []));
