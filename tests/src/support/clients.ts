import { ChatClient } from '@chat/client';
import type { ServerFrame, ServerFrameOf } from '@chat/events';
import { signToken, waitFor } from '@chat/testkit';
import WebSocket from 'ws';

export type TestClient = {
  userId: string;
  client: ChatClient;
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
  const client = new ChatClient({
    url,
    token: () => signToken(userId),
    WebSocket: WebSocket as unknown as ConstructorParameters<typeof ChatClient>[0]['WebSocket'] & object,
    reconnect: { baseDelayMs: 50, maxDelayMs: 500 },
    ...(options.positions ? { positions: options.positions } : {}),
  });
  const t: TestClient = {
    userId,
    client,
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
): Promise<{ ws: WebSocket; frames: ServerFrame[]; closed: Promise<{ code: number; reason: string }> }> => {
  const ws = new WebSocket(`${url}?access_token=${encodeURIComponent(token)}`, { headers });
  const frames: ServerFrame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(String(data)) as ServerFrame));
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
  );
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor(() => frames.some((f) => f.type === 'hello'), { what: 'hello' });
  return { ws, frames, closed };
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
