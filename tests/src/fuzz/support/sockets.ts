import { type ServerFrame, serverFrameSchema } from '@chat/events';
import type { EventStore, RecordedEvent } from '@chat/eventstore';
import { waitFor } from '@chat/testkit';
import WebSocket from 'ws';

/** A raw socket that records every frame it receives, as text and parsed, and how it closed. */
export type RecordingSocket = {
  userId: string;
  label: string;
  ws: WebSocket;
  frames: { text: string; frame: ServerFrame | undefined; binary: boolean }[];
  closed: { code: number; reason: string } | undefined;
  /** Positions sent in the first `resume`: events above them must all arrive. */
  resumedFrom: Record<string, number>;
  /** The socket sent `resume` frames of its own: events it asked for again may repeat. */
  replays: boolean;
};

export const openSocket = async (
  url: string,
  userId: string,
  label: string,
  options: { token: string; viaProtocol?: boolean; origin?: string },
): Promise<RecordingSocket> => {
  const ws = options.viaProtocol
    ? new WebSocket(url, ['chat.v1', `bearer.${options.token}`], {
        ...(options.origin ? { origin: options.origin } : {}),
      })
    : new WebSocket(`${url}?access_token=${encodeURIComponent(options.token)}`, {
        ...(options.origin ? { origin: options.origin } : {}),
      });
  const socket: RecordingSocket = {
    userId,
    label,
    ws,
    frames: [],
    closed: undefined,
    resumedFrom: {},
    replays: false,
  };
  ws.on('message', (data, isBinary) => {
    const text = String(data);
    let frame: ServerFrame | undefined;
    try {
      const parsed = serverFrameSchema.safeParse(JSON.parse(text));
      frame = parsed.success ? parsed.data : undefined;
    } catch {
      frame = undefined;
    }
    socket.frames.push({ text, frame, binary: isBinary });
  });
  ws.on('close', (code, reason) => {
    socket.closed = { code, reason: String(reason) };
  });
  ws.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) =>
      reject(new Error(`${label}: upgrade answered ${res.statusCode}`)),
    );
    ws.once('error', reject);
  });
  await waitFor(() => socket.frames.length > 0, { what: `${label}: hello` });
  return socket;
};

/** Sends `resume` with `positions` and waits for its `resumed`. */
export const resume = async (socket: RecordingSocket, positions: Record<string, number>): Promise<void> => {
  const ref = `resume-${Date.now()}`;
  socket.resumedFrom = { ...positions };
  socket.ws.send(JSON.stringify({ type: 'resume', ref, positions }));
  await waitFor(() => socket.frames.some((f) => f.frame?.type === 'resumed' && f.frame.ref === ref), {
    what: `${socket.label}: resumed`,
    timeoutMs: 20_000,
  });
};

/** What the log says about one user: their conversations, the seqs they may see, who they share them with. */
export type Entitlement = {
  /** Per conversation, the seqs a socket of the user must receive (membership intervals). */
  seqs: Map<string, number[]>;
  /** Per conversation, its stream, by revision. */
  streams: Map<string, RecordedEvent[]>;
  coMembers: Set<string>;
};

const conversationOf = (streamId: string) => streamId.slice('conversation-'.length);

export const entitlement = async (
  store: EventStore,
  conversationIds: Iterable<string>,
  userId: string,
): Promise<Entitlement> => {
  const seqs = new Map<string, number[]>();
  const streams = new Map<string, RecordedEvent[]>();
  const coMembers = new Set<string>();
  for (const id of conversationIds) {
    const events = await store.readStream(`conversation-${id}`);
    streams.set(id, events);
    const members = new Set<string>();
    const mine: number[] = [];
    let member = false;
    let everMember = false;
    for (const e of events) {
      const data = e.data as { members?: string[]; userId?: string };
      let leaving = false;
      if (e.type === 'ConversationStarted') for (const m of data.members ?? []) members.add(m);
      if (e.type === 'MemberJoined' && data.userId) members.add(data.userId);
      if (e.type === 'MemberLeft' && data.userId) {
        members.delete(data.userId);
        leaving = data.userId === userId;
      }
      if (members.has(userId)) member = true;
      if (member || leaving) {
        mine.push(Number(e.revision));
        everMember = true;
        for (const m of members) coMembers.add(m);
      }
      if (leaving) member = false;
    }
    if (everMember) seqs.set(id, mine);
  }
  return { seqs, streams, coMembers };
};

