import { randomUUID } from 'node:crypto';
import { type NatsServerProcess, startNatsServer } from '@chat/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { connectClient, expectContiguous, sleep, type TestClient } from './support/clients.js';
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

it('keeps delivering across a NATS restart mid-stream, nothing lost, no duplicate', async () => {
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
  await sendMany(cluster, a, group, count, {
    onSent: async (n) => {
      if (n === 100) {
        await nats.kill();
        await sleep(1000);
        await nats.start();
      }
    },
  });
  for (const dev of devices) await dev.waitForSeq(group, count, 60_000);
  for (const dev of devices) {
    expectContiguous(dev.seqs(group), count);
  }
});
