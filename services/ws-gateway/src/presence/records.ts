import { createInbox, headers, type Msg, type NatsConnection, type Subscription } from 'nats';

/** The key's record changed since it was read (JetStream "wrong last sequence"): read it again. */
export class RecordConflictError extends Error {
  override readonly name = 'RecordConflictError';
}

/** JetStream refused or did not answer (stream missing, NATS away, timeout). */
export class RecordStoreError extends Error {
  override readonly name = 'RecordStoreError';
}

/** A key's last value and its revision; a missing or deleted key has no value (revision 0 if never written). */
export type StoredRecord = { value: string | undefined; revision: number };

type Pending = { resolve: (msg: Msg) => void; reject: (err: Error) => void; sentAt: number };

/** JetStream API error codes (nats-server `server/jetstream_errors_generated.go`). */
const NO_MESSAGE_FOUND = 10037;
const WRONG_LAST_SEQUENCE = 10071;
const decoder = new TextDecoder();

/**
 * The two JetStream KV operations presence needs on a connect — read a key's last value with its
 * revision, write it with compare-and-set — as plain messages over one inbox subscription. nats.js's
 * KV and request() allocate a timer, several promises and an Error per call (its "cancelled" rejection
 * is built even after a success): during a reconnect burst that was most of the gateway's CPU per
 * connect and, promoted to the old generation before it died, most of its memory growth. Reads use
 * `$JS.API.STREAM.MSG.GET` (last_by_subj), writes publish to the key's subject with
 * `Nats-Expected-Last-Subject-Sequence` (ADR-8), exactly what nats.js's kv.get/update/create do, so
 * records stay readable by any KV client (the command-api's GET /v1/presence).
 */
export class KvRecords {
  readonly #inbox = createInbox();
  readonly #pending = new Map<string, Pending>();
  #next = 0;
  /** Reused: nats.js encodes headers synchronously inside publish(), so one object serves every write. */
  readonly #casHeader = headers();
  #sub: Subscription | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly nats: NatsConnection,
    private readonly bucket: string,
    private readonly timeoutMs = 5_000,
  ) {}

  start(): void {
    this.#sub = this.nats.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const token = msg.subject.slice(this.#inbox.length + 1);
        const p = this.#pending.get(token);
        if (!p) return;
        this.#pending.delete(token);
        p.resolve(msg);
      },
    });
    // One timer for every request's deadline instead of one per request.
    this.#sweeper = setInterval(() => {
      const cutoff = Date.now() - this.timeoutMs;
      for (const [token, p] of this.#pending) {
        if (p.sentAt > cutoff) continue;
        this.#pending.delete(token);
        p.reject(new RecordStoreError('JetStream did not answer in time'));
      }
    }, 1000);
    this.#sweeper.unref();
  }

  stop(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sub?.unsubscribe();
    for (const p of this.#pending.values()) p.reject(new RecordStoreError('stopped'));
    this.#pending.clear();
  }

  async get(key: string): Promise<StoredRecord> {
    // Keys are KV tokens ([-/_=.A-Za-z0-9]): nothing in them needs JSON escaping.
    const answer = await this.#request(
      `$JS.API.STREAM.MSG.GET.KV_${this.bucket}`,
      `{"last_by_subj":"$KV.${this.bucket}.${key}"}`,
    );
    const r = jsonOf(answer) as {
      message?: { seq: number; data?: string; hdrs?: string };
      error?: { err_code?: number; description?: string };
    };
    if (r.error?.err_code === NO_MESSAGE_FOUND) return { value: undefined, revision: 0 };
    if (r.error || !r.message) throw new RecordStoreError(r.error?.description ?? 'no message in answer');
    // A delete or purge marker: the key has no value, but a write must expect the marker's revision.
    const deleted = r.message.hdrs !== undefined && atob(r.message.hdrs).includes('KV-Operation');
    const value =
      deleted || r.message.data === undefined ? undefined : Buffer.from(r.message.data, 'base64').toString();
    return { value, revision: r.message.seq };
  }

  /** Writes `value` if the key's revision is still `expectedRevision` (0: the key was never written). */
  async write(key: string, value: string, expectedRevision: number): Promise<number> {
    this.#casHeader.set('Nats-Expected-Last-Subject-Sequence', String(expectedRevision));
    const answer = await this.#request(`$KV.${this.bucket}.${key}`, value, this.#casHeader);
    const r = jsonOf(answer) as { seq?: number; error?: { err_code?: number; description?: string } };
    if (r.error?.err_code === WRONG_LAST_SEQUENCE) throw new RecordConflictError(r.error.description);
    if (r.error || r.seq === undefined) throw new RecordStoreError(r.error?.description ?? 'no ack');
    return r.seq;
  }

  #request(subject: string, data: string, h?: ReturnType<typeof headers>): Promise<Msg> {
    return new Promise<Msg>((resolve, reject) => {
      const token = (this.#next++).toString(36);
      this.#pending.set(token, { resolve, reject, sentAt: Date.now() });
      try {
        this.nats.publish(subject, data, { reply: `${this.#inbox}.${token}`, ...(h ? { headers: h } : {}) });
      } catch (err) {
        this.#pending.delete(token);
        reject(new RecordStoreError('could not publish', { cause: err }));
      }
    });
  }
}

/** The JSON body of an answer; a status without one (503 no responders: the stream is gone) throws. */
const jsonOf = (msg: Msg): unknown => {
  if (msg.data.length === 0) {
    throw new RecordStoreError(
      `JetStream answered ${msg.headers?.code ?? '?'} ${msg.headers?.description ?? ''}`,
    );
  }
  try {
    return JSON.parse(decoder.decode(msg.data));
  } catch (err) {
    throw new RecordStoreError('unreadable answer', { cause: err });
  }
};
