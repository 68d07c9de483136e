import type { EventFilter, EventStore, RecordedEvent } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { Pool, PoolClient } from 'pg';
import type { Registry } from 'prom-client';

type CommonOptions<R> = {
  /** The consumer's checkpoint row and quarantine key (e.g. `read_models`, `relay`, `notifier`). */
  name: string;
  store: EventStore;
  /** Checkpoints, quarantine, leader lock and (in-transaction) the batch transactions. */
  pool: Pool;
  logger: Logger;
  /** Only these events are read (a server-side filter in the store). */
  filter?: EventFilter;
  /** Largest batch: reached while catching up; live batches are as small as the traffic. */
  batchSize?: number;
  /** Wait after a partial batch so the next one gathers more (see `lingerAfter`); 0 = none. */
  lingerMs?: number;
  /** Advisory lock held by the leader; default `name`. One leader per lock, others stand by. */
  lockName?: string;
  /** How often a standby tries to take over. */
  leaderRetryMs?: number;
  /** Prometheus metrics `<prefix>_…`; `eventsBehind` adds `<prefix>_lag_events` (a capped read per scrape). */
  metrics?: { registry: Registry; prefix: string; eventsBehind?: boolean };
  /**
   * Attempts an event gets when applied alone, while every dependency answers, before it is
   * quarantined (default 3).
   */
  maxAttempts?: number;
  /** How often the leader looks for `chatctl quarantine retry` requests (default 1000 ms). */
  retryPollMs?: number;
  /**
   * Health of the dependencies `applyBatch` uses besides Postgres and the event store (which are
   * always checked), e.g. NATS: no event is blamed while one of them fails.
   */
  probe?: () => Promise<void>;
  /**
   * Called each time this instance becomes the leader, before it reads the checkpoint: in-memory state
   * kept between batches may be stale, another leader having written meanwhile.
   */
  onStart?: () => void;
  /** After each commit, with what `applyBatch` returned (live pushes, cache upkeep). Errors are logged. */
  afterCommit?: (result: R, events: readonly RecordedEvent[]) => Promise<void> | void;
};

/**
 * Effects in Postgres: `applyBatch` runs in the transaction that moves the checkpoint, so each event's
 * effects commit exactly once. Events at or below the checkpoint are skipped inside the transaction.
 */
export type InTransactionOptions<R> = CommonOptions<R> & {
  checkpoint: 'in-transaction';
  applyBatch: (events: readonly RecordedEvent[], client: PoolClient) => Promise<R>;
  /** Runs first in every transaction, before the checkpoint is locked (e.g. a lock shared with a rebuild). */
  beginTransaction?: (client: PoolClient) => Promise<void>;
  /**
   * Like `beginTransaction`, as SQL without parameters sent with BEGIN in one round trip (one fewer per
   * batch); runs before `beginTransaction`.
   */
  beginStatement?: string;
  /** `applyBatch` ran but its transaction did not commit: in-memory state built in it is stale. */
  rolledBack?: () => void;
  /** false: commit without waiting for the WAL flush (the checkpoint commits with the effects). */
  synchronousCommit?: boolean;
  /**
   * Judged before any transaction, from the consumer's in-memory state: the batch's result when applying
   * `events` would write nothing but the checkpoint, else undefined (then `applyBatch` runs in a
   * transaction as usual). For such a batch the runtime opens no transaction: it moves the checkpoint
   * forward with one statement and calls `afterCommit` with the result. A crash before that statement
   * replays events that write nothing, so exactly-once holds. Must be pure: no I/O, no state change.
   */
  withoutWrites?: (events: readonly RecordedEvent[]) => R | undefined;
};

/**
 * Effects outside Postgres (NATS): the checkpoint moves after `applyBatch` resolved, written while the
 * next batch is applied, so a crash repeats at most the batches since the last write: at-least-once.
 */
export type AfterEffectsOptions<R> = CommonOptions<R> & {
  checkpoint: 'after-effects';
  /** Applies the batch; its effects need not be durable yet when it resolves (see `settleEffects`). */
  applyBatch: (events: readonly RecordedEvent[]) => Promise<R>;
  /**
   * Makes the effects of every batch applied so far durable (the relay: a NATS flush, which the server
   * answers only after it has taken every message published before it). Runs before each checkpoint
   * write, so the checkpoint never passes an effect that could still be lost.
   */
  settleEffects?: () => Promise<void>;
  /**
   * Checkpoint writes at most this often (default 0: after every batch). A crash repeats the events
   * since the last write — at-least-once allows it — so a live consumer that handles one event per
   * batch pays one checkpoint transaction (and one `settleEffects`) per interval, not per event.
   */
  checkpointEveryMs?: number;
};

export type ConsumerOptions<R = unknown> = InTransactionOptions<R> | AfterEffectsOptions<R>;
