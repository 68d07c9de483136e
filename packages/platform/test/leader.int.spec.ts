import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAsLeader } from '../src/leader.js';

let database: TestDatabase;
let pools: pg.Pool[];

beforeAll(async () => {
  database = await createTestDatabase('leader');
  pools = [new pg.Pool({ connectionString: database.url }), new pg.Pool({ connectionString: database.url })];
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  await database.drop();
});

describe('runAsLeader', () => {
  it('lets one instance lead and hands over to the standby when the leader stops', async () => {
    const logger = pino({ level: 'silent' });
    const leading: string[] = [];
    const stops = [new AbortController(), new AbortController()];
    const run = (name: string, i: number) =>
      runAsLeader({
        pool: pools[i]!,
        lockName: 'test-projection',
        logger,
        signal: stops[i]!.signal,
        retryMs: 50,
        run: async (lost) => {
          leading.push(name);
          await new Promise((resolve) => lost.addEventListener('abort', resolve, { once: true }));
          leading.splice(leading.indexOf(name), 1);
        },
      });
    const a = run('a', 0);
    await waitFor(() => leading.length === 1, { what: 'a leader' });
    const b = run('b', 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(leading).toEqual(['a']);

    stops[0]!.abort();
    await a;
    await waitFor(() => leading[0] === 'b', { what: 'standby takes over' });
    stops[1]!.abort();
    await b;
    expect(leading).toEqual([]);
  });

  it('when the leader’s lock session dies (pg_terminate_backend) the leader is told and stops; one leader goes on, on a live session', async () => {
    const logger = pino({ level: 'silent' });
    const named = (name: string) => {
      const pool = new pg.Pool({ connectionString: database.url, application_name: `leader-${name}` });
      pool.on('error', () => {});
      return pool;
    };
    const own = { a: named('a'), b: named('b') };
    const leading = new Set<string>();
    const timeline: string[] = [];
    const lostWith: unknown[] = [];
    const stops = { a: new AbortController(), b: new AbortController() };
    const run = (name: 'a' | 'b') =>
      runAsLeader({
        pool: own[name],
        lockName: 'test-terminated',
        logger,
        signal: stops[name].signal,
        retryMs: 50,
        run: async (lost) => {
          leading.add(name);
          timeline.push(`${name} leads`);
          await new Promise((resolve) => lost.addEventListener('abort', resolve, { once: true }));
          if (!stops[name].signal.aborted) lostWith.push(lost.reason);
          leading.delete(name);
          timeline.push(`${name} stops`);
        },
      });
    const lockHolders = async () =>
      (
        await pools[0]!.query<{ pid: number; application_name: string }>(
          `SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1`,
          [database.name],
        )
      ).rows;
    const a = run('a');
    const b = run('b');
    try {
      await waitFor(() => leading.size === 1, { what: 'a leader' });
      await new Promise((r) => setTimeout(r, 300));
      expect(leading.size).toBe(1);
      const [first] = [...leading];
      const [holder] = await lockHolders();
      expect(holder?.application_name).toBe(`leader-${first}`);
      // Only the leader's lock session dies; its process (this one) and its pool live on.
      const { rows } = await pools[0]!.query<{ n: number }>(
        'SELECT count(pg_terminate_backend($1))::int AS n',
        [holder!.pid],
      );
      expect(rows[0]!.n).toBe(1);
      // The leader learns it through `lost` (with the connection's error) and stops leading; then one
      // leader goes on — the standby, or the old leader again on a new session, whichever locks first.
      await waitFor(() => lostWith.length > 0, { what: 'the leader to be told' });
      expect(lostWith).toHaveLength(1);
      expect(lostWith[0]).toBeInstanceOf(Error);
      expect(timeline.slice(0, 2)).toEqual([`${first} leads`, `${first} stops`]);
      await waitFor(() => leading.size === 1, { what: 'a leader again' });
      await new Promise((r) => setTimeout(r, 500));
      expect(leading.size, `leading: ${[...leading]}`).toBe(1);
      const [next] = [...leading];
      const holders = await lockHolders();
      expect(holders.map((h) => h.application_name)).toEqual([`leader-${next}`]);
      expect(holders[0]!.pid).not.toBe(holder!.pid);
      expect(timeline).toHaveLength(3);
    } finally {
      stops.a.abort();
      stops.b.abort();
      const bounded = (what: string, p: Promise<unknown>) =>
        Promise.race([
          p,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error(`${what} did not end in 10 s`)), 10_000),
          ),
        ]);
      await bounded('runAsLeader of a and b', Promise.all([a, b]));
      await bounded('the pools', Promise.all([own.a.end(), own.b.end()]));
    }
  });
});
