import {
  type ApiError,
  type ClientFrameInput,
  type CommandResult,
  type MarkReadResult,
  RESUME_MAX_CONVERSATIONS,
  type SendMessageResult,
  type ServerFrame,
  type ServerFrameOf,
  WS_CLOSE,
} from '@chat/events';
import { backoffDelay } from './backoff.js';
import { Emitter } from './emitter.js';
import { SeqTracker } from './sequence.js';
import { randomUuid } from './uuid.js';

/** The part of the WebSocket API the client uses: the browser's and the `ws` package's both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type TokenSource = string | (() => string | Promise<string>);

export type ChatClientOptions = {
  /** e.g. `wss://chat.example.com/v1/ws`; a function is asked before every (re)connect (failover lists). */
  url: string | (() => string);
  /** A token, or a provider called before every (re)connect so refreshed tokens are picked up. */
  token: TokenSource;
  /** Defaults to `globalThis.WebSocket`; pass `ws`'s WebSocket in Node. */
  WebSocket?: WebSocketConstructor;
  /** `protocol` (default) sends `Sec-WebSocket-Protocol: chat.v1, bearer.<jwt>`; `query` uses `?access_token=`. */
  tokenTransport?: 'protocol' | 'query';
  /** Last seen seq per conversation, e.g. restored from storage: the first connect resumes from there. */
  positions?: Record<string, number>;
  reconnect?: { baseDelayMs?: number; maxDelayMs?: number; enabled?: boolean };
  /** How long a command waits for its ack, across reconnects (default 10 s). */
  ackTimeoutMs?: number;
  /** At most one typing frame per conversation per this many ms (default 3 s, as the server). */
  typingThrottleMs?: number;
};

export type ChatClientEvents = {
  state: ConnectionState;
  hello: ServerFrameOf<'hello'>;
  event: ServerFrameOf<'event'>;
  receipt: ServerFrameOf<'receipt'>;
  typing: ServerFrameOf<'typing'>;
  presence: ServerFrameOf<'presence'>;
  unread: ServerFrameOf<'unread'>;
  notification: ServerFrameOf<'notification'>;
  resumed: ServerFrameOf<'resumed'>;
  /** An error frame that answers no pending command (e.g. a bad frame). */
  error: ServerFrameOf<'error'>;
  close: { code: number; reason: string };
};

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A command the server refused, with its contract code (API.md §2). */
export class ChatCommandError extends Error {
  override readonly name: string = 'ChatCommandError';
  readonly code: string;
  readonly details: unknown;
  constructor(error: ApiError | { code: string; message: string; details?: unknown }) {
    super(error.message);
    this.code = error.code;
    this.details = error.details;
  }
}

type Pending = {
  frame: ClientFrameInput & { ref: string };
  /** The ack's result (a pong carries none). */
  resolve: (result: CommandResult | undefined) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Sent on the current socket already. */
  sent: boolean;
};

const OPEN = 1;

/**
 * The chat WebSocket client (API.md §4). It reconnects with backoff and full jitter, resumes every
 * conversation from the last seq it handed to the app, and delivers per conversation exactly once in
 * seq order. Commands resolve with the server's ack; a `send` keeps its messageId across reconnects,
 * so a retry after a lost ack is answered from the server's idempotency record, never duplicated.
 */
export class ChatClient extends Emitter<ChatClientEvents> {
  #ws: WebSocketLike | undefined;
  #state: ConnectionState = 'idle';
  #attempt = 0;
  #refCounter = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #hello: ServerFrameOf<'hello'> | undefined;
  /** A `resume` is in flight (until its `resumed`): at most one at a time. */
  #resuming = false;
  /** The conversations the resume in flight names: their events until `resumed` are its replay. */
  readonly #replaying = new Set<string>();
  /** Conversations that showed a gap while a resume that does not name them ran. */
  readonly #deferred = new Set<string>();
  /**
   * Conversations of the resume sent on `hello` whose first event has not come yet. The gateway holds
   * a new socket's live frames until that resume, so their first event is the replay's first.
   */
  readonly #firstOfReplay = new Set<string>();
  readonly #seqs: SeqTracker;
  readonly #pending = new Map<string, Pending>();
  readonly #typingSentAt = new Map<string, number>();
  readonly #WebSocket: WebSocketConstructor;
  readonly #options: ChatClientOptions;
  #connected: { resolve: (h: ServerFrameOf<'hello'>) => void; reject: (e: Error) => void } | undefined;

