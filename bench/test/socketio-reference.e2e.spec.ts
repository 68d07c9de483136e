import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runningChildren, setLogDir } from '@chat/processes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFanout } from '../src/fanout.js';
import { makePopulation, populationSockets } from '../src/fixtures.js';
import { connectPool, type GeneratorPool } from '../src/generators.js';
import { type SocketIoReference, startSocketIoReference } from '../src/socketio.js';

// The Socket.IO + Redis reference of `pnpm bench` B1, driven by the bench's own generator through the
// Engine.IO wire: every member of a conversation gets each message once, whichever of the two server
// processes holds its socket; a bad token and a non-member send are refused; stopping it ends its
// processes and removes Redis's directory.

const SECRET = 'socketio-reference-test-secret-0123456789';
const population = makePopulation(2, 3);
const logDir = mkdtempSync(join(tmpdir(), 'chat-bench-test-'));
let ref: SocketIoReference;
let pool: GeneratorPool;

beforeAll(async () => {
  setLogDir(logDir);
  ref = await startSocketIoReference({ population, jwtSecret: SECRET });
  pool = await connectPool({
    label: 'sio-test',
    count: 2,
    sockets: populationSockets(population, { targets: ref.targets.length }),
    targets: ref.targets,
    jwtSecret: SECRET,
    timeoutMs: 10_000,
    budgetMs: 20_000,
  });
});

afterAll(async () => {
  await pool?.close();
  await ref?.stop();
  rmSync(logDir, { recursive: true, force: true });
});

describe('Socket.IO + Redis reference', () => {
  it('connects every socket, spread over both server processes', () => {
    expect(ref.servers).toHaveLength(2);
    expect(pool.connected.reduce((s, c) => s + c.ok, 0)).toBe(6);
    expect(pool.connected.reduce((s, c) => s + c.failed, 0)).toBe(0);
    expect(new Set(populationSockets(population, { targets: 2 }).map((s) => s.target))).toEqual(
      new Set([0, 1]),
    );
  });

  it('delivers each message once to every member, across processes', async () => {
    const r = await runFanout(pool, {
      rate: 20,
      durationMs: 1000,
      drainMs: 5000,
      membersPerConversation: 3,
      groups: ref.groups,
    });
    expect(r.run.sent).toBe(20);
    expect(r.run.acked).toBe(20);
    expect(r.run.ackErrors).toBe(0);
    expect(r.delivered).toBe(60);
    expect(r.lost).toBe(0);
    expect(r.run.duplicates).toBe(0);
    // No seq on Socket.IO deliveries: each one was checked for duplicates by message instead.
    expect(r.run.unsequenced).toBe(r.run.received);
    expect(r.latency.count).toBe(60);
  });

  it('refuses a send into a conversation the user is not in', async () => {
    // Each generator's socket 0 sends into the other conversation than its own.
    const plans = pool.sockets.map((slice) => {
      const own = slice[0]!.conversationIds![0]!;
      const other = population.conversations.find((c) => c.conversationId !== own)!.conversationId;
      return [{ socket: 0, conversationId: other }];
    });
    const r = await runFanout(pool, {
      rate: 10,
      durationMs: 500,
      drainMs: 3000,
      membersPerConversation: 3,
      groups: ref.groups,
      plans,
    });
    expect(r.run.sent).toBeGreaterThan(0);
    expect(r.run.ackErrors).toBe(r.run.sent);
    expect(r.run.firstAckError).toContain('forbidden');
    expect(r.delivered).toBe(0);
  });

  it('refuses a socket whose token is not signed with the secret', async () => {
    const bad = await connectPool({
      label: 'sio-test-bad',
      count: 1,
      sockets: populationSockets(population, { targets: 2 }).slice(0, 2),
      targets: ref.targets,
      jwtSecret: 'another-secret-another-secret-0123456789',
      timeoutMs: 5000,
      budgetMs: 10_000,
    });
    try {
      expect(bad.connected[0]!.ok).toBe(0);
      expect(bad.connected[0]!.failed).toBe(2);
      expect(bad.connected[0]!.firstError).toMatch(/connect_error.*unauthorized/);
    } finally {
      await bad.close();
    }
  });

  it('stops its processes by PID and removes the Redis directory', async () => {
    const pids = [...ref.servers.map((s) => s.pid), ref.redis.child.pid];
    await pool.close();
    await ref.stop();
    expect(existsSync(ref.redis.dir)).toBe(false);
    const running = new Set(runningChildren().map((c) => c.pid));
    for (const pid of pids) expect(running.has(pid)).toBe(false);
    for (const pid of pids) expect(existsSync(`/proc/${pid}`)).toBe(false);
  });
});
