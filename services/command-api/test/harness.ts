import { randomUUID } from 'node:crypto';
import { migrateDataKeys } from '@chat/db';
import { natsSubjects } from '@chat/events';
import {
  createDataKeyStore,
  createEventStore,
  migrateEventStore,
  type RecordedEvent,
} from '@chat/eventstore';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import {
  createTestDatabase,
  freePort,
  natsUrl,
  type ServiceProcess,
  signToken,
  startService,
  TEST_JWT_SECRET,
  testSubjectPrefix,
} from '@chat/testkit';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { connect } from 'nats';
import pg from 'pg';
import { Registry } from 'prom-client';
import { type AppDeps, buildApp } from '../src/app.js';
import { configSchema } from '../src/config.js';

export type Harness = Awaited<ReturnType<typeof startHarness>>;

/**
 * A command-api on a fresh database and NATS prefix, with a clock that tests can move forward and
 * helpers to call it as a user and to read what was appended.
 */
export const startHarness = async (label: string, env: Record<string, string> = {}) => {
  const db = await createTestDatabase(label);
  const prefix = testSubjectPrefix();
  const logger = createLogger('command-api-test', 'silent');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  await migrateEventStore(pool);
  await migrateDataKeys(pool);
  const dataKeys = createDataKeyStore({ databaseUrl: db.url, master: DEV_DATA_KEY_MASTER, logger });
  const store = createEventStore({
    databaseUrl: db.url,
    logger,
    scavengeIntervalMs: 0,
    maxConnections: 4,
    dataKeys,
  });
  const nats = await connect({ servers: natsUrl() });
  const subjects = natsSubjects(prefix);
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  const config = configSchema.parse({
    JWT_SECRET: TEST_JWT_SECRET,
    NATS_SUBJECT_PREFIX: prefix,
    DATABASE_URL: db.url,
    LOG_LEVEL: 'silent',
    ...env,
  });
  const app: FastifyInstance = await buildApp({
    config,
    store,
    dataKeys,
    pool,
    nats,
    subjects,
    logger,
    clock,
    registry: new Registry(),
  });
  await app.ready();

  /**
   * Another app on the same infrastructure with other settings or dependencies (not serving NATS);
   * `setup` may add routes before it is ready.
   */
  const variant = async (
    variantEnv: Record<string, string>,
    deps: Partial<AppDeps> = {},
    setup?: (app: FastifyInstance) => void,
  ) => {
    const variantApp = await buildApp({
      config: configSchema.parse({ ...config, ...variantEnv, NATS_SUBJECT_PREFIX: testSubjectPrefix() }),
      store,
      pool,
      nats,
      subjects: natsSubjects(testSubjectPrefix()),
      logger,
      clock,
      registry: new Registry(),
      ...deps,
    });
    setup?.(variantApp);
    await variantApp.ready();
    return variantApp;
  };

  const tokens = new Map<string, string>();
  const tokenFor = async (userId: string) => {
    let token = tokens.get(userId);
    if (!token) {
      token = await signToken(userId);
      tokens.set(userId, token);
    }
    return token;
  };

  /** Calls the API as `userId` (null: no token). */
  const call = async (
    userId: string | null,
    method: InjectOptions['method'],
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) => {
    const response = await app.inject({
      method,
      url,
      headers: { ...(userId ? { authorization: `Bearer ${await tokenFor(userId)}` } : {}), ...headers },
      ...(body === undefined
        ? {}
        : typeof body === 'string'
          ? { payload: body }
          : { payload: body as object }),
    });
    const text = response.body;
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    // biome-ignore lint/suspicious/noExplicitAny: test responses are asserted field by field
    return { status: response.statusCode, body: json as any, headers: response.headers };
  };

  const stream = (streamId: string): Promise<RecordedEvent[]> => store.readStream(streamId);
  /** Number of events in the whole log: "nothing appended" is "this did not change". */
  const logSize = async (): Promise<number> => {
    const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM es.events');
    return Number(rows[0]?.n ?? 0);
  };

  const createGroup = async (creator: string, members: string[], title = 'Team') => {
    const res = await call(creator, 'POST', '/v1/conversations', { kind: 'group', members, title });
    if (res.status !== 201) throw new Error(`create failed: ${JSON.stringify(res.body)}`);
    return res.body.conversationId as string;
  };
  const send = (userId: string, conversationId: string, body = 'hello', messageId: string = randomUUID()) =>
    call(userId, 'POST', `/v1/conversations/${conversationId}/messages`, { messageId, body });

  return {
    app,
    databaseUrl: db.url,
    variant,
    store,
    pool,
    nats,
    subjects,
    prefix,
    call,
    stream,
    logSize,
    createGroup,
    send,
    tokenFor,
    advanceClock: (ms: number) => {
      offsetMs += ms;
    },
    close: async () => {
      await app.close();
      await nats.drain();
      await store.close();
      await pool.end();
      await db.drop();
    },
  };
};

/**
 * A real projector process on the harness's database and NATS prefix (its relay off), for tests of the
 * read side; `port` serves its /metrics and /readyz.
 */
export const startProjector = async (h: Harness): Promise<{ projector: ServiceProcess; port: number }> => {
  const port = await freePort();
  const projector = await startService({
    name: 'projector',
    entry: 'services/projector',
    env: {
      DATABASE_URL: String(h.pool.options.connectionString),
      NATS_SUBJECT_PREFIX: h.prefix,
      PORT: String(port),
      RELAY_ENABLED: 'false',
      LOG_LEVEL: 'warn',
    },
    ready: { url: `http://127.0.0.1:${port}/readyz` },
  });
  return { projector, port };
};
