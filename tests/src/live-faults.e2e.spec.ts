import { randomUUID } from 'node:crypto';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectClient, expectContiguous, rawSocket, type TestClient } from './support/clients.js';
import { type Cluster, createGroup, sendMany, startCluster } from './support/cluster.js';

// Faults on the live path: a gateway crashing mid-stream, and a client that stops reading.

let cluster: Cluster;
const clients: TestClient[] = [];
const u = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  cluster = await startCluster({ label: 'faults', gateways: 2 });
});

afterAll(async () => {
  for (const c of clients) c.client.close();
  await cluster?.stop();
});

describe('live path under faults', () => {
  it('SIGKILL of a gateway mid-stream of 1,000 messages: its clients resume on the other one, no gap, no duplicate', async () => {
    const [a, b, c, d] = [u('alice'), u('bob'), u('carol'), u('dave')];
    const group = await createGroup(cluster, a, [b, c, d]);
    let gw1Alive = true;
    const [gw1, gw2] = cluster.gateways as [Cluster['gateways'][0], Cluster['gateways'][0]];
    // Clients of gateway 1 fail over to gateway 2 once it is gone (as a load balancer would).
    const onGw1 = () => (gw1Alive ? gw1.url : gw2.url);
    const devices = await Promise.all([
      connectClient(onGw1, b),
      connectClient(onGw1, c),
      connectClient(onGw1, a),
      connectClient(gw2.url, d),
      connectClient(gw2.url, b),
    ]);
    clients.push(...devices);
    await sendMany(cluster, a, group, 1000, {
      onSent: async (n) => {
        if (n === 300) {
          gw1Alive = false;
          await gw1.proc.kill();
        }
      },
    });
    for (const dev of devices) await dev.waitForSeq(group, 1000, 60_000);
    for (const dev of devices) expectContiguous(dev.seqs(group), 1000);
    // The clients of the killed gateway really did reconnect and resume.
    for (const dev of devices.slice(0, 3)) expect(dev.resumed.length).toBeGreaterThan(1);
  });

  it('closes a client that stops reading (1013) while the others keep receiving; memory stays bounded', async () => {
    const gw = await cluster.startGateway('gw-slow', { WS_MAX_BACKPRESSURE: String(64 * 1024) });
    const [a, s, f] = [u('alice'), u('slow'), u('fast')];
    const group = await createGroup(cluster, a, [s, f]);
    const slow = await rawSocket(gw.url, await signToken(s));
    slow.ws.send(JSON.stringify({ type: 'resume', ref: 'r', positions: {} }));
    await waitFor(() => slow.frames.some((fr) => fr.type === 'resumed'), { what: 'slow resumed' });
    const fast = await connectClient(gw.url, f);
    clients.push(fast);
    // Stop reading: the kernel buffers fill, then the gateway's send buffer for this socket grows.
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const count = 600;
    await sendMany(cluster, a, group, count, { body: '😀'.repeat(3900) });
    await fast.waitForSeq(group, count, 60_000);
    expectContiguous(fast.seqs(group), count);
    const metrics = await fetch(`http://127.0.0.1:${gw.port}/metrics`).then((r) => r.text());
    const closes = Number(/^ws_slow_consumer_closes_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    expect(closes).toBeGreaterThanOrEqual(1);
    const rss = Number(/^process_resident_memory_bytes (\d+)/m.exec(metrics)?.[1] ?? 0);
    expect(rss).toBeLessThan(512 * 1024 * 1024);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed;
    expect([1013, 1006]).toContain(closed.code);
  });
});
