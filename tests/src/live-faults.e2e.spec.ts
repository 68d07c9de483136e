import { randomUUID } from 'node:crypto';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectClient,
  expectContiguous,
  expectSocketsGapFree,
  rawSocket,
  seqsOf,
  sleep,
  type TestClient,
} from './support/clients.js';
import {
  type Cluster,
  createGroup,
  sendMany,
  sendMessage,
  startCluster,
  storeUnpublishedMessage,
} from './support/cluster.js';

// Faults on the live path: a gateway crashing mid-stream, a client that stops reading, a relay that
// lags behind the event store. Guarantee 3 is checked on each socket's raw frames.

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
    await sleep(300);
    for (const dev of devices) {
      expectSocketsGapFree(dev, group, 1000);
      expectContiguous(dev.seqs(group), 1000);
    }
    // The clients of the killed gateway really did reconnect and resume, with events on both sockets.
    for (const dev of devices.slice(0, 3)) {
      expect(dev.resumed.length).toBeGreaterThan(1);
      expect(dev.sockets.filter((socket) => seqsOf(socket.frames, group).length > 0).length).toBeGreaterThan(
        1,
      );
    }
  });

  it('closes a client that stops reading (1013) while the others keep receiving; memory stays bounded', async () => {
    const gw = await cluster.startGateway('gw-slow', { WS_MAX_BACKPRESSURE: String(64 * 1024) });
    const [a, s, f] = [u('alice'), u('slow'), u('fast')];
    const group = await createGroup(cluster, a, [s, f]);
    const slow = await rawSocket(gw.url, await signToken(s));
    slow.ws.send(JSON.stringify({ type: 'resume', ref: 'r', positions: {} }));
    await waitFor(() => slow.frames.some((fr) => fr.type === 'resumed'), {
      what: 'slow resumed',
      timeoutMs: 30_000,
    });
    const fast = await connectClient(gw.url, f);
    clients.push(fast);
    // Stop reading: the kernel buffers fill, then the gateway's send buffer for this socket grows.
    (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    // ~14 MB: well over what the kernel's socket buffers of a loopback connection take in (4–7 MB here).
    const count = 900;
    await sendMany(cluster, a, group, count, { body: '😀'.repeat(3900) });
    await fast.waitForSeq(group, count, 60_000);
    await sleep(300);
    expectSocketsGapFree(fast, group, count);
    const metrics = await fetch(`http://127.0.0.1:${gw.port}/metrics`).then((r) => r.text());
    const closes = Number(/^ws_slow_consumer_closes_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    let closed: { code: number } | undefined;
    void slow.closed.then((c) => {
      closed = c;
    });
    // Closed, or (a gateway that never closes it) the whole burst arrived.
    await waitFor(() => closed !== undefined || seqsOf(slow.frames, group).includes(count), {
      what: 'the slow socket to be closed',
      timeoutMs: 30_000,
    }).catch(() => undefined);
    // Bounded: once the slow socket's buffer passed the limit the gateway closed it and stopped queueing
    // for it, so all it ever gets is what the kernel's buffers held (4–8 MB on loopback here) plus at
    // most the limit: a strict part of the ~14 MB burst. A gateway that kept queueing for it would hand
    // it the whole burst once it reads again. What it did get is gap-free up to the close.
    const slowSeqs = seqsOf(slow.frames, group);
    console.info(
      `slow consumer got ${slow.bytes()} bytes, ${slowSeqs.length} of ${count} events, before its close`,
    );
    expect(slowSeqs.at(-1) ?? 0).toBeLessThan(count);
    expect(slowSeqs).toEqual(Array.from({ length: slowSeqs.length }, (_, i) => (slowSeqs[0] ?? 0) + i));
    expect(closes).toBeGreaterThanOrEqual(1);
    expect([1013, 1006]).toContain((closed as { code: number } | undefined)?.code);
  });

  // A chaos run found this: a socket that resumes while the relay lags behind the event store got the
  // replayed events from the store, and then the same events again when the relay caught up and the
  // conversation's feed published them. The socket now stays off the feed until the feed reaches what
  // the replay sent (hub.ts, #finishCatchUp). Since the command-api publishes what it stores itself, a
  // feed is behind the store when that publish never came (its writer died after the commit) until the
  // relay's heads: the test stores seq 2 unpublished while the relay is stopped.
  it('resume while the feed lags behind the store: the replayed event is not sent again when the relay catches up', async () => {
    const [a, b] = [u('alice'), u('bob')];
    // gw2: gw1 was killed by the first test (which is why `it.fails` hid an ECONNREFUSED when the files ran together).
    const gw = cluster.gateways[1]!;
    const group = await createGroup(cluster, a, [b]);
    const resumeOn = async (
      socket: Awaited<ReturnType<typeof rawSocket>>,
      positions: Record<string, number>,
    ) => {
      socket.ws.send(JSON.stringify({ type: 'resume', ref: 'r', positions }));
      await waitFor(() => socket.frames.some((fr) => fr.type === 'resumed'), { what: 'resumed' });
    };
    // S1 keeps this gateway's feed of the conversation alive, at seq 1.
    const s1 = await rawSocket(gw.url, await signToken(a));
    await resumeOn(s1, {});
    await sendMessage(cluster, b, group, 'one');
    await waitFor(() => seqsOf(s1.frames, group).includes(1), { what: 'seq 1 at S1' });
    const projector = cluster.projector.pid;
    process.kill(projector, 'SIGSTOP'); // the relay lives in the projector
    let s2: Awaited<ReturnType<typeof rawSocket>> | undefined;
    try {
      const two = await storeUnpublishedMessage(cluster, b, group, 'two', 1);
      expect(two.seq).toBe(2);
      s2 = await rawSocket(gw.url, await signToken(a));
      await resumeOn(s2, { [group]: 1 });
      expect(seqsOf(s2.frames, group)).toEqual([2]);
      expect(seqsOf(s1.frames, group)).toEqual([1]); // the feed really is behind
    } finally {
      process.kill(projector, 'SIGCONT');
    }
    await waitFor(() => seqsOf(s1.frames, group).includes(2), {
      what: 'the relay to publish seq 2',
      timeoutMs: 30_000,
    });
    await sendMessage(cluster, b, group, 'three');
    await waitFor(() => seqsOf(s1.frames, group).includes(3), { what: 'seq 3 at S1' });
    await waitFor(() => seqsOf(s2!.frames, group).includes(3), { what: 'seq 3 at S2' });
    expect(seqsOf(s1.frames, group)).toEqual([1, 2, 3]);
    expect(seqsOf(s2.frames, group)).toEqual([2, 3]);
    s1.ws.close();
    s2.ws.close();
  });

  it('a resume naming a seq past the end is up to date: the next live event still arrives (API.md §4)', async () => {
    const [a, b] = [u('alice'), u('bob')];
    const gw = cluster.gateways[1]!;
    const group = await createGroup(cluster, a, [b]);
    const s = await rawSocket(gw.url, await signToken(a));
    s.ws.send(JSON.stringify({ type: 'resume', ref: 'far', positions: { [group]: 1000 } }));
    await waitFor(() => s.frames.some((fr) => fr.type === 'resumed'), { what: 'resumed' });
    const one = await sendMessage(cluster, b, group, 'after a resume from the future');
    await waitFor(() => seqsOf(s.frames, group).includes(one.seq), { what: `seq ${one.seq}` });
    expect(seqsOf(s.frames, group)).toEqual([one.seq]);
    s.ws.close();
  });
});
