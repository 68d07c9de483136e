import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { migrateNotifier } from '@chat/notifications';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runChatctl } from '../src/index.js';

// `chatctl webhooks` as operators run it (a child process) on a real outbox; bad usage in-process.

const ROOT = resolve(import.meta.dirname, '../../..');

let database: TestDatabase;
let pool: pg.Pool;

type Row = { status: string; attempts: number; last_error: string | null; finished: boolean; due: boolean };

const chatctl = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      join(ROOT, 'node_modules/.bin/tsx'),
      [join(ROOT, 'packages/chatctl/src/main.ts'), 'webhooks', ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: 'silent' } },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};

const inProcess = async (...args: string[]) => {
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
  const code = await runChatctl(['webhooks', ...args], {
    stdout: out,
    stderr: err,
    env: { DATABASE_URL: database.url, LOG_LEVEL: 'silent' },
  });
  return { code, stdout, stderr };
};

/** A delivery in the given state, finished (delivered or dead-lettered) `minutesAgo` minutes ago. */
const insert = async (status: 'pending' | 'delivered' | 'dead', minutesAgo: number, error: string | null) => {
  const id = randomUUID();
  await pool.query(
    `INSERT INTO notifier.outbox (delivery_id, recipient_id, payload, status, attempts, last_error,
                                  next_attempt_at, created_at, finished_at)
     VALUES ($1, 'bob', '{}', $2, $3, $4, now() + interval '1 hour', now() - interval '1 day',
             CASE WHEN $2 = 'pending' THEN NULL ELSE now() - make_interval(mins => $5) END)`,
    [id, status, status === 'delivered' ? 1 : 24, error, minutesAgo],
  );
  return id;
};

const row = async (id: string): Promise<Row | undefined> =>
  (
    await pool.query<Row>(
      `SELECT status, attempts, last_error, finished_at IS NOT NULL AS finished, next_attempt_at <= now() AS due
         FROM notifier.outbox WHERE delivery_id = $1`,
      [id],
    )
  ).rows[0];

let deadOld: string;
let deadNew1: string;
let deadNew2: string;
let deadOther: string;
let delivered: string;
let pending: string;

beforeAll(async () => {
  database = await createTestDatabase('chatctlhooks');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await migrateNotifier(pool);
  deadOld = await insert('dead', 120, 'receiver answered 503: down');
  deadNew1 = await insert('dead', 10, 'receiver answered 500');
  deadNew2 = await insert('dead', 5, 'no answer within 10000 ms');
  deadOther = await insert('dead', 60, 'receiver answered 410');
  delivered = await insert('delivered', 1, null);
  pending = await insert('pending', 0, 'receiver answered 502');
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describe('chatctl webhooks', () => {
  it('lists the dead letters with their errors, newest first', async () => {
    const { code, stdout } = await chatctl('list', '--status', 'dead');
    expect(code).toBe(0);
    const ids = [...stdout.matchAll(/^dead\s+(\S+)/gm)].map((m) => m[1]);
    expect(ids).toEqual([deadNew2, deadNew1, deadOther, deadOld]);
    expect(stdout).toMatch(/to bob, 24 attempts, created .*, dead-lettered /);
    expect(stdout).toContain('  receiver answered 503: down\n');
    const all = JSON.parse((await inProcess('list', '--json')).stdout) as { deliveryId: string }[];
    expect(all.map((d) => d.deliveryId)).toEqual([
      pending,
      delivered,
      deadNew2,
      deadNew1,
      deadOther,
      deadOld,
    ]);
    const retrying = await inProcess('list', '--status', 'retrying', '--limit', '1');
    expect(retrying.stdout).toMatch(new RegExp(`^pending\\s+${pending} .* next attempt `));
    expect(retrying.stdout).toContain('(the first 1; --limit for more)');
  }, 60_000);

  it('redrives those dead-lettered since a time: pending, due now, attempts reset; prints how many', async () => {
    const { code, stdout } = await chatctl(
      'redrive',
      '--since',
      new Date(Date.now() - 30 * 60_000).toISOString(),
    );
    expect(code).toBe(0);
    expect(stdout).toBe('redrove 2 dead-lettered deliveries; the notifier sends them again now\n');
    for (const id of [deadNew1, deadNew2]) {
      expect(await row(id)).toMatchObject({ status: 'pending', attempts: 0, finished: false, due: true });
    }
    expect((await row(deadNew1))?.last_error).toBe('receiver answered 500');
    expect(await row(deadOld)).toMatchObject({ status: 'dead', attempts: 24 });
  }, 60_000);

  it('redrives by id, and says which ids were no dead letter', async () => {
    const unknown = randomUUID();
    const { code, stdout, stderr } = await chatctl(
      'redrive',
      '--id',
      deadOld,
      '--id',
      `${delivered},${unknown}`,
    );
    expect(code).toBe(1);
    expect(stdout).toBe('redrove 1 dead-lettered delivery; the notifier sends them again now\n');
    expect(stderr).toContain(`${delivered} is not a dead letter`);
    expect(stderr).toContain(`${unknown} is not a dead letter`);
    expect(await row(deadOld)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await row(delivered)).toMatchObject({ status: 'delivered', attempts: 1, finished: true });
  }, 60_000);

  it('redrives all the rest, never touching pending or delivered ones', async () => {
    expect((await chatctl('redrive', '--all')).stdout).toBe(
      'redrove 1 dead-lettered delivery; the notifier sends them again now\n',
    );
    expect(await row(deadOther)).toMatchObject({ status: 'pending', attempts: 0, due: true });
    expect(await row(pending)).toMatchObject({ status: 'pending', attempts: 24, due: false });
    expect(await row(delivered)).toMatchObject({ status: 'delivered' });
    expect((await inProcess('redrive', '--all')).stdout).toMatch(/^redrove 0 dead-lettered deliveries/);
    expect((await inProcess('list', '--status', 'dead')).stdout).toBe('no webhook deliveries\n');
  }, 60_000);

  it('prints help and refuses bad usage', async () => {
    const helped = await inProcess('--help');
    expect(helped.code).toBe(0);
    expect(helped.stdout).toMatch(/Usage: chatctl webhooks list/);
    for (const args of [
      [],
      ['purge'],
      ['redrive'],
      ['redrive', '--all', '--id', randomUUID()],
      ['redrive', '--all', '--since', '2026-01-01T00:00:00Z'],
      ['redrive', '--id', 'not-a-uuid'],
      ['redrive', '--since', 'yesterday'],
      ['list', '--status', 'lost'],
      ['list', '--limit', '0'],
      ['list', 'extra'],
    ]) {
      const { code, stderr } = await inProcess(...args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(/^chatctl: /);
    }
  });
});
