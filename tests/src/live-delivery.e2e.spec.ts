import { randomUUID } from 'node:crypto';
import { signToken, startService, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  connectClient,
  expectSocketsGapFree,
  rawSocket,
  seqsOf,
  sleep,
  type TestClient,
  upgradeStatus,
} from './support/clients.js';
import {
  type Cluster,
  createGroup,
  sendMessage,
  startCluster,
  storeUnpublishedMessage,
} from './support/cluster.js';

// Acceptance of issue 4 on real processes: command-api, projector (projection + relay), two gateways.

let cluster: Cluster;
const clients: TestClient[] = [];
const u = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
const gw = (i: number) => cluster.gateways[i]!.url;
const connect = async (i: number, userId: string, positions?: Record<string, number>) => {
  const c = await connectClient(gw(i), userId, positions ? { positions } : {});
  clients.push(c);
  return c;
};

beforeAll(async () => {
  cluster = await startCluster({
    label: 'live',
    gateways: 2,
    gatewayEnv: { ALLOWED_ORIGINS: 'https://app.example.com' },
  });
});

afterEach((ctx) => {
  if (ctx.task.result?.state !== 'fail') return;
  for (const g of cluster.gateways) console.error(`--- ${g.name} output\n${g.proc.output().slice(-4000)}`);
  console.error(`--- command-api output\n${cluster.commandApi.output().slice(-4000)}`);
  console.error(`--- projector output\n${cluster.projector.output().slice(-4000)}`);
  for (const c of clients)
    if (c.errors.length) console.error(`--- errors of ${c.userId}`, JSON.stringify(c.errors));
});

afterAll(async () => {
  for (const c of clients) c.client.close();
  await cluster?.stop();
});

/** What the app saw (through the SDK) and, stricter, what each socket carried (guarantee 3 is per socket). */
const assertGapFree = (dev: TestClient, conversationId: string, from: number, to: number) => {
  expectSocketsGapFree(dev, conversationId, to, from);
  expect(dev.seqs(conversationId)).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
};
/** Every conversation a socket's frames name (event, receipt, typing, unread, ack, notification). */
const conversationsNamed = (frames: readonly { type: string }[]) =>
  new Set(
    frames.flatMap((f) => {
      const text = JSON.stringify(f);
      return [...text.matchAll(/"conversationId":"([0-9a-f-]{36})"/g)].map((m) => m[1]!);
    }),
  );

