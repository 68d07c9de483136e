import type pg from 'pg';
import {
  AppendLockTimeoutError,
  type AppendResult,
  type DataKeyClaim,
  DataKeyRefusedError,
  EventIdConflictError,
  type ExpectedRevision,
  encodePosition,
  type NewEvent,
  START_POSITION,
  WrongExpectedVersionError,
} from '../port.js';
import { describeAppendLockHolder } from './schema.js';

export type GroupCommitOptions = {
  /** Flushes that may run at once (each holds one pool connection). */
  maxConcurrentFlushes?: number;
  /** Upper bound of events in one flush, to keep transactions and payloads moderate. */
  maxEventsPerFlush?: number;
};

type PendingAppend = {
  streamId: string;
  events: readonly NewEvent[];
  expected: ExpectedRevision;
  /** Data keys stored or checked in the append's transaction (`EventStore.appendWithKeys`). */
  keys: readonly DataKeyClaim[];
  resolve: (result: AppendResult) => void;
  reject: (error: unknown) => void;
};

type AppendRow = {
  o_index: number;
  o_status: 'ok' | 'duplicate' | 'conflict' | 'id_conflict' | 'key_erased' | 'key_taken';
  o_revision: string | null;
  o_transaction_id: string | null;
  o_global_position: string | null;
  /** The transaction's `now()`: what `es.events.created_at` defaults to for the events it inserts. */
  o_now: Date;
};

const APPEND_SQL = 'SELECT *, now() AS o_now FROM es.append_batch($1::jsonb)';

/** SQLSTATE lock_not_available: `es.append_batch` gave up waiting for the log's append lock. */
const LOCK_NOT_AVAILABLE = '55P03';

/**
 * Group commit: concurrent appends share one transaction (one `es.append_batch` call), each checked
 * against its own expected revision. On a 2-core machine one event per transaction tops out near
 * 2,500 commits/s, so sharing the commit is what makes ≥ 5,000 commands/s possible.
 *
 * Latency stays low when idle: a flush starts as soon as a flush slot is free, so a lone append waits for
 * nothing. Appends that arrive while every slot is busy queue up and go together in the next flush.
 * Flushes hold the log's append lock to their commit, so they take turns (in this process and any other);
 * a second slot lets one flush travel to the database and wait its turn while the other commits.
 */
export class GroupCommitAppender {
  readonly #pool: pg.Pool;
  readonly #maxConcurrentFlushes: number;
  readonly #maxEventsPerFlush: number;
  #queue: PendingAppend[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: Array<() => void> = [];

  constructor(pool: pg.Pool, options: GroupCommitOptions = {}) {
    this.#pool = pool;
    this.#maxConcurrentFlushes = Math.max(1, options.maxConcurrentFlushes ?? 2);
    this.#maxEventsPerFlush = Math.max(1, options.maxEventsPerFlush ?? 2_000);
  }

  append(
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    keys: readonly DataKeyClaim[] = [],
  ): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ streamId, events, expected, keys, resolve, reject });
      // A microtask, not an immediate flush: appends issued in the same tick share the first flush too.
      if (!this.#scheduled) {
        this.#scheduled = true;
        queueMicrotask(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.#inFlight === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#inFlight < this.#maxConcurrentFlushes && this.#queue.length > 0) {
      const batch = this.#takeBatch();
      this.#inFlight++;
      void this.#flush(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
        if (this.#inFlight === 0 && this.#queue.length === 0) {
          for (const resolve of this.#idle.splice(0)) resolve();
        }
      });
    }
  }

  #takeBatch(): PendingAppend[] {
    let events = 0;
    let n = 0;
    while (n < this.#queue.length) {
      const size = this.#queue[n]!.events.length;
      if (n > 0 && events + size > this.#maxEventsPerFlush) break;
      events += size;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  async #flush(batch: PendingAppend[]): Promise<void> {
    let rows: AppendRow[];
    try {
      rows = await this.#run(batch);
    } catch (error) {
      if (isLockTimeout(error)) {
        // Every append of the batch would wait for the same lock again: fail them all, at once.
        const holder = await describeAppendLockHolder(this.#pool).catch(() => 'its holder is unknown');
        const timeout = new AppendLockTimeoutError(
          `the event log's append lock was not granted in time: ${holder}`,
          { cause: error },
        );
        for (const pending of batch) pending.reject(timeout);
        return;
      }
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      // One bad append failed the shared transaction: retry each alone, so only the culprit sees the error.
      await Promise.all(batch.map((pending) => this.#flush([pending])));
      return;
    }
    for (const row of rows) settle(batch[row.o_index]!, row);
  }

  async #run(batch: PendingAppend[]): Promise<AppendRow[]> {
    const payload = batch.map(({ streamId, events, expected, keys }, i) => ({
      i,
      s: streamId,
      e: expected === 'any' ? null : expected === 'no_stream' ? -1 : expected,
      ev: events.map((e) => ({ id: e.id, type: e.type, data: e.data, metadata: e.metadata })),
      ...(keys.length === 0
        ? {}
        : {
            k: keys.map((k) =>
              k.wrapped === null
                ? { u: k.userId, k: k.kid }
                : { u: k.userId, k: k.kid, w: k.wrapped.toString('base64') },
            ),
          }),
    }));
    const { rows } = await this.#pool.query<AppendRow>({
      name: 'es_append_batch',
      text: APPEND_SQL,
      values: [JSON.stringify(payload)],
    });
    return rows;
  }
}

const isLockTimeout = (error: unknown): boolean =>
  typeof error === 'object' && error !== null && (error as { code?: unknown }).code === LOCK_NOT_AVAILABLE;

const settle = (pending: PendingAppend, row: AppendRow): void => {
  const revision = Number(row.o_revision ?? -1);
  switch (row.o_status) {
    case 'ok':
    case 'duplicate':
      pending.resolve({
        nextExpectedRevision: revision,
        position:
          row.o_transaction_id === null || row.o_global_position === null
            ? START_POSITION
            : encodePosition(BigInt(row.o_transaction_id), BigInt(row.o_global_position)),
        ...(row.o_status === 'ok' ? { occurredAt: row.o_now.toISOString() } : {}),
      });
      return;
    case 'conflict':
      pending.reject(new WrongExpectedVersionError(pending.streamId, pending.expected, revision));
      return;
    case 'id_conflict':
      pending.reject(
        new EventIdConflictError(
          pending.streamId,
          pending.events.map((e) => e.id),
        ),
      );
      return;
    case 'key_erased':
    case 'key_taken':
      pending.reject(
        new DataKeyRefusedError(pending.streamId, row.o_status === 'key_erased' ? 'erased' : 'taken'),
      );
      return;
    default: {
      const unknown: never = row.o_status;
      pending.reject(new Error(`unexpected append status ${String(unknown)}`));
    }
  }
};
