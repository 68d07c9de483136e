import type { Socket } from 'node:net';
import { retryDelayMs, retryPolicy } from '@chat/retry';
import WebSocket from 'ws';
import { now } from '../history/clock.js';
import type { HistoryWriter } from '../history/file.js';
import type { DeviceSpec } from './protocol.js';

// One device: a raw WebSocket (not the SDK, which hides duplicates and gaps) that reconnects with
// full jitter, fails over to the other gateway when its own is down, and `resume`s with the last seq it
// saw per conversation (API.md §4). Every frame that matters for the checks goes to the history as
// received.

/** Reconnects spread over seconds (like the SDK's policy, a little quicker so a run recovers in time). */
const RECONNECT = retryPolicy({ name: 'chaos-reconnect', baseMs: 100, maxMs: 3_000, maxAttempts: Infinity });

type Frame = { type: string; [key: string]: unknown };
export type AnswerHandler = (frame: Frame | { type: 'closed' }) => void;

export type DeviceOptions = {
  spec: DeviceSpec;
  gateways: () => readonly string[];
  token: string;
  history: HistoryWriter;
};

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export class Device {
  readonly spec: DeviceSpec;
  /** Last seq seen per conversation it is in: what the next `resume` sends. */
  readonly positions = new Map<string, number>();
  readonly counts: Record<string, number> = {};
  #ws: WebSocket | undefined;
  #n = 0;
  #open = false;
  #resumed = false;
  #reading = true;
  #finishing = false;
  #failures = 0;
  #gateway: number;
  #closeReason: string | undefined;
  #nextDelayMs: number | undefined;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #nextPingAt = 0;
  #pongDeadline: number | undefined;
  #firstResumed: (() => void) | undefined;
  readonly #pending = new Map<string, AnswerHandler>();
  readonly #options: DeviceOptions;

  constructor(options: DeviceOptions) {
    this.#options = options;
    this.spec = options.spec;
    this.#gateway = options.spec.gw;
    // -1: everything from seq 0, ConversationStarted included.
    for (const c of options.spec.convs) this.positions.set(c, -1);
  }

  /** Open, resumed and reading: a command sent now can be answered. */
  get ready(): boolean {
    return this.#open && this.#resumed && this.#reading;
  }

  get open(): boolean {
    return this.#open;
  }

  /** Connects; resolves at the first `resumed` (or after `timeoutMs`, connecting on in the background). */
  start(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#firstResumed = () => {
        clearTimeout(timer);
        resolve();
      };
      this.#connect();
    });
  }

  /** Sends a command frame; `onAnswer` gets its `ack`/`error`, or `closed` if the socket goes first. */
  send(frame: Frame & { ref: string }, onAnswer: AnswerHandler): boolean {
    const ws = this.#ws;
    if (!ws || !this.ready) return false;
    try {
      ws.send(JSON.stringify(frame));
    } catch {
      return false;
    }
    this.#pending.set(frame.ref, onAnswer);
    return true;
  }

  forget(ref: string): void {
    this.#pending.delete(ref);
  }

  /** Called about once a second by the process: app-level pings and their deadlines. */
  tick(at: number): void {
    const ws = this.#ws;
    if (!ws || !this.#open || !this.#reading) return;
    if (this.#pongDeadline !== undefined && at > this.#pongDeadline) {
      this.#closeByClient('pong timeout');
      return;
    }
    if (at >= this.#nextPingAt && this.#pongDeadline === undefined) {
      try {
        ws.send(JSON.stringify({ type: 'ping', ref: `ping${this.#n}` }));
      } catch {}
      this.#pongDeadline = at + this.#pongTimeoutMs;
    }
  }

  #pingEveryMs = 15_000;
  #pongTimeoutMs = 8_000;
  setHeartbeat(everyMs: number, timeoutMs: number): void {
    this.#pingEveryMs = everyMs;
    this.#pongTimeoutMs = timeoutMs;
    this.#nextPingAt = now() + Math.random() * everyMs;
  }

  /** Closes the socket from the client side and reconnects after `delayMs` (a reconnect storm). */
  storm(delayMs: number): void {
    if (this.#finishing) return;
    if (this.#ws) {
      this.#nextDelayMs = delayMs;
      this.#closeByClient('storm');
    }
  }

  /** Stops reading the socket (the kernel buffers fill, then the gateway's), or starts again. */
  reading(on: boolean): void {
    this.#reading = on;
    const socket = (this.#ws as unknown as { _socket?: Socket } | undefined)?._socket;
    if (on) {
      this.#pongDeadline = undefined;
      socket?.resume();
      // Closed while it was not reading: it reconnects now that it reads again.
      if (!this.#ws && !this.#finishing && this.#reconnectTimer === undefined) this.#connect();
    } else socket?.pause();
  }

  finish(): void {
    this.#finishing = true;
    clearTimeout(this.#reconnectTimer);
    if (this.#ws) {
      this.#closeReason = 'finish';
      this.#ws.close(1000);
      const ws = this.#ws;
      setTimeout(() => ws.terminate(), 2000).unref();
    }
  }

  #closeByClient(reason: string): void {
    this.#closeReason = reason;
    this.#ws?.terminate();
  }

  #connect(): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#finishing) return;
    const n = ++this.#n;
    const gw = this.#gateway;
    const url = this.#options.gateways()[gw];
    const { history, spec } = this.#options;
    history.write({ k: 'conn', t: now(), d: spec.d, n, gw });
    const ws = new WebSocket(`${url}?access_token=${this.#options.token}`, {
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.#ws = ws;
    this.#open = false;
    this.#resumed = false;
    this.#closeReason = undefined;
    this.#pongDeadline = undefined;
    let upgraded = false;
    let failure = '';
    ws.on('upgrade', () => {
      upgraded = true;
    });
    ws.on('error', (err) => {
      failure ||= err.message;
    });
    ws.on('message', (data: Buffer) => this.#onFrame(n, gw, ws, data));
    ws.on('close', (code, reason) => this.#onClose(n, gw, upgraded, code, String(reason) || failure));
  }

  #onClose(n: number, gw: number, upgraded: boolean, code: number, reason: string): void {
    if (n !== this.#n) return;
    const { history, spec } = this.#options;
    const t = now();
    for (const [ref, answer] of this.#pending) {
      this.#pending.delete(ref);
      answer({ type: 'closed' });
    }
    if (upgraded) {
      history.write({
        k: 'close',
        t,
        d: spec.d,
        n,
        code,
        by: this.#closeReason ? 'client' : 'server',
        reason: this.#closeReason ?? reason,
      });
    } else history.write({ k: 'connfail', t, d: spec.d, n, gw, reason: reason || `closed ${code}` });
    this.#ws = undefined;
    this.#open = false;
    this.#resumed = false;
    // A device that does not read does not reconnect either, until it reads again.
    if (this.#finishing || !this.#reading) return;
    // Back to the preferred gateway after a session; to the other one after a failed connect.
    this.#gateway = upgraded ? spec.gw : (gw + 1) % this.#options.gateways().length;
    const delay = this.#nextDelayMs ?? retryDelayMs(RECONNECT, ++this.#failures);
    this.#nextDelayMs = undefined;
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  #onFrame(n: number, gw: number, ws: WebSocket, data: Buffer): void {
    if (n !== this.#n) return;
    let f: Frame;
    try {
      f = JSON.parse(data.toString()) as Frame;
    } catch {
      this.counts.unparsable = (this.counts.unparsable ?? 0) + 1;
      return;
    }
    this.counts[f.type] = (this.counts[f.type] ?? 0) + 1;
    const { history, spec } = this.#options;
    const t = now();
    switch (f.type) {
      case 'hello': {
        this.#open = true;
        this.#failures = 0;
        history.write({ k: 'open', t, d: spec.d, n, gw });
        const positions = Object.fromEntries(this.positions);
        ws.send(JSON.stringify({ type: 'resume', ref: `resume${n}`, positions }));
        history.write({ k: 'resume', t, d: spec.d, n, positions });
        return;
      }
      case 'resumed': {
        const truncated = Array.isArray(f.truncated) ? (f.truncated as string[]) : [];
        const unknown = Array.isArray(f.unknown) ? (f.unknown as string[]) : [];
        history.write({ k: 'resumed', t, d: spec.d, n, truncated, unknown });
        for (const c of unknown) this.positions.delete(c.toLowerCase());
        this.#resumed = true;
        this.#firstResumed?.();
        this.#firstResumed = undefined;
        return;
      }
      case 'event': {
        const conv = str(f.conversationId) ?? '';
        const seq = Number(f.seq);
        const event = (f.event ?? {}) as { id?: unknown; type?: unknown; data?: Record<string, unknown> };
        const type = str(event.type) ?? '';
        const mid = type === 'MessageSent' ? str(event.data?.messageId) : undefined;
        const user = type === 'MemberJoined' || type === 'MemberLeft' ? str(event.data?.userId) : undefined;
        history.write({
          k: 'ev',
          t,
          d: spec.d,
          n,
          conv,
          seq,
          id: str(event.id) ?? '',
          type,
          ...(mid ? { mid } : {}),
          ...(user ? { user } : {}),
        });
        const last = this.positions.get(conv);
        if (last !== undefined && seq > last) this.positions.set(conv, seq);
        if (type === 'MemberLeft' && user === spec.user) this.positions.delete(conv);
        return;
      }
      case 'notification': {
        const notification = (f.notification ?? {}) as Record<string, unknown>;
        history.write({
          k: 'notif',
          t,
          d: spec.d,
          n,
          conv: str(notification.conversationId) ?? '',
          mid: str(notification.messageId) ?? '',
          nid: str(notification.notificationId) ?? '',
        });
        return;
      }
      case 'receipt':
        history.write({
          k: 'receipt',
          t,
          d: spec.d,
          n,
          conv: str(f.conversationId) ?? '',
          user: str(f.userId) ?? '',
          readSeq: Number(f.readSeq),
        });
        return;
      case 'pong':
        this.#pongDeadline = undefined;
        this.#nextPingAt = t + this.#pingEveryMs;
        return;
      case 'ack':
      case 'error': {
        const ref = str(f.ref);
        const answer = ref === undefined ? undefined : this.#pending.get(ref);
        if (ref !== undefined && answer) {
          this.#pending.delete(ref);
          answer(f);
        }
        return;
      }
      default:
        // unread (v1; gone in v1.1), typing, presence: counted only.
        return;
    }
  }
}
