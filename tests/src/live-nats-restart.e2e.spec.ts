import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { connectClient, expectContiguous, sleep, type TestClient } from './support/clients.js';
import { type Cluster, createGroup, sendMany, startCluster } from './support/cluster.js';

// A NATS restart mid-stream: this file owns its nats-server (own port and storage dir) and kills
// only that process.

let cluster: Cluster;
let nats: ChildProcess | undefined;
let natsPort = 0;
let storeDir = '';
const clients: TestClient[] = [];

const startNats = async () => {
  const child = spawn(
    '/usr/sbin/nats-server',
    ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', storeDir],
    {
      stdio: 'ignore',
    },
  );
  nats = child;
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const s = tcpConnect(natsPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    { what: 'nats-server listening' },
  );
};

const stopNats = async () => {
  const child = nats;
  nats = undefined;
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
};

beforeAll(async () => {
  natsPort = await freePort();
  storeDir = await mkdtemp(join(tmpdir(), 'chat-nats-'));
  await startNats();
  cluster = await startCluster({
    label: 'natsrestart',
    gateways: 2,
    natsUrl: `nats://127.0.0.1:${natsPort}`,
  });
});

afterAll(async () => {
  for (const c of clients) c.client.close();
  await cluster?.stop();
  await stopNats();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
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
        await stopNats();
        await sleep(1000);
        await startNats();
      }
    },
  });
  for (const dev of devices) await dev.waitForSeq(group, count, 60_000);
  for (const dev of devices) {
    expectContiguous(dev.seqs(group), count);
  }
});
