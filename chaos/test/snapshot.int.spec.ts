import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateConsumers, saveCheckpoint } from '@chat/consumer';
import { createReadModelDb, migrateReadModels, READ_MODEL_CHECKPOINT, READ_MODEL_SCHEMA } from '@chat/db';
import { natsSubjects } from '@chat/events';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
} from '@chat/eventstore';
import { migrateNotifier, readCheckpoint } from '@chat/notifications';
import { createNotifierService, notifierEnv } from '@chat/notifier';
import { createLogger } from '@chat/platform';
import { projectEvents } from '@chat/projection';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkHistory } from '../src/checker/index.js';
import { HistoryWriter, readHistoryFile } from '../src/history/file.js';
import { takeSnapshot } from '../src/snapshot/snapshot.js';

// The snapshot and check 4 end to end on a real database: the read models a projection left are
// recorded, replayed by the projection's own rebuild and compared. A projection that applied one event
// twice — done here for real, through the projection's exported apply function — must fail the check.

const logger = createLogger('chaos-test', 'silent');
let main: TestDatabase;
let replay: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
let dir: string;

const metadata = (userId: string) => ({
  userId,
  correlationId: randomUUID(),
  causationId: null,
  schemaVersion: 1,
});

beforeEach(async () => {
  main = await createTestDatabase('chaossnap');
  replay = await createTestDatabase('chaossnaprep');
  pool = new pg.Pool({ connectionString: main.url, max: 6 });
  await migrateEventStore(pool);
  await migrateConsumers(pool);
  await migrateReadModels(pool);
  await migrateNotifier(pool);
  store = createPostgresEventStore({ connectionString: main.url, logger, pollIntervalMs: 50 });
  dir = mkdtempSync(join(tmpdir(), 'chaos-snapshot-'));
});

afterEach(async () => {
  await store.close();
  await pool.end();
  await main.drop();
  await replay.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** A conversation with a few messages; returns the log's head once subscribers can see it. */
const writeLog = async (): Promise<string> => {
  const conversationId = randomUUID();
  const stream = `conversation-${conversationId}`;
  const events: NewEvent[] = [
    {
      id: randomUUID(),
      type: 'ConversationStarted',
      data: { conversationId, kind: 'group', title: 't', createdBy: 'ann', members: ['ann', 'bob', 'cy'] },
      metadata: metadata('ann'),
    },
    ...Array.from({ length: 5 }, (_, i) => ({
      id: randomUUID(),
      type: 'MessageSent',
      data: {
        conversationId,
        messageId: randomUUID(),
        senderId: i % 2 ? 'bob' : 'ann',
        body: `m${i} @cy`,
        replyTo: null,
        sentAt: new Date().toISOString(),
      },
      metadata: metadata(i % 2 ? 'bob' : 'ann'),
    })),
  ];
  let last = '';
  for (const [i, e] of events.entries())
    last = (await store.append(stream, [e], i - 1 < 0 ? 'no_stream' : i - 1)).position;
  // The log shows a commit only once older transactions of the (shared) cluster have ended.
  await waitFor(async () => (await store.headPosition()) >= last, {
    timeoutMs: 30_000,
    what: 'the log head',
  });
  return last;
};

/** The live read models and notifier, as the services would have left them. */
const projectLive = async (options: { applyOneTwice: boolean }) => {
  const db = createReadModelDb(pool);
  const events = await store.readAll({});
  const rejected = (_event: unknown, err: unknown) => {
    throw new Error(`the projection rejected an event: ${String(err)}`);
  };
  await db.transaction().execute((trx) => projectEvents(trx, READ_MODEL_SCHEMA, events, rejected));
  await saveCheckpoint(pool, READ_MODEL_CHECKPOINT, events.at(-1)!.position);
  if (options.applyOneTwice) {
    // The broken projector: one MessageSent applied a second time.
    const message = events.find((e) => e.type === 'MessageSent')!;
    await db.transaction().execute((trx) => projectEvents(trx, READ_MODEL_SCHEMA, [message], rejected));
  }
  const notifier = createNotifierService({
    config: notifierEnv.parse({ DATABASE_URL: main.url }),
    pool,
    store,
    logger,
    subjects: natsSubjects(),
    publish: () => {},
  });
  notifier.start();
  const head = await store.headPosition();
  await waitFor(async () => (await readCheckpoint(pool)) === head, {
    timeoutMs: 30_000,
    what: 'the notifier',
  });
  await notifier.stop();
};

const snapshotVerdict = async () => {
  const history = new HistoryWriter(join(dir, 'snapshot.jsonl'));
  await takeSnapshot({
    store,
    pool,
    replayDatabaseUrl: replay.url,
    history,
    logger,
    log: () => {},
    timeoutMs: 30_000,
  });
  await history.close();
  return checkHistory(readHistoryFile(history.file));
};

describe('takeSnapshot + check 4', () => {
  it('finds no row differing when the read models are what the log replays to', async () => {
    await writeLog();
    await projectLive({ applyOneTwice: false });
    const check = (await snapshotVerdict()).checks.find((c) => c.id === '4')!;
    expect(check.count).toBe(0);
    expect(check.checked).toBeGreaterThan(10);
    expect(check.figures['read_models.messages']).toBe(0);
    expect(check.figures['notifier.notifications']).toBe(0);
  });

  it('fails when the projection applied one event twice', async () => {
    await writeLog();
    await projectLive({ applyOneTwice: true });
    const verdict = await snapshotVerdict();
    const check = verdict.checks.find((c) => c.id === '4')!;
    expect(check.count).toBeGreaterThan(0);
    // The conversation's message counter moved twice for one message.
    expect(check.figures['read_models.conversations']).toBe(1);
    const differing = check.violations.find((v) => v.what.includes('read_models.conversations'))!;
    expect(differing.excerpt.map((e) => e.k === 'row' && e.side)).toEqual(['live', 'replay']);
    expect(verdict.ok).toBe(false);
  });
});
