import { randomUUID } from 'node:crypto';
import type { ServerFrame } from '@chat/events';
import { createPostgresEventStore, type PostgresEventStore } from '@chat/eventstore';
import { signToken, waitFor } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rawSocket, sleep } from './support/clients.js';
import { type Cluster, startCluster } from './support/cluster.js';

// The gateway's limits and its part of guarantee 5 (API.md §4, DESIGN.md guarantees 3 and 5), checked on
// raw frames against real processes: command-api, projector (projection + relay), one gateway.

let cluster: Cluster;
let store: PostgresEventStore;
let nats: NatsConnection;
const sockets: Awaited<ReturnType<typeof rawSocket>>[] = [];
const u = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
const gw = () => cluster.gateways[0]!.url;

type Raw = Awaited<ReturnType<typeof rawSocket>>;
const open = async (userId: string, url = gw()): Promise<Raw> => {
  const s = await rawSocket(url, await signToken(userId));
  sockets.push(s);
  return s;
};
const errorsOf = (s: Raw, code: string) =>
  s.frames.filter(
    (f): f is Extract<ServerFrame, { type: 'error' }> => f.type === 'error' && f.error.code === code,
  );
const pong = async (s: Raw, ref: string) => {
  s.ws.send(JSON.stringify({ type: 'ping', ref }));
  await waitFor(() => s.frames.some((f) => f.type === 'pong' && f.ref === ref), { what: `pong ${ref}` });
};

beforeAll(async () => {
  cluster = await startCluster({ label: 'limits', gateways: 1 });
  store = createPostgresEventStore({ connectionString: cluster.db.url });
  nats = await connect({ servers: cluster.natsUrl });
});

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const g of cluster.gateways) console.error(`--- ${g.name} output\n${g.proc.output().slice(-4000)}`);
});

afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  await nats?.drain();
  await store?.close();
  await cluster?.stop();
});

describe('flood control (API.md §4: 20 commands/s, burst 40; ping in its own bucket)', () => {
  it('counts unreadable and invalid frames as commands', async () => {
    const s = await open(u('flooder'));
    for (let i = 0; i < 200; i++)
      s.ws.send(i % 2 ? '{not json' : JSON.stringify({ type: 'dance', ref: `d${i}` }));
    await waitFor(() => errorsOf(s, 'rate_limited').length + errorsOf(s, 'validation_failed').length >= 200, {
      what: 'an answer to every frame',
    });
    // A burst of 40 (plus the refill while the frames arrive) is answered validation_failed, the rest rate_limited.
    expect(errorsOf(s, 'rate_limited').length).toBeGreaterThanOrEqual(100);
    expect(errorsOf(s, 'validation_failed').length).toBeLessThan(100);
    await pong(s, 'still-open');
  });

  it('does not charge pings to the command budget', async () => {
    const s = await open(u('pinger'));
    for (let i = 0; i < 20; i++) s.ws.send(JSON.stringify({ type: 'ping', ref: `p${i}` }));
    for (let i = 0; i < 40; i++) s.ws.send(JSON.stringify({ type: 'dance', ref: `d${i}` }));
    await waitFor(() => errorsOf(s, 'validation_failed').length === 40, { what: '40 validation errors' });
    expect(s.frames.filter((f) => f.type === 'pong')).toHaveLength(20);
    expect(errorsOf(s, 'rate_limited')).toEqual([]);
  });

  it('bounds a ping flood with its own bucket: rate_limited per rejected ping, 1008 after 10 s', async () => {
    const s = await open(u('pingflood'));
    for (let i = 0; i < 300; i++) s.ws.send(JSON.stringify({ type: 'ping', ref: `p${i}` }));
    await waitFor(
      () => s.frames.filter((f) => f.type === 'pong').length + errorsOf(s, 'rate_limited').length >= 300,
      { what: 'an answer to every ping' },
    );
    const limited = errorsOf(s, 'rate_limited');
    expect(limited.length).toBeGreaterThanOrEqual(200);
    expect(limited.every((f) => f.ref?.startsWith('p'))).toBe(true);
    // Still flooding after 10 s of rejections: closed with 1008.
    const started = Date.now();
    const timer = setInterval(() => {
      for (let i = 0; i < 10; i++) s.ws.send(JSON.stringify({ type: 'ping', ref: 'x' }));
    }, 50);
    try {
      const closed = await Promise.race([s.closed, sleep(20_000).then(() => null)]);
      expect(closed?.code).toBe(1008);
      expect(Date.now() - started).toBeGreaterThanOrEqual(8_000);
    } finally {
      clearInterval(timer);
    }
  }, 40_000);
});