  constructor(options: ChatClientOptions) {
    super();
    this.#options = options;
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!ctor) throw new Error('no WebSocket implementation: pass options.WebSocket');
    this.#WebSocket = ctor;
    this.#seqs = new SeqTracker(options.positions);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get userId(): string | undefined {
    return this.#hello?.userId;
  }

  /** Last seq delivered to the app per conversation (what the next resume sends). */
  positions(): Record<string, number> {
    return this.#seqs.positions();
  }

  lastSeq(conversationId: string): number | undefined {
    return this.#seqs.get(conversationId.toLowerCase());
  }

  /** Opens the connection; resolves on the first `hello`, rejects if that first attempt fails. */
  connect(): Promise<ServerFrameOf<'hello'>> {
    if (this.#state === 'open' && this.#hello) return Promise.resolve(this.#hello);
    return new Promise((resolve, reject) => {
      this.#connected = { resolve, reject };
      if (this.#state === 'idle' || this.#state === 'closed') {
        this.#setState('connecting');
        void this.#open();
      }
    });
  }

  /** Sends a message; resolves with the ack's result (`{messageId, conversationId, seq, sentAt, position}`). */
  async send(input: {
    conversationId: string;
    body: string;
    replyTo?: string;
    messageId?: string;
  }): Promise<SendMessageResult> {
    const messageId = input.messageId ?? randomUuid();
    // The server acks a `send` with the sendMessage result (API.md §4: the HTTP response body).
    return (await this.#command({
      type: 'send',
      conversationId: input.conversationId,
      messageId,
      body: input.body,
      ...(input.replyTo ? { replyTo: input.replyTo } : {}),
    })) as SendMessageResult;
  }

  /** Moves the read watermark; resolves with `{readSeq, position?}` (no position when it did not move). */
  async markRead(conversationId: string, upToSeq: number): Promise<MarkReadResult> {
    return (await this.#command({ type: 'read', conversationId, upToSeq })) as MarkReadResult;
  }

  /** Throttled: at most one frame per conversation per `typingThrottleMs`; returns whether it was sent. */
  typing(conversationId: string): boolean {
    const now = Date.now();
    const last = this.#typingSentAt.get(conversationId) ?? 0;
    if (now - last < (this.#options.typingThrottleMs ?? 3000)) return false;
    if (!this.#ws || this.#ws.readyState !== OPEN || !this.#hello) return false;
    this.#typingSentAt.set(conversationId, now);
    this.#ws.send(JSON.stringify({ type: 'typing', conversationId }));
    return true;
  }

  async ping(): Promise<void> {
    await this.#command({ type: 'ping' });
  }

  /** Sends any frame as is (for tools and tests of the protocol). */
  sendRaw(data: string): void {
    this.#ws?.send(data);
  }

  /** Closes for good: no reconnect; pending commands are rejected. */
  close(code = 1000, reason = 'client closed'): void {
    const ws = this.#ws;
    this.#ws = undefined;
    ws?.close(code, reason);
    this.#stop(new Error('client closed'));
  }

  #stop(err: Error): void {
    this.#setState('closed');
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    for (const [ref, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.#pending.delete(ref);
    }
    this.#connected?.reject(err);
    this.#connected = undefined;
  }

  #command(frame: ClientFrameInput): Promise<CommandResult | undefined> {
    const ref = `r${(++this.#refCounter).toString(36)}`;
    const full = { ...frame, ref } as ClientFrameInput & { ref: string };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(ref);
        reject(new ChatCommandError({ code: 'timeout', message: `no answer to ${frame.type} in time` }));
      }, this.#options.ackTimeoutMs ?? 10_000);
      const p: Pending = { frame: full, resolve, reject, timer, sent: false };
      this.#pending.set(ref, p);
      this.#flushPending();
    });
  }

  #flushPending(): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== OPEN || !this.#hello) return;
    for (const p of this.#pending.values()) {
      if (p.sent) continue;
      p.sent = true;
      ws.send(JSON.stringify(p.frame));
    }
  }

  async #open(): Promise<void> {
    let token: string;
    try {
      const source = this.#options.token;
      token = typeof source === 'function' ? await source() : source;
    } catch (err) {
      this.#failed(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.#state === 'closed') return;
    const query = this.#options.tokenTransport === 'query';
    const base = typeof this.#options.url === 'function' ? this.#options.url() : this.#options.url;
    const url = query
      ? `${base}${base.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`
      : base;
    let ws: WebSocketLike;
    try {
      ws = query
        ? new this.#WebSocket(url, 'chat.v1')
        : new this.#WebSocket(url, ['chat.v1', `bearer.${token}`]);
    } catch (err) {
      this.#failed(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#ws = ws;
    ws.onmessage = (ev) => {
      if (this.#ws !== ws) return;
      const text = typeof ev.data === 'string' ? ev.data : String(ev.data);
      let f: ServerFrame;
      try {
        f = JSON.parse(text) as ServerFrame;
      } catch {
        return;
      }
      this.#onFrame(ws, f);
    };
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      const wasOpen = this.#hello !== undefined;
      this.#hello = undefined;
      this.#endResume();
      this.#deferred.clear();
      for (const p of this.#pending.values()) p.sent = false;
      this.emit('close', { code: ev.code, reason: ev.reason });
      if (ev.code === WS_CLOSE.tooManySockets) {
        // The user's newer devices pushed this one out; reconnecting would push out another in turn.
        this.#stop(new Error('closed by the server: too many sockets for this user'));
        return;
      }
      if (!wasOpen) {
        this.#failed(new Error(`connection failed (${ev.code} ${ev.reason})`));
        return;
      }
      this.#scheduleReconnect();
    };
  }

  #failed(err: Error): void {
    if (this.#state === 'closed') return;
    if (this.#connected && this.#state === 'connecting' && this.#options.reconnect?.enabled === false) {
      this.#connected.reject(err);
      this.#connected = undefined;
      this.#setState('closed');
      return;
    }
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed') return;
    if (this.#options.reconnect?.enabled === false) {
      this.#setState('closed');
      return;
    }
    this.#setState('reconnecting');
    const delay = backoffDelay(
      this.#attempt++,
      this.#options.reconnect?.baseDelayMs ?? 250,
      this.#options.reconnect?.maxDelayMs ?? 10_000,
    );
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delay);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', state);
  }

  #endResume(): void {
    this.#resuming = false;
    this.#replaying.clear();
    this.#firstOfReplay.clear();
  }

  #resume(ws: WebSocketLike, positions: Record<string, number>): void {
    this.#resuming = true;
    for (const id of Object.keys(positions)) this.#replaying.add(id);
    ws.send(JSON.stringify({ type: 'resume', ref: 'resume', positions }));
  }

  #onFrame(ws: WebSocketLike, f: ServerFrame): void {
    switch (f.type) {
      case 'hello': {
        this.#hello = f;
        this.#attempt = 0;
        // Always resume, also with nothing to resume: it ends the server's hold on live frames at once.
        const positions = this.#seqs.resumePositions();
        for (const id of Object.keys(positions)) this.#firstOfReplay.add(id);
        this.#resume(ws, positions);
        this.#setState('open');
        this.emit('hello', f);
        this.#connected?.resolve(f);
        this.#connected = undefined;
        this.#flushPending();
        return;
      }
      case 'event': {
        const id = f.conversationId;
        const verdict = this.#seqs.check(id, f.seq);
        if (verdict === 'duplicate') return;
        const own = ownMembership(f, this.#hello?.userId);
        const firstOfReplay = this.#firstOfReplay.delete(id);
        // The user's own join after their removal may jump: the server owes nothing of the absence
        // (API.md §4). Known as an absence when their MemberLeft was delivered, or when the replay of
        // the resume on `hello` starts with the join (a position stored at the leave). Not in a resume
        // for a gap: a live frame may still come before that replay, which then brings the leave.
        const comeback = own === 'joined' && (this.#seqs.isAway(id) || firstOfReplay);
        if (verdict === 'gap' && !comeback) {
          // Never show the app a gap: ask for what is missing (the replay brings this event too).
          if (!this.#resuming) this.#resume(ws, { [id]: this.#seqs.get(id)! });
          else if (!this.#replaying.has(id)) this.#deferred.add(id);
          return;
        }
        this.#seqs.record(id, f.seq, own);
        this.emit('event', f);
        return;
      }
      case 'resumed': {
        this.#endResume();
        for (const id of f.truncated) this.#seqs.forget(id);
        for (const id of f.unknown) this.#seqs.forget(id.toLowerCase());
        this.emit('resumed', f);
        // Gaps seen while that resume ran, in conversations it did not name: resume them now, as many
        // as one resume may name (the rest after it).
        const deferred: Record<string, number> = {};
        let named = 0;
        for (const id of this.#deferred) {
          if (named === RESUME_MAX_CONVERSATIONS) break;
          this.#deferred.delete(id);
          const last = this.#seqs.get(id);
          if (last === undefined) continue;
          deferred[id] = last;
          named++;
        }
        if (named > 0) this.#resume(ws, deferred);
        return;
      }
      case 'ack':
      case 'pong':
      case 'error': {
        if (f.type === 'error' && f.ref === 'resume' && this.#resuming) {
          // The server could not resume (could not read the store, too many conversations named):
          // without it gaps stay open. Start over on a new socket, whose hello resumes everything.
          this.#endResume();
          this.emit('error', f);
          ws.close(1000, 'resume failed');
          return;
        }
        const p = f.ref ? this.#pending.get(f.ref) : undefined;
        if (p) {
          this.#pending.delete(f.ref!);
          clearTimeout(p.timer);
          if (f.type === 'error') p.reject(new ChatCommandError(f.error));
          else p.resolve(f.type === 'ack' ? f.result : undefined);
          return;
        }
        if (f.type === 'error') this.emit('error', f);
        return;
      }
      case 'receipt':
        this.emit('receipt', f);
        return;
      case 'typing':
        this.emit('typing', f);
        return;
      case 'presence':
        this.emit('presence', f);
        return;
      case 'unread':
        this.emit('unread', f);
        return;
      case 'notification':
        this.emit('notification', f);
        return;
    }
  }
}

/** Whether an event frame is the user's own MemberLeft or MemberJoined. */
const ownMembership = (
  f: ServerFrameOf<'event'>,
  userId: string | undefined,
): 'left' | 'joined' | undefined => {
  const e = f.event;
  if (e.type !== 'MemberLeft' && e.type !== 'MemberJoined') return undefined;
  if (userId === undefined || (e.data as { userId?: unknown }).userId !== userId) return undefined;
  return e.type === 'MemberLeft' ? 'left' : 'joined';
};