describe('live delivery across two gateways', () => {
  it('delivers a direct and a 3-member group conversation in order, to every device of every member', async () => {
    const [a, b, x] = [u('alice'), u('bob'), u('xavier')];
    const a1 = await connect(0, a);
    const b2 = await connect(1, b);
    const a2 = await connect(1, a); // A's second device, on the other gateway
    const x1 = await connect(0, x);

    const direct = await cluster.http<{ conversationId: string }>(a, 'POST', '/v1/conversations', {
      kind: 'direct',
      members: [b],
    });
    const group = await createGroup(cluster, a, [b, x]);
    for (let i = 0; i < 10; i++) {
      await a1.client.send({ conversationId: direct.conversationId, body: `a→b ${i}` });
      await sendMessage(cluster, i % 2 ? b : x, group, `group ${i}`);
    }
    await b2.client.send({ conversationId: direct.conversationId, body: 'b→a' });
    for (const c of [a1, a2, b2]) await c.waitForSeq(direct.conversationId, 11);
    for (const c of [a1, a2, b2, x1]) await c.waitForSeq(group, 10);
    for (const c of [a1, a2, b2]) assertGapFree(c, direct.conversationId, 0, 11);
    for (const c of [a1, a2, b2, x1]) assertGapFree(c, group, 0, 10);
    const bodies = b2.events
      .filter((e) => e.conversationId === direct.conversationId && e.event.type === 'MessageSent')
      .map((e) => (e.event.data as { body: string }).body);
    expect(bodies).toEqual([...Array.from({ length: 10 }, (_, i) => `a→b ${i}`), 'b→a']);
    // X is in the group only: no frame of X's sockets names the direct conversation.
    for (const socket of x1.sockets)
      expect(conversationsNamed(socket.frames).has(direct.conversationId)).toBe(false);
  });

  it('follows membership live: C gets MemberJoined and what follows, nothing after MemberLeft', async () => {
    const [a, b, c] = [u('alice'), u('bob'), u('carol')];
    const a1 = await connect(0, a);
    const c2 = await connect(1, c);
    const c1 = await connect(0, c);
    const group = await createGroup(cluster, a, [b]);
    await sendMessage(cluster, a, group, 'before C');
    const other = await createGroup(cluster, a, [b]); // C is never in this one
    await sendMessage(cluster, b, other, 'secret');
    const joined = await cluster.http<{ seq: number }>(a, 'POST', `/v1/conversations/${group}/members`, {
      userId: c,
    });
    await sendMessage(cluster, b, group, 'after C joined');
    for (const dev of [c1, c2]) await dev.waitForSeq(group, joined.seq + 1);
    const raw = (dev: TestClient) => dev.sockets.flatMap((s) => seqsOf(s.frames, group));
    for (const dev of [c1, c2]) {
      expect(raw(dev)).toEqual([joined.seq, joined.seq + 1]);
      expect(dev.events[0]!.event.type).toBe('MemberJoined');
    }
    const left = await cluster.http<{ seq: number }>(a, 'DELETE', `/v1/conversations/${group}/members/${c}`);
    for (let i = 0; i < 5; i++) await sendMessage(cluster, b, group, `after C left ${i}`);
    await a1.waitForSeq(group, left.seq + 5);
    await sleep(300);
    for (const dev of [c1, c2]) {
      expect(raw(dev)).toEqual([joined.seq, joined.seq + 1, left.seq]);
      expect(dev.events.at(-1)!.event.type).toBe('MemberLeft');
      for (const socket of dev.sockets) expect(conversationsNamed(socket.frames).has(other)).toBe(false);
    }
  });

  it('resume after a disconnect: exactly the 20 missed events, then live, no duplicate', async () => {
    const [a, b] = [u('alice'), u('bob')];
    const group = await createGroup(cluster, a, [b]);
    const b1 = await connect(1, b);
    await sendMessage(cluster, a, group, 'seen');
    await b1.waitForSeq(group, 1);
    const positions = b1.client.positions();
    b1.client.close();
    for (let i = 0; i < 20; i++) await sendMessage(cluster, a, group, `missed ${i}`);
    const b2 = await connect(0, b, positions);
    await b2.waitForSeq(group, 21);
    await sendMessage(cluster, a, group, 'live');
    await b2.waitForSeq(group, 22);
    await sleep(200);
    assertGapFree(b2, group, 2, 22);
    expect(b2.resumed[0]).toMatchObject({ truncated: [], unknown: [] });
  });

  it('an event its writer stored but never published reaches every socket through the relay’s heads', async () => {
    // The command-api publishes a conversation's events right after their commit (LIVE_PUBLISH_FROM);
    // one that died in between published nothing. Here the writer is the test: it appends straight to
    // the store. The relay then publishes the conversation's head, and each gateway reads from the
    // store what it lacks, in order, before what follows.
    const [a, b] = [u('alice'), u('bob')];
    const group = await createGroup(cluster, a, [b]);
    const a1 = await connect(0, a);
    const b1 = await connect(1, b);
    await sendMessage(cluster, a, group, 'published');
    for (const dev of [a1, b1]) await dev.waitForSeq(group, 1);
    await storeUnpublishedMessage(cluster, a, group, 'stored, never published', 1);
    // Nothing else is said meanwhile: no later event shows the gateways a gap, only the heads can.
    for (const dev of [a1, b1]) await dev.waitForSeq(group, 2);
    await sendMessage(cluster, b, group, 'published after it');
    for (const dev of [a1, b1]) {
      await dev.waitForSeq(group, 3);
      assertGapFree(dev, group, 1, 3);
    }
    expect(b1.events.map((f) => (f.event.data as { body?: string }).body)).toEqual([
      'published',
      'stored, never published',
      'published after it',
    ]);
  });

  it('presence: co-members see online when the first device connects and offline within 1 s of the last closing', async () => {
    const [a, b] = [u('alice'), u('bob')];
    const group = await createGroup(cluster, a, [b]);
    // Presence frames are one-shot: connect once the log (and so both gateways) know the conversation.
    await waitFor(() => cluster.http(b, 'GET', `/v1/conversations/${group}`).then(() => true), {
      what: 'conversation visible',
    });
    const b1 = await connect(1, b);
    const a1 = await connect(0, a);
    await waitFor(() => b1.presence.some((p) => p.userId === a && p.status === 'online'), { what: 'online' });
    const stranger = u('stranger');
    type Presence = { users: { userId: string; status: string; lastSeenAt: string | null }[] };
    const query = () => cluster.http<Presence>(b, 'GET', `/v1/presence?userIds=${a},${stranger}`);
    expect((await query()).users).toEqual([
      { userId: a, status: 'online', lastSeenAt: null },
      { userId: stranger, status: 'unknown', lastSeenAt: null },
    ]);
    const a2 = await connect(1, a);
    a1.client.close();
    await sleep(500);
    expect(b1.presence.filter((p) => p.userId === a).map((p) => p.status)).toEqual(['online']);
    const closedAt = Date.now();
    a2.client.close();
    await waitFor(() => b1.presence.some((p) => p.userId === a && p.status === 'offline'), {
      what: 'offline',
      timeoutMs: 3000,
    });
    expect(Date.now() - closedAt).toBeLessThan(1000);
    const after = (await query()).users[0]!;
    expect(after.status).toBe('offline');
    expect(Date.parse(after.lastSeenAt ?? '')).toBeGreaterThanOrEqual(closedAt - 1000);
  });

  it('unread frames on raw sockets (API.md §4 v1.1): none for a new message; every device of a MarkRead’s reader; each member who had not read a deleted message', async () => {
    const [a, b, c] = [u('alice'), u('bob'), u('carol')];
    const group = await createGroup(cluster, a, [b, c]);
    for (const user of [a, b, c]) {
      await waitFor(() => cluster.http(user, 'GET', `/v1/conversations/${group}`).then(() => true), {
        what: 'conversation visible',
      });
    }
    const sockets = {
      a1: await rawSocket(gw(0), await signToken(a)),
      a2: await rawSocket(gw(1), await signToken(a)),
      b1: await rawSocket(gw(1), await signToken(b)),
      c1: await rawSocket(gw(0), await signToken(c)),
    };
    const unread = (name: keyof typeof sockets) =>
      sockets[name].frames.flatMap((f) =>
        f.type === 'unread' && f.conversationId === group ? [`${f.unreadCount}/${f.total}`] : [],
      );
    const reachSeq = (seq: number) =>
      waitFor(
        () =>
          Object.values(sockets).every((s) =>
            s.frames.some((f) => f.type === 'event' && f.conversationId === group && f.seq === seq),
          ),
        { what: `every socket at seq ${seq}`, timeoutMs: 30_000 },
      );
    try {
      await sendMessage(cluster, b, group, 'from bob'); // seq 1
      const m2 = await sendMessage(cluster, c, group, 'from carol'); // seq 2 (carol's watermark moves)
      await reachSeq(2);
      // A MarkRead publishes to the reader's devices; a frame for a message would have come first.
      for (const user of [a, b]) {
        await cluster.http(user, 'POST', `/v1/conversations/${group}/read`, { upToSeq: m2.seq });
      }
      await waitFor(() => (['a1', 'a2', 'b1'] as const).every((n) => unread(n).length > 0), {
        what: 'the MarkRead frames',
        timeoutMs: 30_000,
      });
      for (const name of ['a1', 'a2', 'b1'] as const) expect(unread(name), name).toEqual(['0/0']);
      expect(unread('c1')).toEqual([]);

      // Bob deletes a message alice and carol had not read: they get a frame, bob none.
      const m3 = await sendMessage(cluster, b, group, 'oops'); // seq 3
      await cluster.http(b, 'DELETE', `/v1/conversations/${group}/messages/${m3.messageId}`); // seq 4
      await reachSeq(4);
      await waitFor(
        () => unread('a1').length === 2 && unread('a2').length === 2 && unread('c1').length === 1,
        { what: 'the deletion frames', timeoutMs: 30_000 },
      );
      // Bob's next MarkRead leaves alice's new message unread: its frame (1/1) follows any earlier one.
      await sendMessage(cluster, a, group, 'one more'); // seq 5
      await cluster.http(b, 'POST', `/v1/conversations/${group}/read`, { upToSeq: 4 });
      await waitFor(() => unread('b1').includes('1/1'), {
        what: "bob's second MarkRead frame",
        timeoutMs: 30_000,
      });
      expect(unread('a1')).toEqual(['0/0', '0/0']);
      expect(unread('a2')).toEqual(['0/0', '0/0']);
      expect(unread('c1')).toEqual(['0/0']);
      expect(unread('b1')).toEqual(['0/0', '1/1']);
      // No socket got an unread frame of another conversation.
      for (const s of Object.values(sockets))
        expect(s.frames.filter((f) => f.type === 'unread' && f.conversationId !== group)).toEqual([]);
    } finally {
      for (const s of Object.values(sockets)) s.ws.close();
    }
  });

  it('reactions reach every socket of every member as event frames, in seq order with the messages (raw sockets)', async () => {
    const [a, b] = [u('alice'), u('bob')];
    const group = await createGroup(cluster, a, [b]);
    for (const user of [a, b]) {
      await waitFor(() => cluster.http(user, 'GET', `/v1/conversations/${group}`).then(() => true), {
        what: 'conversation visible',
      });
    }
    const sockets = [
      await rawSocket(gw(0), await signToken(a)),
      await rawSocket(gw(1), await signToken(a)),
      await rawSocket(gw(1), await signToken(b)),
    ];
    try {
      const m = await sendMessage(cluster, a, group, 'react to me'); // seq 1
      const path = (r: string) =>
        `/v1/conversations/${group}/messages/${m.messageId}/reactions/${encodeURIComponent(r)}`;
      await cluster.http(b, 'PUT', path('👍')); // seq 2
      await cluster.http(b, 'PUT', path('👍')); // a repeat: nothing
      await sendMessage(cluster, b, group, 'and a reply'); // seq 3
      await cluster.http(a, 'PUT', path('🎉')); // seq 4
      const removed = await cluster.http<{ seq: number }>(b, 'DELETE', path('👍')); // seq 5
      expect(removed.seq).toBe(5);
      const events = (s: (typeof sockets)[number]) =>
        s.frames.flatMap((f) => (f.type === 'event' && f.conversationId === group ? [f] : []));
      await waitFor(() => sockets.every((s) => events(s).some((f) => f.seq === 5)), {
        what: 'seq 5 everywhere',
      });
      for (const s of sockets) {
        expect(events(s).map((f) => [f.seq, f.event.type])).toEqual([
          [1, 'MessageSent'],
          [2, 'ReactionAdded'],
          [3, 'MessageSent'],
          [4, 'ReactionAdded'],
          [5, 'ReactionRemoved'],
        ]);
        expect(events(s)[1]?.event).toMatchObject({
          type: 'ReactionAdded',
          revision: 2,
          data: {
            conversationId: group,
            messageId: m.messageId,
            userId: b,
            reaction: '👍',
            messageSenderId: a,
          },
        });
      }
    } finally {
      for (const s of sockets) s.ws.close();
    }
  });

  it('typing reaches the other members but never the typist; receipts and a MarkRead’s unread counts reach every device', async () => {
    const [a, b] = [u('alice'), u('bob')];
    const group = await createGroup(cluster, a, [b]);
    const a1 = await connect(0, a);
    const a2 = await connect(1, a);
    const b1 = await connect(1, b);
    expect(a1.client.typing(group)).toBe(true);
    // Typing is ephemeral (no seq, no replay): re-type after the 3 s throttle if the first was lost.
    await waitFor(
      () => {
        if (b1.typing.length > 0) return true;
        a1.client.typing(group);
        return false;
      },
      { what: 'typing at B', timeoutMs: 30_000, intervalMs: 500 },
    );
    const sent = await b1.client.send({ conversationId: group, body: 'read me' });
    // A's MarkRead on one device sends the new count (0) to both of A's devices (the projector publishes
    // it, the gateways forward it); B's message sent none.
    const unreadAt = (dev: TestClient, n: number) =>
      waitFor(
        () => dev.unread.some((f) => f.conversationId === group && f.unreadCount === n && f.total === n),
        {
          what: `unread ${n} at ${dev.userId}`,
        },
      );
    await a1.client.markRead(group, Number(sent.seq));
    for (const dev of [a1, a2]) await unreadAt(dev, 0);
    for (const dev of [a1, a2]) expect(dev.unread.filter((f) => f.conversationId === group)).toHaveLength(1);
    for (const dev of [a1, a2, b1]) {
      await waitFor(() => dev.receipts.some((r) => r.userId === a && r.readSeq === sent.seq), {
        what: 'receipt',
      });
    }
    await sleep(200);
    expect(a1.typing).toEqual([]);
    expect(a2.typing).toEqual([]);
  });

  it('answers bad frames with the documented error or close and keeps the socket open', async () => {
    const a = u('alice');
    const group = await createGroup(cluster, a, [u('bob')]);
    const foreign = await createGroup(cluster, u('eve'), [u('mallory')]);
    const { ws, frames, closed } = await rawSocket(gw(0), await signToken(a));
    const errors = () => frames.filter((f) => f.type === 'error');
    ws.send('{not json');
    ws.send(JSON.stringify({ type: 'dance', ref: 'r1' }));
    ws.send(JSON.stringify({ type: 'read', ref: 'r2', conversationId: group, upToSeq: 'zero' }));
    ws.send(JSON.stringify({ type: 'resume', ref: 'r3', positions: { [foreign]: 0, [randomUUID()]: 3 } }));
    ws.send(JSON.stringify({ type: 'ping', ref: 'r4' }));
    await waitFor(() => frames.some((f) => f.type === 'pong'), { what: 'pong' });
    await waitFor(() => frames.some((f) => f.type === 'resumed'), { what: 'resumed' });
    expect(errors().map((f) => f.type === 'error' && [f.ref, f.error.code])).toEqual([
      [null, 'validation_failed'],
      ['r1', 'validation_failed'],
      ['r2', 'validation_failed'],
    ]);
    const resumed = frames.find((f) => f.type === 'resumed');
    expect(resumed && resumed.type === 'resumed' && [...resumed.unknown].length).toBe(2);
    ws.send('x'.repeat(17 * 1024));
    expect((await closed).code).toBe(1009);

    // Flood control: beyond the burst, rate_limited per rejected frame, socket still open.
    const flood = await rawSocket(gw(1), await signToken(a));
    for (let i = 0; i < 200; i++)
      flood.ws.send(JSON.stringify({ type: 'typing', ref: `t${i}`, conversationId: group }));
    const limited = () => flood.frames.filter((f) => f.type === 'error' && f.error.code === 'rate_limited');
    // 200 frames against a burst of 40 and 20/s: well over 100 are refused, each with its own error.
    await waitFor(() => limited().length >= 100, { what: 'rate_limited errors', timeoutMs: 30_000 });
    expect(new Set(limited().map((f) => f.type === 'error' && f.ref)).size).toBe(limited().length);
    flood.ws.send(JSON.stringify({ type: 'ping', ref: 'still-open' }));
    await waitFor(() => flood.frames.some((f) => f.type === 'pong' && f.ref === 'still-open'), {
      what: 'pong',
    });
    flood.ws.close();
  });

  it('refuses bad tokens (401) and foreign origins (403) before the upgrade', async () => {
    const url = gw(0);
    expect(await upgradeStatus(url)).toBe(401);
    expect(await upgradeStatus(`${url}?access_token=garbage`)).toBe(401);
    expect(await upgradeStatus(`${url}?access_token=${await signToken('a', { expiresIn: -60 })}`)).toBe(401);
    expect(
      await upgradeStatus(`${url}?access_token=${await signToken('a', { secret: 'x'.repeat(32) })}`),
    ).toBe(401);
    const good = await signToken(u('alice'));
    expect(await upgradeStatus(`${url}?access_token=${good}`, { origin: 'https://evil.example.com' })).toBe(
      403,
    );
    expect(await upgradeStatus(`${url}?access_token=${good}`, { origin: 'https://app.example.com' })).toBe(
      101,
    );
    expect(await upgradeStatus(url, {}, ['chat.v1', `bearer.${good}`])).toBe(101);
  });

  it('a second gateway started on a port in use fails to start instead of sharing it', async () => {
    // uSockets binds with SO_REUSEPORT unless told otherwise: the second process would have taken a
    // share of the first one's connections (and of another test file's, when ports collide).
    const taken = cluster.gateways[0]!;
    const second = await startService({
      name: 'gw-same-port',
      entry: 'services/ws-gateway',
      env: { ...cluster.env, PORT: String(taken.port), HOST: '127.0.0.1', GATEWAY_ID: 'gw-same-port' },
    });
    try {
      const code = await Promise.race([second.exited, sleep(30_000).then(() => 'still running')]);
      expect(code).not.toBe('still running');
      expect(code).not.toBe(0);
      expect(second.output()).toContain(`could not listen on 127.0.0.1:${taken.port}`);
      expect((await fetch(`http://127.0.0.1:${taken.port}/readyz`)).status).toBe(200);
    } finally {
      await second.stop();
    }
  });

  it('names its Postgres sessions by service, for pg_stat_activity and the append lock holder', async () => {
    const names = async () => {
      const db = new pg.Client({ connectionString: cluster.db.url, application_name: 'test-observer' });
      await db.connect();
      try {
        const { rows } = await db.query<{ name: string }>(
          `SELECT DISTINCT application_name AS name FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid()`,
        );
        return rows.map((r) => r.name).sort();
      } finally {
        await db.end();
      }
    };
    // A connect reads the user's memberships through the gateway's pool.
    await connect(0, u('observer'));
    await expect.poll(names, { timeout: 10_000 }).toEqual(['command-api', 'projector', 'ws-gateway']);
  });

  it('closes a socket with 4401 when its token expires', async () => {
    const { closed } = await rawSocket(gw(1), await signToken(u('alice'), { expiresIn: 2 }));
    const started = Date.now();
    expect((await closed).code).toBe(4401);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
