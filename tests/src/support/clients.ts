import { ChatClient } from '@chat/client';
import type { ServerFrame, ServerFrameOf } from '@chat/events';
import { signToken, waitFor } from '@chat/testkit';
import WebSocket from 'ws';

/** One WebSocket the SDK opened, as the wire saw it: every frame the server sent on it, unfiltered. */
export type SocketLog = {
  /** Every server frame received on this socket, in arrival order (before the SDK drops or repairs any). */
  frames: ServerFrame[];
  /** When each of `frames` arrived (Date.now()). */
  times: number[];
  /** The `positions` of each `resume` frame the SDK sent on this socket. */
  resumes: Record<string, number>[];
};

export type TestClient = {
  userId: string;
  client: ChatClient;
  /** The raw frames of each socket the device opened, in order of opening (guarantee 3 is per socket). */
  sockets: SocketLog[];
  /** Every conversation event the SDK delivered, in order. */
  events: ServerFrameOf<'event'>[];
  presence: ServerFrameOf<'presence'>[];
  typing: ServerFrameOf<'typing'>[];
  receipts: ServerFrameOf<'receipt'>[];
  unread: ServerFrameOf<'unread'>[];
  resumed: ServerFrameOf<'resumed'>[];
  closes: { code: number; reason: string }[];
  errors: ServerFrameOf<'error'>[];
  seqs(conversationId: string): number[];
  waitForSeq(conversationId: string, seq: number, timeoutMs?: number): Promise<void>;
};

/** A user's device: the SDK over `ws`, recording what it hands to the app. */
export const connectClient = async (
  url: string | (() => string),
  userId: string,
  options: { positions?: Record<string, number> } = {},
): Promise<TestClient> => {
  const sockets: SocketLog[] = [];
  // A thin recorder under the SDK: the SDK drops duplicate seqs and re-asks for missing ones, so what
  // it hands to the app cannot show a gateway that duplicates or skips; the socket's own frames can.
  class RecordingWebSocket extends WebSocket {
    readonly #log: SocketLog = { frames: [], times: [], resumes: [] };
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols);
      sockets.push(this.#log);
      this.on('message', (data) => {
        this.#log.frames.push(JSON.parse(String(data)) as ServerFrame);
        this.#log.times.push(Date.now());
      });
    }
    override send(data: unknown, ...rest: unknown[]): void {
      const text = String(data);
      if (text.includes('"resume"')) {
        const parsed = JSON.parse(text) as { type?: string; positions?: Record<string, number> };
        if (parsed.type === 'resume') this.#log.resumes.push(parsed.positions ?? {});
      }
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  }
  const client = new ChatClient({
    url,
    token: () => signToken(userId),
    WebSocket: RecordingWebSocket as unknown as ConstructorParameters<typeof ChatClient>[0]['WebSocket'] &
      object,
    reconnect: { baseDelayMs: 50, maxDelayMs: 500 },
    ...(options.positions ? { positions: options.positions } : {}),
  });
  const t: TestClient = {
    userId,
    client,
    sockets,
    events: [],
    presence: [],
    typing: [],
    receipts: [],
    unread: [],
    resumed: [],
    closes: [],
    errors: [],
    seqs: (id) => t.events.filter((e) => e.conversationId === id).map((e) => e.seq),
    waitForSeq: (id, seq, timeoutMs = 30_000) =>
      waitFor(() => t.events.some((e) => e.conversationId === id && e.seq >= seq), {
        timeoutMs,
        what: `${userId} to reach seq ${seq} of ${id} (has ${JSON.stringify(t.seqs(id).slice(-5))})`,
      }).then(() => undefined),
  };
  client.on('event', (f) => t.events.push(f));
  client.on('presence', (f) => t.presence.push(f));
  client.on('typing', (f) => t.typing.push(f));
  client.on('receipt', (f) => t.receipts.push(f));
  client.on('unread', (f) => t.unread.push(f));
  client.on('resumed', (f) => t.resumed.push(f));
  client.on('close', (c) => t.closes.push(c));
  client.on('error', (e) => t.errors.push(e));
  await client.connect();
  await waitFor(() => t.resumed.length > 0, { what: `${userId}'s first resume` });
  return t;
};

