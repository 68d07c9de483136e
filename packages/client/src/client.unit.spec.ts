import { RESUME_MAX_CONVERSATIONS } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { ChatClient, type WebSocketLike } from './client.js';

// The client's reaction to close codes, against a scripted socket (the transport is the SDK's own port).

class ScriptedSocket implements WebSocketLike {
  static opened: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: string[] = [];
  constructor(readonly url: string) {
    ScriptedSocket.opened.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.onmessage?.({
        data: JSON.stringify({ type: 'hello', userId: 'alice', connectionId: 'c1', heartbeatMs: 30_000 }),
      });
    });
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(code = 1000): void {
    this.serverCloses(code);
  }
  serverSends(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  /** The `resume` frames the client sent, by their positions. */
  resumes(): Record<string, number>[] {
    return this.sent
      .map((t) => JSON.parse(t) as { type: string; positions?: Record<string, number> })
      .filter((f) => f.type === 'resume')
      .map((f) => f.positions ?? {});
  }
  serverCloses(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const client = (positions?: Record<string, number>) =>
  new ChatClient({
    url: 'ws://gateway.test/v1/ws',
    token: 'token',
    WebSocket: ScriptedSocket,
    reconnect: { baseDelayMs: 1, maxDelayMs: 1 },
    ...(positions ? { positions } : {}),
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ChatClient close codes', () => {
  it('reconnects after an ordinary close', async () => {
    ScriptedSocket.opened = [];
    const c = client();
    await c.connect();
    ScriptedSocket.opened[0]!.serverCloses(1001);
    await sleep(30);
    expect(ScriptedSocket.opened.length).toBe(2);
    expect(c.state).toBe('open');
    c.close();
  });

  it('stays closed after 4409 (too many sockets): reconnecting would push out another device', async () => {
    ScriptedSocket.opened = [];
    const c = client();
    const closes: number[] = [];
    c.on('close', (e) => closes.push(e.code));
    await c.connect();
    const pending = c.ping();
    ScriptedSocket.opened[0]!.serverCloses(4409);
    await expect(pending).rejects.toThrow(/too many sockets/);
    await sleep(30);
    expect(ScriptedSocket.opened.length).toBe(1);
    expect(c.state).toBe('closed');
    expect(closes).toEqual([4409]);
  });
});

// The user's own MemberLeft and their next MemberJoined bound a stretch the server owes them nothing of
// (API.md §4: a removed user receives the MemberLeft and nothing after; a re-added one starts from the
// MemberJoined): the seq jumps there, and the client must neither hide the join nor resume forever.
describe('ChatClient across the user removed and added again', () => {
  const C = 'c0000000-0000-4000-8000-000000000001';
  const D = 'd0000000-0000-4000-8000-000000000002';
  const event = (seq: number, type: string, data: object, conversationId = C) => ({
    type: 'event',
    conversationId,
    seq,
    event: { type, data: { conversationId, ...data } },
  });
  const said = (seq: number, conversationId = C) =>
    event(seq, 'MessageSent', { senderId: 'bob', body: `m${seq}` }, conversationId);
  const left = (seq: number, userId = 'alice') => event(seq, 'MemberLeft', { userId, removedBy: 'bob' });
  const joined = (seq: number, userId = 'alice') => event(seq, 'MemberJoined', { userId, addedBy: 'bob' });
  const resumed = { type: 'resumed', ref: 'resume', truncated: [], unknown: [] };

  const connected = async (positions?: Record<string, number>) => {
    ScriptedSocket.opened = [];
    const c = client(positions);
    const seen: string[] = [];
    c.on('event', (f) => seen.push(`${f.conversationId === C ? '' : 'D'}${f.seq}`));
    await c.connect();
    return { c, seen, socket: ScriptedSocket.opened[0]! };
  };

  it('takes their own join across the absence, without a resume', async () => {
    const { c, seen, socket } = await connected();
    socket.serverSends(resumed);
    for (const f of [said(1), left(2), joined(5), said(6)]) socket.serverSends(f);
    expect(seen).toEqual(['1', '2', '5', '6']);
    expect(socket.resumes()).toEqual([{}]);
    c.close();
  });

  it("still resumes over a gap before someone else's join", async () => {
    const { c, seen, socket } = await connected();
    socket.serverSends(resumed);
    socket.serverSends(said(1));
    socket.serverSends(joined(3, 'carol'));
    expect(seen).toEqual(['1']);
    expect(socket.resumes()).toEqual([{}, { [C]: 1 }]);
    c.close();
  });

  it('resumes over a gap before their own join it did not see them leave for, and the replay brings the leave', async () => {
    const { c, seen, socket } = await connected();
    socket.serverSends(resumed);
    socket.serverSends(said(1));
    socket.serverSends(joined(5));
    expect(socket.resumes()).toEqual([{}, { [C]: 1 }]);
    for (const f of [left(2), joined(5), resumed, said(6)]) socket.serverSends(f);
    expect(seen).toEqual(['1', '2', '5', '6']);
    expect(socket.resumes()).toHaveLength(2);
    c.close();
  });

  it('takes a replay that starts with their own join when resuming from a stored position at their leave', async () => {
    const { c, seen, socket } = await connected({ [C]: 2 });
    expect(socket.resumes()).toEqual([{ [C]: 2 }]);
    for (const f of [joined(5), said(6), resumed, said(7)]) socket.serverSends(f);
    expect(seen).toEqual(['5', '6', '7']);
    expect(socket.resumes()).toHaveLength(1);
    c.close();
  });

  it('resumes a conversation whose gap showed while a resume of another one ran, once that one ends', async () => {
    const { c, seen, socket } = await connected();
    socket.serverSends(resumed);
    for (const f of [said(1), said(1, D), said(3)]) socket.serverSends(f);
    expect(socket.resumes()).toEqual([{}, { [C]: 1 }]);
    socket.serverSends(said(3, D));
    for (const f of [said(2), said(3), resumed]) socket.serverSends(f);
    expect(socket.resumes()).toEqual([{}, { [C]: 1 }, { [D]: 1 }]);
    for (const f of [said(2, D), said(3, D), resumed]) socket.serverSends(f);
    expect(seen).toEqual(['1', 'D1', '2', '3', 'D2', 'D3']);
    c.close();
  });

  it('takes no live join of theirs across a gap while a resume for that gap runs: the replay brings the leave', async () => {
    const { c, seen, socket } = await connected();
    socket.serverSends(resumed);
    socket.serverSends(said(1));
    socket.serverSends(left(3));
    expect(socket.resumes()).toEqual([{}, { [C]: 1 }]);
    // Live, before the gateway holds the conversation for the replay.
    socket.serverSends(joined(5));
    for (const f of [said(2), left(3), joined(5), resumed]) socket.serverSends(f);
    expect(seen).toEqual(['1', '2', '3', '5']);
    c.close();
  });

  it(`names at most ${RESUME_MAX_CONVERSATIONS} conversations per resume of gaps deferred meanwhile`, async () => {
    const { c, socket } = await connected();
    socket.serverSends(resumed);
    const ids = Array.from(
      { length: RESUME_MAX_CONVERSATIONS + 5 },
      (_, i) => `e0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    for (const id of ids) socket.serverSends(said(1, id));
    socket.serverSends(said(1));
    socket.serverSends(said(3));
    for (const id of ids) socket.serverSends(said(3, id));
    socket.serverSends(resumed);
    const sizes = () => socket.resumes().map((p) => Object.keys(p).length);
    expect(sizes()).toEqual([0, 1, RESUME_MAX_CONVERSATIONS]);
    socket.serverSends(resumed);
    expect(sizes()).toEqual([0, 1, RESUME_MAX_CONVERSATIONS, 5]);
    c.close();
  });

  it('starts over on a new socket when the server refuses a resume', async () => {
    const { c, seen, socket } = await connected();
    const errors: unknown[] = [];
    c.on('error', (e) => errors.push(e));
    socket.serverSends(resumed);
    socket.serverSends(said(1));
    socket.serverSends(said(3));
    socket.serverSends({
      type: 'error',
      ref: 'resume',
      error: { code: 'unavailable', message: 'could not read' },
    });
    expect(errors).toHaveLength(1);
    await sleep(30);
    expect(ScriptedSocket.opened).toHaveLength(2);
    const again = ScriptedSocket.opened[1]!;
    expect(again.resumes()).toEqual([{ [C]: 1 }]);
    for (const f of [said(2), said(3), resumed]) again.serverSends(f);
    expect(seen).toEqual(['1', '2', '3']);
    c.close();
  });
});
