import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { migrateReadModels } from '@chat/db';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
} from '@chat/eventstore';
import { migrateNotifier } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChatctl } from '../src/index.js';

// chatctl as operators run it: a child process (`tsx packages/chatctl/src/main.ts`) on a real database.

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const MAIN = join(ROOT, 'packages/chatctl/src/main.ts');

let database: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
const ids: string[] = [];
const outFile = join(tmpdir(), `chatctl-${randomUUID()}.ndjson`);

const chatctl = (args: string[]) =>
  run(TSX, [MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
    maxBuffer: 256 * 1024 * 1024,
  });

/** The same CLI in-process (faster than a child process per call); streams captured as text. */
const inProcess = async (args: string[]) => {
  const capture = () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => {
      text += d.toString();
    });
    return { stream, text: () => text };
  };
  const out = capture();
  const err = capture();
  const code = await runChatctl(args, {
    stdout: out.stream,
    stderr: err.stream,
    env: { DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
  });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
};

const message = (conversationId: string, i: number): NewEvent => ({
  id: randomUUID(),
  type: 'MessageSent',
  data: {
    conversationId,
    messageId: randomUUID(),
    senderId: 'alice',
    body: `m${i}`,
    replyTo: null,
    sentAt: new Date().toISOString(),
  },
  metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

beforeAll(async () => {
  database = await createTestDatabase('chatctl');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  await migrateEventStore(pool);
  await migrateReadModels(pool);
  store = createPostgresEventStore({
    connectionString: database.url,
    logger: createLogger('chatctl-test', 'silent'),
  });
  let lastPosition = '';
  // 100,000 events: 100 conversations × (start + 999 messages), appended 1,000 per call.
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      const c = randomUUID();
      const events: NewEvent[] = [
        {
          id: randomUUID(),
          type: 'ConversationStarted',
          data: {
            conversationId: c,
            kind: 'group',
            title: 't',
            createdBy: 'alice',
            members: ['alice', 'bob'],
          },
          metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
        },
        ...Array.from({ length: 999 }, (_, i) => message(c, i)),
      ];
      const r = await store.append(`conversation-${c}`, events, 'no_stream');
      if (r.position > lastPosition) lastPosition = r.position;
    }),
  );
  // The log shows a commit once every older transaction in the (shared) cluster has finished.
  await waitFor(async () => (await store.headPosition()) >= lastPosition, { timeoutMs: 60_000 });
  for (const e of await readAllIds()) ids.push(e);
}, 120_000);

afterAll(async () => {
  await rm(outFile, { force: true });
  await store.close();
  await pool.end();
  await database.drop();
});

const readAllIds = async (): Promise<string[]> => {
  const out: string[] = [];
  let from: string | undefined;
  for (;;) {
    const page = await store.readAll({ fromPosition: from, maxCount: 10_000 });
    out.push(...page.map((e) => e.id));
    from = page.at(-1)?.position;
    if (page.length < 10_000) return out;
  }
};

