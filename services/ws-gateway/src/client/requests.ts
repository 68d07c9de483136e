import { createInbox, type Msg, type NatsConnection, type Subscription } from 'nats';

/** How a forwarded command ended: the reply's bytes, or why there is none. */
export type RequestOutcome =
  | { ok: true; data: Uint8Array }
  | { ok: false; reason: 'timeout' | 'no_responders' | 'closed' };

type Pending = { deadline: number; done: (outcome: RequestOutcome) => void };

const TIMEOUT: RequestOutcome = { ok: false, reason: 'timeout' };
const NO_RESPONDERS: RequestOutcome = { ok: false, reason: 'no_responders' };
const CLOSED: RequestOutcome = { ok: false, reason: 'closed' };

/**
 * NATS request/reply for the commands sockets send, on one reply subscription (`<inbox>.<n>`) and one
 * timer for all of them. nats.js's `request` costs, per request, a timer, two promises and a
 * `NatsError` with its stack (built even on success, when it cancels the finished request): a visible
 * share of the gateway's CPU per message in the B2 profile. The semantics are the same: the reply, or
 * no responders (the server's 503 status on the reply subject), or a timeout, reported by `sweep`,
 * which the gateway's one interval calls (so a timeout is reported up to one tick late).
 */
export class CommandRequests {
  readonly #nats: NatsConnection;
  readonly #timeoutMs: number;
  readonly #prefix: string;
  /** Insertion order is deadline order (one timeout for all), so the sweep stops at the first live one. */
  readonly #pending = new Map<string, Pending>();
  readonly #sub: Subscription;
  #next = 0;

  constructor(nats: NatsConnection, timeoutMs: number) {
    this.#nats = nats;
    this.#timeoutMs = timeoutMs;
    this.#prefix = `${createInbox()}.`;
    this.#sub = nats.subscribe(`${this.#prefix}*`, {
      callback: (err, msg) => {
        if (!err) this.#onReply(msg);
      },
    });
  }

  /** How long a request waits for its reply. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  /** Publishes `data` to `subject` and calls `done` exactly once with its outcome. */
  request(subject: string, data: Uint8Array, done: (outcome: RequestOutcome) => void): void {
    const token = (++this.#next).toString(36);
    try {
      this.#nats.publish(subject, data, { reply: this.#prefix + token });
    } catch {
      done(CLOSED);
      return;
    }
    this.#pending.set(token, { deadline: performance.now() + this.#timeoutMs, done });
  }

  /** Ends every pending request as `closed` and stops the reply subscription. */
  stop(): void {
    this.#sub.unsubscribe();
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.done(CLOSED);
  }

  #onReply(msg: Msg): void {
    const token = msg.subject.slice(this.#prefix.length);
    const pending = this.#pending.get(token);
    if (!pending) return; // timed out already
    this.#pending.delete(token);
    // NATS core reports "no responders" as an empty message with status 503 on the reply subject.
    const noResponders = msg.data.length === 0 && msg.headers?.code === 503;
    pending.done(noResponders ? NO_RESPONDERS : { ok: true, data: msg.data });
  }

  /** Ends the requests whose deadline passed (`now`: `performance.now()`) as timed out. */
  sweep(now: number): void {
    for (const [token, pending] of this.#pending) {
      if (pending.deadline > now) return;
      this.#pending.delete(token);
      pending.done(TIMEOUT);
    }
  }
}