/** The conversations whose stream ever named `userId` as a member (the store is the truth). */
export type ConversationFinder = (userId: string) => Promise<string[]>;

/**
 * Everything wrong with what `socket` received, judged against the log: event frames per conversation
 * gap-free, in order, without duplicates and equal to the stored events; only conversations the user
 * was a member of at that seq; receipts and typing frames that the log backs; presence only of people
 * the user shares a conversation with; no frame outside the contract. `complete`: the socket resumed
 * every conversation it was in and must have every seq of its membership; otherwise everything from
 * its first frame of a conversation on.
 */
export const socketViolations = async (
  store: EventStore,
  socket: RecordingSocket,
  findConversations: ConversationFinder,
  options: { complete: boolean; errorsAllowed: boolean },
): Promise<string[]> => {
  const out: string[] = [];
  const say = (what: string) => out.push(`${socket.label} (${socket.userId}): ${what}`);
  const conversations = await findConversations(socket.userId);
  const seen = new Set(conversations);
  for (const f of socket.frames)
    if (f.frame && 'conversationId' in f.frame && typeof f.frame.conversationId === 'string')
      seen.add(f.frame.conversationId);
  const rights = await entitlement(store, seen, socket.userId);
  const received = new Map<string, number[]>();
  socket.frames.forEach((f, i) => {
    if (f.binary) say(`frame ${i} is binary`);
    const frame = f.frame;
    if (!frame) {
      say(`frame ${i} is outside the contract: ${f.text.slice(0, 300)}`);
      return;
    }
    if (i === 0 && frame.type !== 'hello') say(`first frame is ${frame.type}, not hello`);
    switch (frame.type) {
      case 'hello':
        if (i !== 0) say(`hello again at frame ${i}`);
        if (frame.userId !== socket.userId) say(`hello names ${frame.userId}`);
        break;
      case 'event': {
        const list = received.get(frame.conversationId) ?? [];
        list.push(frame.seq);
        received.set(frame.conversationId, list);
        const stored = rights.streams.get(frame.conversationId)?.[frame.seq];
        if (!stored) say(`event ${frame.conversationId}#${frame.seq} is not in the log`);
        else if (
          stored.id !== frame.event.id ||
          stored.type !== frame.event.type ||
          Number(stored.revision) !== frame.seq ||
          stored.position !== frame.event.position
        )
          say(`event ${frame.conversationId}#${frame.seq} differs from the log: ${f.text.slice(0, 300)}`);
        break;
      }
      case 'receipt':
      case 'typing': {
        if (!rights.seqs.has(frame.conversationId))
          say(`${frame.type} of a conversation never the user's: ${f.text}`);
        if (frame.type === 'typing' && frame.userId === socket.userId) say('own typing echoed');
        break;
      }
      case 'presence':
        if (!rights.coMembers.has(frame.userId) && frame.userId !== socket.userId)
          say(`presence of ${frame.userId}, who shares no conversation with the user`);
        break;
      case 'unread':
        if (!rights.seqs.has(frame.conversationId))
          say(`unread of a conversation never the user's: ${f.text}`);
        break;
      case 'notification': {
        const n = frame.notification;
        const message = rights.streams
          .get(n.conversationId)
          ?.find(
            (e) => e.type === 'MessageSent' && (e.data as { messageId: string }).messageId === n.messageId,
          );
        if (!rights.seqs.has(n.conversationId) || !message)
          say(`notification not backed by the log: ${f.text}`);
        else if (n.actorId === socket.userId) say('notified of own message');
        break;
      }
      case 'error':
        if (!options.errorsAllowed) say(`error frame: ${f.text}`);
        break;
      case 'ack':
      case 'resumed':
      case 'pong':
        break;
      default: {
        const never: never = frame;
        say(`unknown frame ${JSON.stringify(never)}`);
      }
    }
  });
  await backedByLog(store, socket, say);
  for (const [id, got] of received) {
    const allowed = rights.seqs.get(id) ?? [];
    const from = socket.resumedFrom[id];
    // A socket that was closed owes nothing after its last frame. Replays it asked for may repeat and
    // interleave: then the set of seqs must still be whole.
    const first = socket.replays ? Math.min(...got) : (got[0] ?? 0);
    const last = socket.replays ? Math.max(...got) : (got[got.length - 1] ?? -1);
    const until = socket.closed ? last : Number.POSITIVE_INFINITY;
    let expected = options.complete
      ? allowed.filter((s) => (from === undefined || s > from) && s <= until)
      : allowed.filter((s) => s >= first && s <= until);
    // A replay cut short by the close (the last frames were a replay from below seqs sent before):
    // what it would have sent next — above its last seq, up to the lowest seq the socket had already
    // received above it — was owed to a socket that no longer exists. Any other hole still fails.
    if (socket.replays && socket.closed && got.length > 0) {
      const tail = got[got.length - 1]!;
      const above = got.filter((s) => s > tail);
      if (above.length > 0) {
        const resumeAt = Math.min(...above);
        expected = expected.filter((s) => s <= tail || s >= resumeAt);
      }
    }
    const compared = socket.replays ? [...new Set(got)].sort((x, y) => x - y) : got;
    if (JSON.stringify(compared) !== JSON.stringify(expected))
      say(
        `conversation ${id}: received seqs ${brief(got)}, the log entitles ${brief(expected)}${socket.closed ? ` (closed ${socket.closed.code})` : ''}`,
      );
  }
  if (options.complete)
    for (const [id, allowed] of rights.seqs) {
      const from = socket.resumedFrom[id];
      const expected = allowed.filter((s) => from === undefined || s > from);
      if (expected.length > 0 && !received.has(id))
        say(`conversation ${id}: nothing received of ${brief(expected)}`);
    }
  return out;
};