describe('chatctl', () => {
  it('replays 100,000 events to a file: same count, same ids, log order', async () => {
    const { stderr } = await chatctl(['replay', '--out', outFile]);
    const lines = (await readFile(outFile, 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(100_000);
    const envelopes = lines.map((l) => JSON.parse(l));
    expect(envelopes.map((e) => e.id)).toEqual(ids);
    expect(Object.keys(envelopes[0])).toEqual([
      'id',
      'type',
      'streamId',
      'revision',
      'position',
      'occurredAt',
      'data',
      'metadata',
    ]);
    expect(stderr).toMatch(/replay \[#+\] 100\.0% 100000 events/);
    expect(stderr).toMatch(/replayed 100000 events/);
  }, 120_000);

  it('filters by type, stream prefix and position range on stdout', async () => {
    const started = await inProcess(['replay', '--types', 'ConversationStarted', '--no-progress']);
    expect(started.stdout.trimEnd().split('\n')).toHaveLength(100);
    const lines = (await readFile(outFile, 'utf8')).split('\n');
    const a = JSON.parse(lines[10] ?? '{}');
    const b = JSON.parse(lines[29] ?? '{}');
    const range = await inProcess(['replay', '--from-position', a.position, '--to-position', b.position]);
    expect(
      range.stdout
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).id),
    ).toEqual(ids.slice(11, 30));
    const one = await inProcess(['replay', '--stream-prefix', a.streamId, '--types', 'ConversationStarted']);
    expect(one.stdout.trimEnd().split('\n')).toHaveLength(1);
  }, 60_000);

  it('rebuilds the read models and reports stats', async () => {
    const rebuilt = await inProcess(['rebuild', 'read-models', '--no-progress']);
    expect(rebuilt.stdout).toMatch(/rebuilt read models from 100000 events/);
    const { stdout } = await inProcess(['stats', '--json']);
    const stats = JSON.parse(stdout);
    expect(stats.eventsByType).toEqual({ ConversationStarted: 100, MessageSent: 99_900 });
    expect(stats.readModels).toMatchObject({ conversations: 100, messages: 99_900 });
    expect(stats.checkpoints).toEqual([
      expect.objectContaining({ name: 'read_models', lagEvents: 0, quarantined: 0 }),
    ]);
    expect(stats.webhookOutbox).toBeNull();
    await migrateNotifier(pool);
    await pool.query(
      `INSERT INTO notifier.outbox (delivery_id, recipient_id, payload, status, attempts)
       VALUES (gen_random_uuid(), 'bob', '{}', 'dead', 5)`,
    );
    const withOutbox = await inProcess(['stats']);
    expect(withOutbox.stdout).toMatch(/webhook outbox 0 pending .* 0 delivered, 1 dead-lettered/);
  }, 120_000);

  it('prints help for every command and refuses bad usage', async () => {
    expect((await chatctl(['--help'])).stdout).toMatch(/Usage: chatctl <command>/);
    for (const args of [
      ['replay', '--help'],
      ['rebuild', '--help'],
      ['tail', '-h'],
      ['stats', '--help'],
      ['quarantine', '--help'],
    ]) {
      const { code, stdout } = await inProcess(args);
      expect(code).toBe(0);
      expect(stdout, args.join(' ')).toMatch(/Usage: chatctl/);
    }
    expect((await inProcess(['replay', '--since', 'yesterday'])).code).toBe(2);
    expect((await inProcess(['replay', '--bogus'])).code).toBe(2);
    expect((await inProcess(['rebuild', 'everything'])).code).toBe(2);
    expect((await inProcess(['frobnicate'])).code).toBe(2);
    expect((await inProcess(['quarantine', 'retry'])).code).toBe(2);
    expect((await inProcess(['quarantine', 'retry', 'relay'])).code).toBe(2);
    expect((await inProcess(['quarantine', 'retry', 'relay', 'some-id', '--all'])).code).toBe(2);
    expect((await inProcess(['quarantine', 'purge'])).code).toBe(2);
    expect((await inProcess(['quarantine', 'list'])).stdout).toBe('no quarantined events\n');
    expect((await inProcess(['quarantine', 'retry', 'relay', 'no-such-event', '--wait-ms', '0'])).code).toBe(
      1,
    );
  }, 60_000);

  it('tails live events until stopped', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const stop = new AbortController();
    const running = runChatctl(['tail', '--types', 'MessageSent'], {
      stdout: out,
      stderr: new PassThrough(),
      env: { DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
      signal: stop.signal,
    });
    const c = randomUUID();
    await new Promise((r) => setTimeout(r, 1000));
    await store.append(`conversation-${c}`, [message(c, 1), message(c, 2)], 'any');
    await waitFor(() => text.split('\n').filter(Boolean).length === 2, {
      timeoutMs: 30_000,
      what: 'two tailed events',
    });
    stop.abort();
    expect(await running).toBe(0);
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).data.body),
    ).toEqual(['m1', 'm2']);
  }, 60_000);
});
