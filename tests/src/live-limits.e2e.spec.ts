import { randomBytes, randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import { natsSubjects, type ServerFrame } from '@chat/events';
import {
  createDataKeyStore,
  createPostgresEventStore,
  EncryptingEventStore,
  type EventStore,
} from '@chat/eventstore';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import { signToken, waitFor } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { rawSocket, sleep, upgradeStatus } from './support/clients.js';
import { type Cluster, createGroup, sendMessage, startCluster } from './support/cluster.js';

// The gateway's limits and its part of guarantee 5 (API.md §4, DESIGN.md guarantees 3 and 5), checked on
// raw frames against real processes: command-api, projector (projection + relay), one gateway.

let cluster: Cluster;
let store: EventStore;
let nats: NatsConnection;
const sockets: Awaited<ReturnType<typeof rawSocket>>[] = [];
const u = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
const gw = () => cluster.gateways[0]!.url;
const gwPort = () => cluster.gateways[0]!.port;
/**
 * How long an event may take through the log and the relay: the relay reads below the cluster's oldest
 * open transaction, which other test files' long transactions hold back for seconds (README, Known
 * limits).
 */
const RELAYED = 30_000;

type Raw = Awaited<ReturnType<typeof rawSocket>>;
const open = async (userId: string, url = gw()): Promise<Raw> => {
  const s = await rawSocket(url, await signToken(userId));
  sockets.push(s);
  return s;
};
/** A socket that sent its (empty) resume: past the pre-resume hold, receiving live. */
const live = async (userId: string, url = gw()): Promise<Raw> => {
  const s = await open(userId, url);
  s.ws.send(JSON.stringify({ type: 'resume', ref: 'first', positions: {} }));
  await waitFor(() => s.frames.some((f) => f.type === 'resumed'), { what: `${userId} resumed` });
  return s;
};
const errorsOf = (s: Raw, code: string) =>
  s.frames.filter(
    (f): f is Extract<ServerFrame, { type: 'error' }> => f.type === 'error' && f.error.code === code,
  );
const framesOf = (s: Raw, conversationId: string) =>
  s.frames.filter((f) => 'conversationId' in f && f.conversationId === conversationId);
const seqsOf = (s: Raw, conversationId: string) =>
  s.frames.flatMap((f) => (f.type === 'event' && f.conversationId === conversationId ? [f.seq] : []));
const pong = async (s: Raw, ref: string) => {
  s.ws.send(JSON.stringify({ type: 'ping', ref }));
  await waitFor(() => s.frames.some((f) => f.type === 'pong' && f.ref === ref), { what: `pong ${ref}` });
};

beforeAll(async () => {
  cluster = await startCluster({ label: 'limits', gateways: 1 });
  // Read as the services read: through the data keys (README "Erasure").
  store = new EncryptingEventStore(
    createPostgresEventStore({ connectionString: cluster.db.url }),
    createDataKeyStore({
      databaseUrl: cluster.db.url,
      master: DEV_DATA_KEY_MASTER,
      logger: createLogger('limits', 'silent'),
    }),
  );
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

  it('answers a binary frame validation_failed (ref null), keeps the socket, and counts it as a command', async () => {
    const s = await open(u('binary'));
    // Even a valid `ping` is refused when it comes as a binary frame: the protocol is text frames.
    s.ws.send(Buffer.from(JSON.stringify({ type: 'ping', ref: 'bin' })), { binary: true });
    await waitFor(() => errorsOf(s, 'validation_failed').length === 1, { what: 'the binary frame answered' });
    expect(errorsOf(s, 'validation_failed')[0]).toMatchObject({ type: 'error', ref: null });
    expect(s.frames.some((f) => f.type === 'pong')).toBe(false);
    await pong(s, 'after-binary');
    for (let i = 0; i < 100; i++) s.ws.send(Buffer.from([i]), { binary: true });
    await waitFor(() => errorsOf(s, 'rate_limited').length + errorsOf(s, 'validation_failed').length >= 101, {
      what: 'an answer to every binary frame',
    });
    expect(errorsOf(s, 'rate_limited').length).toBeGreaterThanOrEqual(30);
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

describe('resume limits', () => {
  it('refuses a resume naming more than 256 conversations with validation_failed; the socket stays open', async () => {
    const s = await open(u('resumer'));
    const positions = (n: number) => Object.fromEntries(Array.from({ length: n }, () => [randomUUID(), 3]));
    s.ws.send(JSON.stringify({ type: 'resume', ref: 'too-many', positions: positions(257) }));
    await waitFor(() => s.frames.some((f) => f.type === 'error' && f.ref === 'too-many'), { what: 'error' });
    const error = s.frames.find((f) => f.type === 'error' && f.ref === 'too-many');
    expect(error).toMatchObject({ error: { code: 'validation_failed', details: [{ path: ['positions'] }] } });
    expect(s.frames.some((f) => f.type === 'resumed')).toBe(false);
    s.ws.send(JSON.stringify({ type: 'resume', ref: 'ok', positions: positions(256) }));
    await waitFor(() => s.frames.some((f) => f.type === 'resumed' && f.ref === 'ok'), { what: 'resumed' });
    const resumed = s.frames.find((f) => f.type === 'resumed');
    expect(resumed?.type === 'resumed' && resumed.unknown.length).toBe(256);
  });
});

describe('upgrades', () => {
  it('every upgraded socket stays open (nothing the open handler starts may make uWS drop it)', async () => {
    // Presence I/O started inside uWS's open handler, during an upgrade that runs after an await, made
    // uWS 20.57 drop the socket right after its hello (1006) in about every other gateway process.
    const fresh = await cluster.startGateway('gw-upgrades');
    const closed: number[] = [];
    for (let i = 0; i < 40; i++) {
      const s = await open(u('upgrade'), fresh.url);
      void s.closed.then((c) => closed.push(c.code));
    }
    await sleep(1000);
    expect(closed).toEqual([]);
  });

  it('a socket upgraded from a request whose HTTP state says "close" is not shut down after its hello', async () => {
    // uWS 20.57's cork() misses an upgrade done inside it when the socket's block is reallocated in place
    // and acts on the HTTP state it then reads: "Connection: close" (any 5-character value) puts the
    // close flag there for sure, where random heap bytes put it now and then (README, "Upgrade inside
    // uWS's callback"). 1006 right after the hello is that bug.
    const results: string[] = [];
    for (let i = 0; i < 10; i++) {
      const token = await signToken(u('close'));
      results.push(
        await new Promise<string>((resolve) => {
          const socket = createConnection(gwPort(), '127.0.0.1');
          let received = '';
          socket.on('connect', () =>
            socket.write(
              `GET /v1/ws?access_token=${token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
                `Connection: close\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
                'Sec-WebSocket-Version: 13\r\n\r\n',
            ),
          );
          socket.on('data', (d: Buffer) => {
            received += d.toString('latin1');
          });
          const hello = () => received.startsWith('HTTP/1.1 101') && received.includes('"hello"');
          const timer = setTimeout(() => {
            resolve(hello() ? 'open' : `no hello: ${received.slice(0, 40)}`);
            socket.destroy();
          }, 700);
          socket.on('close', () => {
            clearTimeout(timer);
            resolve(hello() ? 'closed after its hello' : `closed: ${received.slice(0, 40)}`);
          });
        }),
      );
    }
    expect(results).toEqual(Array.from({ length: 10 }, () => 'open'));
  });

  it("frames a new user's socket sends before its hello are answered after it", async () => {
    // The socket of a user new to the gateway opens before the user's conversations are read and waits
    // for them: its hello comes after the read, and what the client sent meanwhile is kept for then.
    const fresh = await cluster.startGateway('gw-early');
    const ws = new WebSocket(`${fresh.url}?access_token=${await signToken(u('early'))}`);
    const frames: ServerFrame[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
    await new Promise((resolve) => ws.once('open', resolve));
    ws.send(JSON.stringify({ type: 'ping', ref: 'early-1' }));
    ws.send(JSON.stringify({ type: 'resume', ref: 'early-2', positions: {} }));
    ws.send(JSON.stringify({ type: 'ping', ref: 'early-3' }));
    await waitFor(() => frames.length >= 4, { what: 'hello and three answers' });
    const answers = frames.map((f) => `${f.type}${'ref' in f ? `:${f.ref}` : ''}`);
    expect(answers[0]).toBe('hello');
    expect(answers.slice(1).sort()).toEqual(['pong:early-1', 'pong:early-3', 'resumed:early-2']);
    ws.terminate();
  });
});

describe('long tokens (API.md §1: the token in the query or in Sec-WebSocket-Protocol)', () => {
  it('upgrades with a token of over 10 KB — one the command-api takes — through either transport', async () => {
    const user = u('groups');
    // An identity provider's token with many groups: far over uWS's default header limit (4 KiB).
    const token = await signToken(user, {
      roles: Array.from({ length: 270 }, (_, i) => `group-${i}-of-the-organisation`),
    });
    expect(token.length).toBeGreaterThan(10_000);
    expect(token.length).toBeLessThan(14_000); // Node's (the command-api's) 16 KiB of headers
    const http = await fetch(`${cluster.api}/v1/unread`, { headers: { authorization: `Bearer ${token}` } });
    expect(http.status).toBe(200);
    const viaQuery = await open(user);
    expect(viaQuery.frames[0]).toMatchObject({ type: 'hello', userId: user });
    const viaProtocol = new WebSocket(gw(), ['chat.v1', `bearer.${token}`]);
    const hello = await new Promise<unknown>((resolve, reject) => {
      viaProtocol.once('message', (data) => resolve(JSON.parse(String(data))));
      viaProtocol.once('unexpected-response', (_req, res) => reject(new Error(`upgrade ${res.statusCode}`)));
      viaProtocol.once('error', reject);
    });
    expect(viaProtocol.protocol).toBe('chat.v1');
    expect(hello).toMatchObject({ type: 'hello', userId: user });
    viaProtocol.terminate();
    // Longer than the command-api's headers allow: the API's 401, not uWS's own 431.
    expect(await upgradeStatus(`${gw()}?access_token=${'x'.repeat(20_000)}`)).toBe(401);
  });
});

describe('sockets per user', () => {
  it('closes the oldest socket with 4409 when a user opens one more than WS_MAX_SOCKETS_PER_USER', async () => {
    const capped = await cluster.startGateway('gw-cap', { WS_MAX_SOCKETS_PER_USER: '3' });
    const user = u('many');
    const devices: Raw[] = [];
    for (let i = 0; i < 4; i++) devices.push(await open(user, capped.url));
    const first = await Promise.race([devices[0]!.closed, sleep(10_000).then(() => null)]);
    expect(first?.code).toBe(4409);
    for (const [i, d] of devices.slice(1).entries()) await pong(d, `alive-${i}`);
    // Another user is not affected by this one's cap.
    await pong(await open(u('other'), capped.url), 'other');
  });
});

describe('membership follows the conversation stream order', () => {
  /** Publishes a stored event again, as the relay does after a restart (at-least-once). */
  const redeliver = async (conversationId: string, seq: number, userId: string) => {
    const [event] = await store.readStream(`conversation-${conversationId}`, {
      fromRevision: seq,
      maxCount: 1,
    });
    const envelope = JSON.stringify(event);
    const subjects = natsSubjects(cluster.prefix);
    nats.publish(subjects.user(userId), `{"type":"membership","event":${envelope}}`);
    nats.publish(subjects.conversation(conversationId), envelope);
    await nats.flush();
  };

  for (const otherMemberConnected of [true, false]) {
    it(`a MemberJoined redelivered after MemberLeft never re-adds the user (${otherMemberConnected ? 'another member on the gateway' : 'no other member on the gateway'})`, async () => {
      const [a, b, x] = [u('alice'), u('bob'), u('xena')];
      const group = await createGroup(cluster, a, [b]);
      const bob = otherMemberConnected ? await live(b) : undefined;
      const xena = await live(x);
      const joined = await cluster.http<{ seq: number }>(a, 'POST', `/v1/conversations/${group}/members`, {
        userId: x,
      });
      await waitFor(() => seqsOf(xena, group).includes(joined.seq), {
        what: 'join delivered',
        timeoutMs: RELAYED,
      });
      const left = await cluster.http<{ seq: number }>(
        a,
        'DELETE',
        `/v1/conversations/${group}/members/${x}`,
      );
      await waitFor(() => seqsOf(xena, group).includes(left.seq), {
        what: 'leave delivered',
        timeoutMs: RELAYED,
      });
      expect(seqsOf(xena, group)).toEqual([joined.seq, left.seq]);

      await redeliver(group, joined.seq, x);
      await sleep(500);
      const after = await sendMessage(cluster, a, group, 'after the redelivery');
      if (bob) {
        bob.ws.send(JSON.stringify({ type: 'typing', conversationId: group }));
        await waitFor(() => seqsOf(bob, group).includes(after.seq), {
          what: 'message at bob',
          timeoutMs: RELAYED,
        });
      }
      await sleep(500);
      // Nothing of the conversation after the MemberLeft: no replay, no live event, no typing.
      expect(seqsOf(xena, group)).toEqual([joined.seq, left.seq]);
      // (Unread counts are the projector's, on the user's own subject, and may follow the removal.)
      expect(framesOf(xena, group).filter((f) => f.type === 'typing' || f.type === 'receipt')).toEqual([]);
      xena.ws.send(
        JSON.stringify({ type: 'resume', ref: 'after-removal', positions: { [group]: joined.seq } }),
      );
      await waitFor(() => xena.frames.some((f) => f.type === 'resumed' && f.ref === 'after-removal'), {
        what: 'resumed',
      });
      const resumed = xena.frames.find((f) => f.type === 'resumed' && f.ref === 'after-removal');
      expect(resumed).toMatchObject({ unknown: [group], truncated: [] });
      expect(seqsOf(xena, group)).toEqual([joined.seq, left.seq]);
    });
  }
});

describe('guarantee 5 over WebSocket', () => {
  it('a non-member gets not_found for send, read and typing, changes nothing and never receives the conversation', async () => {
    const [a, b, m] = [u('alice'), u('bob'), u('mallory')];
    const group = await createGroup(cluster, a, [b]);
    const first = await sendMessage(cluster, a, group, 'members only');
    const bob = await live(b);
    const mallory = await live(m);
    const stream = `conversation-${group}`;
    const before = await store.streamRevision(stream);

    mallory.ws.send(
      JSON.stringify({
        type: 'send',
        ref: 's',
        conversationId: group,
        messageId: randomUUID(),
        body: 'let me in',
      }),
    );
    mallory.ws.send(JSON.stringify({ type: 'read', ref: 'r', conversationId: group, upToSeq: first.seq }));
    mallory.ws.send(JSON.stringify({ type: 'typing', ref: 't', conversationId: group }));
    await waitFor(() => errorsOf(mallory, 'not_found').length === 3, { what: 'three not_found errors' });
    expect(
      errorsOf(mallory, 'not_found')
        .map((f) => f.ref)
        .sort(),
    ).toEqual(['r', 's', 't']);
    expect(mallory.frames.some((f) => f.type === 'ack')).toBe(false);

    // The members' activity in the conversation reaches bob, never mallory.
    const sent = await sendMessage(cluster, a, group, 'still members only');
    await cluster.http(b, 'POST', `/v1/conversations/${group}/read`, { upToSeq: sent.seq });
    bob.ws.send(JSON.stringify({ type: 'typing', conversationId: group }));
    await waitFor(() => seqsOf(bob, group).includes(sent.seq), {
      what: 'message at bob',
      timeoutMs: RELAYED,
    });
    await waitFor(() => bob.frames.some((f) => f.type === 'receipt' && f.conversationId === group), {
      what: 'receipt at bob',
      timeoutMs: RELAYED,
    });
    await sleep(500);
    expect(framesOf(mallory, group)).toEqual([]);
    expect(await store.streamRevision(stream)).toBe(before + 1);
    // Nothing of mallory's in any of the conversation's streams.
    for (const prefix of ['conversation', 'receipts', 'typing']) {
      const events = await store.readStream(`${prefix}-${group}`, { fromRevision: 0, maxCount: 1000 });
      expect(events.filter((e) => e.metadata.userId === m || e.data.userId === m)).toEqual([]);
    }
    // Nor can mallory resume it: unknown, nothing replayed.
    mallory.ws.send(JSON.stringify({ type: 'resume', ref: 'peek', positions: { [group]: -1 } }));
    await waitFor(() => mallory.frames.some((f) => f.type === 'resumed' && f.ref === 'peek'), {
      what: 'resumed',
    });
    expect(mallory.frames.find((f) => f.type === 'resumed' && f.ref === 'peek')).toMatchObject({
      unknown: [group],
    });
    expect(framesOf(mallory, group)).toEqual([]);
  });
});
