import type { NatsConnection } from 'nats';

type Pending = {
  subject: string;
  payload: string | Uint8Array;
  /** Called when NATS refuses the message (a closed connection, a payload over its limit). */
  onError: (err: unknown) => void;
};

/**
 * The command-api's NATS publishes of one turn of the event loop, handed to the client together at
 * the end of the turn. nats.js writes to its socket once per batch of publishes it holds when its
 * flush microtask runs; a command's live event (published as its append commits) and its reply (a few
 * promise steps later) used to go out as two socket writes, each waking nats-server and the sender's
 * gateway again. Queued here they leave in one write, in the order they were queued, at the latest one
 * turn of the event loop later (`setImmediate`).
 */
export class NatsOutbox {
  readonly #nats: Pick<NatsConnection, 'publish'>;
  #pending: Pending[] = [];
  #scheduled: NodeJS.Immediate | undefined;

  constructor(nats: Pick<NatsConnection, 'publish'>) {
    this.#nats = nats;
  }

  publish(subject: string, payload: string | Uint8Array, onError: (err: unknown) => void): void {
    this.#pending.push({ subject, payload, onError });
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  /** Hands everything queued to the client now (before draining it on shutdown). */
  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    const pending = this.#pending;
    this.#pending = [];
    for (const p of pending) {
      try {
        this.#nats.publish(p.subject, p.payload);
      } catch (err) {
        p.onError(err);
      }
    }
  }
}