/** A raw socket for protocol-level checks; collects parsed frames. */
export const rawSocket = async (
  url: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<{
  ws: WebSocket;
  frames: ServerFrame[];
  /** Bytes of every message received so far. */
  bytes: () => number;
  closed: Promise<{ code: number; reason: string }>;
}> => {
  const ws = new WebSocket(`${url}?access_token=${encodeURIComponent(token)}`, { headers });
  const frames: ServerFrame[] = [];
  let bytes = 0;
  ws.on('message', (data) => {
    const text = String(data);
    bytes += Buffer.byteLength(text);
    frames.push(JSON.parse(text) as ServerFrame);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor(() => frames.some((f) => f.type === 'hello'), { what: 'hello' });
  return { ws, frames, bytes: () => bytes, closed };
};

/** The HTTP status an upgrade is answered with when it is refused (or 101). */
export const upgradeStatus = (url: string, headers: Record<string, string> = {}, protocols?: string[]) =>
  new Promise<number>((resolve) => {
    const ws = new WebSocket(url, protocols ?? [], { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', () => {});
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Seqs a client saw of one conversation: strictly consecutive up to `last`. It starts at 0 or 1: a
 * device that connects right after the conversation was created gets ConversationStarted when the
 * read model had not caught up yet (it follows the conversation from the membership event).
 */
export const expectContiguous = (seqs: number[], last: number): void => {
  const first = seqs[0] ?? -1;
  if (first !== 0 && first !== 1) throw new Error(`first seq ${first}, expected 0 or 1`);
  const expected = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  if (JSON.stringify(seqs) !== JSON.stringify(expected)) {
    const dup = seqs.filter((s, i) => seqs.indexOf(s) !== i);
    const missing = expected.filter((s) => !seqs.includes(s));
    throw new Error(
      `not gap-free: ${seqs.length} seqs, duplicates ${dup.slice(0, 10)}, missing ${missing.slice(0, 10)}`,
    );
  }
};

/** The `event` seqs of one conversation in a list of raw frames, in arrival order. */
export const seqsOf = (frames: readonly ServerFrame[], conversationId: string): number[] =>
  frames.flatMap((f) => (f.type === 'event' && f.conversationId === conversationId ? [f.seq] : []));

/**
 * Guarantee 3 on the wire (DESIGN.md, API.md §4): on every socket of the device the conversation's
 * `seq`s arrive strictly increasing by one — no gap, no duplicate — and each socket after a reconnect
 * continues exactly where the previous one stopped (its `resume` named that seq), so that together the
 * sockets carry `first..last` once each. `first` defaults to 0 or 1 (see `expectContiguous`).
 */
export const expectSocketsGapFree = (
  dev: Pick<TestClient, 'userId' | 'sockets'>,
  conversationId: string,
  last: number,
  first?: number,
): void => {
  const problems: string[] = [];
  let previous: number | undefined;
  const perSocket = dev.sockets.map((socket) => {
    const resumedFrom = socket.resumes[0]?.[conversationId];
    const seqs = seqsOf(socket.frames, conversationId);
    return { seqs, resumedFrom };
  });
  for (const [i, { seqs, resumedFrom }] of perSocket.entries()) {
    for (let k = 1; k < seqs.length; k++) {
      if (seqs[k] !== seqs[k - 1]! + 1)
        problems.push(
          `socket ${i}: seq ${seqs[k]} after ${seqs[k - 1]} (${seqs[k]! <= seqs[k - 1]! ? 'duplicate or out of order' : 'gap'})`,
        );
    }
    if (seqs.length > 0 && previous !== undefined && seqs[0] !== previous + 1)
      problems.push(
        `socket ${i} starts at ${seqs[0]} after the previous sockets ended at ${previous} (resumed from ${resumedFrom})`,
      );
    if (seqs.length > 0 && resumedFrom !== undefined && seqs[0] !== resumedFrom + 1)
      problems.push(`socket ${i} resumed from ${resumedFrom} but its first seq is ${seqs[0]}`);
    if (seqs.length > 0) previous = seqs.at(-1);
  }
  const all = perSocket.flatMap((s) => s.seqs);
  const start = first ?? all[0];
  if (first === undefined && start !== 0 && start !== 1) problems.push(`first seq ${start}, expected 0 or 1`);
  else if (start !== undefined && all[0] !== start) problems.push(`first seq ${all[0]}, expected ${start}`);
  if (previous !== last) problems.push(`last seq ${previous}, expected ${last}`);
  if (problems.length > 0)
    throw new Error(
      `${dev.userId}, ${dev.sockets.length} socket(s), conversation ${conversationId}: ${problems.slice(0, 8).join('; ')}`,
    );
};
