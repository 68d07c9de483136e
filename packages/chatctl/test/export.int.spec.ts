import { randomUUID } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
  type RecordedEvent,
} from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChatctl } from '../src/index.js';

// `chatctl export` over a seeded log, read back with DuckDB as an analyst would.

let database: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
let log: RecordedEvent[];
let dir: string;
const conversations = [randomUUID(), randomUUID(), randomUUID()];
const firstMessage = randomUUID();

const meta = (userId: string) => ({
  userId,
  correlationId: randomUUID(),
  causationId: null,
  schemaVersion: 1,
});
const event = (type: string, userId: string, data: Record<string, unknown>): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: meta(userId),
});
const at = (i: number) => new Date(Date.UTC(2026, 10, 20 + (i % 3), 9, 0, i % 60, 123)).toISOString();

const run = async (args: string[]) => {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  err.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const code = await runChatctl(args, {
    stdout: out,
    stderr: err,
    env: { DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout, stderr };
};

const query = async (sql: string) => {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    return (await connection.runAndReadAll(sql)).getRowObjectsJson();
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
};

beforeAll(async () => {
  database = await createTestDatabase('chatctl-export');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  await migrateEventStore(pool);
  store = createPostgresEventStore({
    connectionString: database.url,
    logger: createLogger('chatctl-export-test', 'silent'),
  });
  let last = '';
  for (const [n, c] of conversations.entries()) {
    const events: NewEvent[] = [
      event('ConversationStarted', 'alice', {
        conversationId: c,
        kind: n === 0 ? 'direct' : 'group',
        title: n === 0 ? null : `room ${n}`,
        createdBy: 'alice',
        members: ['alice', 'bob'],
      }),
    ];
    for (let i = 0; i < 40; i++) {
      events.push(
        event('MessageSent', i % 2 ? 'bob' : 'alice', {
          conversationId: c,
          messageId: n === 0 && i === 0 ? firstMessage : randomUUID(),
          senderId: i % 2 ? 'bob' : 'alice',
          body: `c${n} m${i} "quoted" ✓`,
          replyTo: null,
          sentAt: at(i),
          // A field this build's schema does not name: kept in dataExtra.
          ...(i === 1 ? { client: 'web' } : {}),
        }),
      );
    }
    events.push(
      event('MessageEdited', 'alice', {
        conversationId: c,
        messageId: n === 0 ? firstMessage : randomUUID(),
        editorId: 'alice',
        body: 'edited',
        editedAt: at(50),
      }),
    );
    last = (await store.append(`conversation-${c}`, events, 'no_stream')).position;
    last = (
      await store.append(
        `receipts-${c}`,
        [event('ConversationRead', 'bob', { conversationId: c, userId: 'bob', upToSeq: 17, readAt: at(51) })],
        'any',
      )
    ).position;
  }
  last = (
    await store.append(
      'user-bob',
      [event('NotificationsRead', 'bob', { userId: 'bob', notificationIds: [firstMessage], upTo: at(52) })],
      'any',
    )
  ).position;
  await waitFor(async () => (await store.headPosition()) >= last, { timeoutMs: 30_000 });
  log = await store.readAll({ maxCount: 10_000 });
  expect(log).toHaveLength(3 * 43 + 1);
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  await store.close();
  await pool.end();
  await database.drop();
});

describe('chatctl export --format parquet', () => {
  it('writes one file per event type with typed columns that DuckDB reads back', async () => {
    dir = await mkdtemp(join(tmpdir(), 'chatctl-export-'));
    const out = join(dir, 'all');
    const { code, stdout, stderr } = await run(['export', '--out', out, '--chunk-events', '25']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^exported 130 events in \d+ ms/);
    expect((await readdir(out)).filter((f) => f.endsWith('.parquet')).sort()).toEqual([
      'ConversationRead.parquet',
      'ConversationStarted.parquet',
      'MessageEdited.parquet',
      'MessageSent.parquet',
      'NotificationsRead.parquet',
    ]);
    // The progress works without a terminal: plain lines on stderr.
    expect(stderr).toMatch(/export \[#+\] 100\.0% 130 events/);

    const sent = join(out, 'MessageSent.parquet');
    const counts = await query(`SELECT count(*) AS n, count(DISTINCT id) AS ids FROM '${sent}'`);
    expect(counts).toEqual([{ n: '120', ids: '120' }]);
    const columns = await query(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '${sent}')`);
    expect(Object.fromEntries(columns.map((c) => [c.column_name, c.column_type]))).toEqual({
      id: 'UUID',
      type: 'VARCHAR',
      streamId: 'VARCHAR',
      revision: 'BIGINT',
      position: 'VARCHAR',
      occurredAt: 'TIMESTAMP WITH TIME ZONE',
      metadataUserId: 'VARCHAR',
      correlationId: 'VARCHAR',
      causationId: 'VARCHAR',
      schemaVersion: 'BIGINT',
      conversationId: 'UUID',
      messageId: 'UUID',
      senderId: 'VARCHAR',
      body: 'VARCHAR',
      // true when the sender was erased (README "Erasure"), else NULL.
      erased: 'BOOLEAN',
      replyTo: 'UUID',
      sentAt: 'TIMESTAMP WITH TIME ZONE',
      replyToSenderId: 'VARCHAR',
      threadRootId: 'UUID',
      threadParticipantIds: 'VARCHAR[]',
      dataExtra: 'VARCHAR',
    });
    const expected = log.filter((e) => e.type === 'MessageSent');
    const rows = await query(
      `SELECT id, position, revision, body, senderId, epoch_ms(sentAt) AS sentAt, dataExtra FROM '${sent}' ORDER BY position`,
    );
    expect(rows.map((r) => r.id)).toEqual(expected.map((e) => e.id));
    expect(rows[0]).toEqual({
      id: expected[0]?.id,
      position: expected[0]?.position,
      revision: '1',
      body: 'c0 m0 "quoted" ✓',
      senderId: 'alice',
      sentAt: String(Date.parse(at(0))),
      dataExtra: null,
    });
    expect(rows[1]?.dataExtra).toBe('{"client":"web"}');
    const started = await query(
      `SELECT kind, title, members FROM '${join(out, 'ConversationStarted.parquet')}' ORDER BY position`,
    );
    expect(started).toEqual([
      { kind: 'direct', title: null, members: ['alice', 'bob'] },
      { kind: 'group', title: 'room 1', members: ['alice', 'bob'] },
      { kind: 'group', title: 'room 2', members: ['alice', 'bob'] },
    ]);
    const notifications = await query(
      `SELECT notificationIds FROM '${join(out, 'NotificationsRead.parquet')}'`,
    );
    expect(notifications).toEqual([{ notificationIds: [firstMessage] }]);
  });

  it('resumes: a second run goes on after the last commit, past a half-written chunk, with no row twice', async () => {
    const out = join(dir, 'resumed');
    const middle = log[60]?.position as string;
    const first = await run([
      'export',
      '--out',
      out,
      '--to',
      middle,
      '--chunk-events',
      '10',
      '--types',
      'MessageSent,ConversationStarted',
    ]);
    expect(first.code, first.stderr).toBe(0);
    const manifest = JSON.parse(await readFile(join(out, 'export.json'), 'utf8'));
    expect(manifest.position).toBe(middle);
    // A crash after a chunk was written but before the manifest named it: a part nobody committed.
    await writeFile(join(out, '.parts', 'MessageSent', '999999.parquet'), 'half written');
    // Other options than the export's own are refused, not mixed in.
    expect((await run(['export', '--out', out, '--format', 'ndjson'])).code).toBe(2);
    const second = await run([
      'export',
      '--out',
      out,
      '--chunk-events',
      '10',
      '--types',
      'ConversationStarted,MessageSent',
    ]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/resumed; 123 in/);
    const wanted = log.filter((e) => e.type === 'MessageSent');
    // The file's own row order is log order (no ORDER BY), across the parts of both runs.
    const rows = await query(`SELECT id FROM '${join(out, 'MessageSent.parquet')}'`);
    expect(rows.map((r) => r.id)).toEqual(wanted.map((e) => e.id));
    expect(await readdir(join(out, '.parts', 'MessageSent'))).toEqual([]);
  });
});

describe('chatctl export --format ndjson', () => {
  it('writes the lines of chatctl replay, one file per type, and cuts off what was written after the last commit', async () => {
    const out = join(dir, 'ndjson');
    const middle = log[70]?.position as string;
    expect((await run(['export', '--format', 'ndjson', '--out', out, '--to', middle])).code).toBe(0);
    await appendFile(join(out, 'MessageSent.ndjson'), '{"half a line');
    const rest = await run(['export', '--format', 'ndjson', '--out', out, '--chunk-events', '7']);
    expect(rest.code, rest.stderr).toBe(0);
    const replay = await run(['replay', '--no-progress']);
    const lines = replay.stdout.trimEnd().split('\n');
    for (const type of ['MessageSent', 'ConversationRead', 'NotificationsRead']) {
      const file = await readFile(join(out, `${type}.ndjson`), 'utf8');
      expect(file, type).toBe(`${lines.filter((l) => JSON.parse(l).type === type).join('\n')}\n`);
    }
  });
});
