/**
 * End-to-end latency of the live path: HTTP send → event frame on every member's socket.
 *
 *   npx tsx tests/bench/live-latency.ts [conversations=20] [members=50] [rate=100] [seconds=10]
 *
 * Starts its own command-api, projector (projection + relay) and two ws-gateways on a fresh database
 * and NATS prefix, opens conversations × members sockets (one per member, alternating gateways),
 * then sends `rate` messages/s for `seconds` through the HTTP API, each from a random member of a
 * random conversation. Latency per delivery = time the frame arrived at a socket − time the HTTP
 * request started (one clock: generator and sockets share this process). Also reports the gateways'
 * RSS growth per idle authenticated socket. Bounded: everything stops after the run.
 */
import { randomUUID } from 'node:crypto';
import { signToken } from '@chat/testkit';
import { connect } from 'nats';
import WebSocket from 'ws';
import { type Cluster, createGroup, startCluster } from '../src/support/cluster.js';

const [conversations = 20, members = 50, rate = 100, seconds = 10] = process.argv.slice(2).map(Number);

const rss = async (cluster: Cluster) =>
  Promise.all(
    cluster.gateways.map(async (g) => {
      const text = await fetch(`http://127.0.0.1:${g.port}/metrics`).then((r) => r.text());
      return Number(/^process_resident_memory_bytes (\d+)/m.exec(text)?.[1] ?? 0);
    }),
  );

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

const main = async () => {
  const cluster = await startCluster({ label: 'bench', gateways: 2 });
  const sockets: WebSocket[] = [];
  try {
    const groups: { id: string; members: string[] }[] = [];
    for (let c = 0; c < conversations; c++) {
      const ids = Array.from({ length: members }, (_, m) => `bench-${c}-${m}`);
      groups.push({ id: await createGroup(cluster, ids[0]!, ids.slice(1)), members: ids });
    }
    const sentAt = new Map<string, number>();
    const closes = new Map<number, number>();
    const latencies: number[] = [];
    const acks: number[] = [];
    // The gateway's own hop: NATS arrival (seen by this process too) → frame at a socket.
    const natsAt = new Map<string, number>();
    const hops: number[] = [];
    const nc = await connect({ servers: cluster.natsUrl });
    nc.subscribe(`${cluster.prefix}.conv.*`, {
      callback: (_err, msg) => {
        const e = JSON.parse(msg.string()) as { type: string; data: { messageId?: string } };
        if (e.type === 'MessageSent') natsAt.set(e.data.messageId ?? '', performance.now());
      },
    });
    let frames = 0;
    const rssBefore = await rss(cluster);
    const users = groups.flatMap((g) => g.members);
    for (let i = 0; i < users.length; i += 100) {
      await Promise.all(
        users.slice(i, i + 100).map(async (userId, k) => {
          const gw = cluster.gateways[(i + k) % 2]!;
          const token = await signToken(userId);
          // Retried like a real client would: under load an upgrade may be answered 503.
          let ws: WebSocket | undefined;
          for (let attempt = 0; !ws; attempt++) {
            const candidate = new WebSocket(`${gw.url}?access_token=${token}`);
            const opened = await new Promise<boolean>((resolve) => {
              candidate.once('open', () => resolve(true));
              candidate.once('error', () => resolve(false));
            });
            if (opened) ws = candidate;
            else if (attempt > 10) throw new Error(`could not connect ${userId}`);
            else await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
          }
          sockets.push(ws);
          ws.on('close', (code) => closes.set(code, (closes.get(code) ?? 0) + 1));
          ws.on('message', (data) => {
            const now = performance.now();
            frames++;
            const f = JSON.parse(String(data)) as {
              type: string;
              event?: { type: string; data: { messageId?: string } };
            };
            if (f.type === 'hello') ws.send('{"type":"resume","positions":{}}');
            if (f.type === 'event' && f.event?.type === 'MessageSent') {
              const id = f.event.data.messageId ?? '';
              const t0 = sentAt.get(id);
              if (t0 !== undefined) latencies.push(now - t0);
              const t1 = natsAt.get(id);
              if (t1 !== undefined) hops.push(now - t1);
            }
          });
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = await rss(cluster);
    const perGateway = users.length / cluster.gateways.length;
    const bytesPerSocket = rssAfter.map((after, i) => (after - rssBefore[i]!) / perGateway);

    let sent = 0;
    let failed = 0;
    const total = rate * seconds;
    const started = performance.now();
    const tokens = new Map<string, string>();
    const inFlight = new Set<Promise<void>>();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (sent < due) {
        sent++;
        const g = groups[Math.floor(Math.random() * groups.length)]!;
        const sender = g.members[Math.floor(Math.random() * g.members.length)]!;
        let token = tokens.get(sender);
        if (!token) {
          token = await signToken(sender);
          tokens.set(sender, token);
        }
        const messageId = randomUUID();
        sentAt.set(messageId, performance.now());
        const p = fetch(`${cluster.api}/v1/conversations/${g.id}/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ messageId, body: 'bench' }),
        }).then(
          (r) => {
            acks.push(performance.now() - sentAt.get(messageId)!);
            if (!r.ok) failed++;
            return r.arrayBuffer().then(() => undefined);
          },
          () => {
            failed++;
          },
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inFlight);
    const settleUntil = Date.now() + 20_000;
    while (latencies.length < (total - failed) * members && Date.now() < settleUntil) {
      await new Promise((r) => setTimeout(r, 100));
    }
    await nc.close();
    const sorted = latencies.sort((a, b) => a - b);
    const expected = (total - failed) * members;
    console.log(
      JSON.stringify(
        {
          sockets: users.length,
          conversations,
          membersPerConversation: members,
          offeredMsgPerSec: rate,
          seconds,
          messagesSent: total,
          sendFailures: failed,
          deliveriesExpected: expected,
          deliveriesSeen: sorted.length,
          framesReceived: frames,
          socketsClosedByServer: Object.fromEntries(closes),
          latencyMs: {
            p50: +percentile(sorted, 0.5).toFixed(2),
            p90: +percentile(sorted, 0.9).toFixed(2),
            p99: +percentile(sorted, 0.99).toFixed(2),
            max: +(sorted.at(-1) ?? NaN).toFixed(2),
          },
          natsToSocketMs: (() => {
            const h = hops.sort((x, y) => x - y);
            return { p50: +percentile(h, 0.5).toFixed(2), p99: +percentile(h, 0.99).toFixed(2) };
          })(),
          httpAckMs: (() => {
            const a = acks.sort((x, y) => x - y);
            return { p50: +percentile(a, 0.5).toFixed(2), p99: +percentile(a, 0.99).toFixed(2) };
          })(),
          gatewayRssBytesPerIdleSocket: bytesPerSocket.map((b) => Math.round(b)),
        },
        null,
        2,
      ),
    );
  } finally {
    for (const ws of sockets) ws.terminate();
    await cluster.stop();
  }
};

await main();
