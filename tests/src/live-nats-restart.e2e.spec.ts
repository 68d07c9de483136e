import { randomUUID } from 'node:crypto';
import { type NatsServerProcess, startNatsServer } from '@chat/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  connectClient,
  expectContiguous,
  expectSocketsGapFree,
  sleep,
  type TestClient,
} from './support/clients.js';
import { type Cluster, createGroup, sendMany, startCluster } from './support/cluster.js';

// A NATS restart mid-stream: this file owns its nats-server (own port and storage dir) and kills
// only that process.

let cluster: Cluster;
let nats: NatsServerProcess;
const clients: TestClient[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  cluster = await startCluster({
    label: 'natsrestart',
    gateways: 2,
    natsUrl: `nats://127.0.0.1:${nats.port}`,
  });
});

afterAll(async () => {
  for (const c of clients) c.client.close();
  await cluster?.stop();
  await nats?.stop();
});

it('keeps delivering across a NATS restart mid-stream: what was written while NATS was down arrives after, on every socket, nothing lost, no duplicate', async () => {
  const u = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
  const [a, b, c] = [u('alice'), u('bob'), u('carol')];
  const group = await createGroup(cluster, a, [b, c]);
  const devices = await Promise.all([
    connectClient(cluster.gateways[0]!.url, b),
    connectClient(cluster.gateways[1]!.url, c),
    connectClient(cluster.gateways[1]!.url, a),
  ]);
  clients.push(...devices);
  const count = 400;
  // The outage, as times on this host's clock (the services run here too).
  let killedAt = Number.POSITIVE_INFINITY;
  let restartedAt = Number.POSITIVE_INFINITY;
  const pidBefore = nats.pid();
  await sendMany(cluster, a, group, count, {
    onSent: async (n) => {
      if (n === 100) {
        await nats.kill();
        killedAt = Date.now();
        await sleep(1000);
        restartedAt = Date.now();
        await nats.start();
      }
    },
  });
  for (const dev of devices) await dev.waitForSeq(group, count, 60_000);
  await sleep(300);
  expect(nats.pid()).not.toBe(pidBefore);
  for (const [i, dev] of devices.entries()) {
    // The restart touched the delivery path: every socket stayed open (the gateways rode the outage
    // out; no client reconnect and resume hid it)...
    expect(dev.sockets).toHaveLength(1);
    const socket = dev.sockets[0]!;
    // ...events were appended while NATS was down (their envelope's time is after the kill; the writers
    // went on over HTTP), and each socket got them after NATS was back.
    const writtenWhileDown = socket.frames.flatMap((f, at) =>
      f.type === 'event' && f.conversationId === group && Date.parse(f.event.occurredAt) > killedAt
        ? [{ seq: f.seq, at, occurredAt: Date.parse(f.event.occurredAt) }]
        : [],
    );
    expect(writtenWhileDown.filter((e) => e.occurredAt < restartedAt).length, `device ${i}`).toBeGreaterThan(
      0,
    );
    for (const e of writtenWhileDown) expect(socket.times[e.at]!).toBeGreaterThanOrEqual(restartedAt);
    expectSocketsGapFree(dev, group, count);
    expectContiguous(dev.seqs(group), count);
  }
  for (const gw of cluster.gateways) expect(gw.proc.output()).toContain('NATS disconnected');
});