/** Receipts and typing frames each match an event of their stream. */
const backedByLog = async (store: EventStore, socket: RecordingSocket, say: (what: string) => void) => {
  const cache = new Map<string, RecordedEvent[]>();
  const stream = async (id: string) => {
    const found = cache.get(id) ?? (await store.readStream(id));
    cache.set(id, found);
    return found;
  };
  for (const { frame, text } of socket.frames) {
    if (frame?.type === 'receipt') {
      const events = await stream(`receipts-${frame.conversationId}`);
      const match = events.some((e) => {
        const d = e.data as { userId: string; upToSeq: number; readAt: string };
        return d.userId === frame.userId && d.upToSeq === frame.readSeq && d.readAt === frame.at;
      });
      if (!match) say(`receipt not in the log: ${text}`);
    }
    if (frame?.type === 'typing') {
      const events = await stream(`typing-${frame.conversationId}`);
      const match = events.some((e) => {
        const d = e.data as { userId: string; at: string };
        return d.userId === frame.userId && d.at === frame.at;
      });
      if (!match) say(`typing not in the log: ${text}`);
    }
  }
};

const brief = (seqs: number[]): string => {
  if (seqs.length <= 12) return `[${seqs.join(',')}]`;
  return `[${seqs.slice(0, 5).join(',')} … ${seqs.slice(-5).join(',')}] (${seqs.length})`;
};

/** Waits until every socket holds, per conversation, the last seq the log entitles it to (or gives up). */
export const settle = async (
  store: EventStore,
  sockets: RecordingSocket[],
  findConversations: ConversationFinder,
  timeoutMs = 20_000,
): Promise<void> => {
  await waitFor(
    async () => {
      for (const socket of sockets) {
        if (socket.closed) continue;
        const ids = await findConversations(socket.userId);
        const rights = await entitlement(store, ids, socket.userId);
        for (const [id, seqs] of rights.seqs) {
          const last = seqs[seqs.length - 1];
          if (last === undefined) continue;
          const from = socket.resumedFrom[id];
          if (from !== undefined && last <= from) continue;
          const got = socket.frames.some(
            (f) => f.frame?.type === 'event' && f.frame.conversationId === id && f.frame.seq === last,
          );
          // Sockets that are not complete only owe what follows their first frame of the conversation.
          const started = socket.frames.some(
            (f) => f.frame?.type === 'event' && f.frame.conversationId === id,
          );
          if (!got && (started || socket.label.startsWith('victim'))) return false;
        }
      }
      return true;
    },
    { timeoutMs, intervalMs: 200, what: 'sockets to receive every event they are owed' },
  ).catch(() => undefined);
};

export { conversationOf };
