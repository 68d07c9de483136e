import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAsLeader } from './leader.js';

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
});
