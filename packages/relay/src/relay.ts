import { runConsumer } from '@chat/consumer';
import { EVENT_TYPES, eventDefinitions, type NatsSubjects, parseStreamId, STREAM_PREFIX } from '@chat/events';
import type { EventFilter, EventStore, RecordedEvent } from '@chat/eventstore';
import type { LivePublisher, Logger } from '@chat/platform';
import type { NatsConnection } from 'nats';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import { routeEvent } from './routing.js';

export type RelayDeps = {
  store: EventStore;
  nats: NatsConnection;
  subjects: NatsSubjects;
  pool: pg.Pool;
  logger: Logger;
  /** Metrics `relay_…`. */
  registry?: Registry;
  /** Checkpoint row and leader lock; one relay per log. */
  name?: string;
  leaderRetryMs?: number;
  /** Checkpoint writes at most this often (default {@link CHECKPOINT_EVERY_MS}). */
  checkpointEveryMs?: number;
  /**
   * `relay` (default): every event goes to its subjects from here. `command-api`: the writer publishes a
   * conversation stream's events as it stores them, so the relay publishes of them only the membership
   * news and, per batch, each conversation's last seq on `subjects.heads` — from which a gateway that
   * missed an event (its writer died between commit and publish) reads it from the store.
   */
  conversationEventsFrom?: LivePublisher;
  /** Wait after a partial batch so the next gathers more (`runConsumer`'s linger); 0 = none. */
  lingerMs?: number;
};

/** What a relay crash may re-publish at most, in time: gateways drop the duplicates by `seq`. */
export const CHECKPOINT_EVERY_MS = 200;

export type Relay = { run(signal: AbortSignal): Promise<void> };

/**
 * The streams of the event types the relay publishes (relay trait other than `none`), read with a
 * server-side filter: conversation, receipts and typing streams, and user streams for their blocks
 * (routeEvent publishes nothing else of them); report streams never.
 */
export const RELAYED_STREAMS: EventFilter = {
  streamPrefixes: [
    ...new Set(
      EVENT_TYPES.filter((type) => eventDefinitions[type].relay !== 'none').map(
        (type) => STREAM_PREFIX[eventDefinitions[type].stream],
      ),
    ),
  ],
};

/**
 * Tails the global log from its checkpoint and publishes every event to NATS in log order
 * (DESIGN.md "Data flow" 2), a client of the consumer runtime. Publishing from the log, not from the
 * command handler, means no dual write: whatever is stored is delivered. At-least-once: the checkpoint
 * moves only after a NATS flush confirmed the server has the messages, so a crash re-publishes at most
 * the events since the last checkpoint (written at most every CHECKPOINT_EVERY_MS), and gateways drop those duplicates by `seq`. An event NATS
 * refuses (larger than the server's max payload) is quarantined; gateways fill its gap from the store.
 */
export const createRelay = (deps: RelayDeps): Relay => {
  const { nats, subjects } = deps;
  const name = deps.name ?? 'relay';
  const route = { conversationSubject: (deps.conversationEventsFrom ?? 'relay') === 'relay' };
  return {
    run: (signal) =>
      runConsumer(
        {
          name,
          store: deps.store,
          pool: deps.pool,
          logger: deps.logger.child({ component: 'relay' }),
          filter: RELAYED_STREAMS,
          batchSize: 500,
          ...(deps.lingerMs ? { lingerMs: deps.lingerMs } : {}),
          ...(deps.leaderRetryMs === undefined ? {} : { leaderRetryMs: deps.leaderRetryMs }),
          ...(deps.registry ? { metrics: { registry: deps.registry, prefix: 'relay' } } : {}),
          probe: () => nats.flush(),
          checkpoint: 'after-effects',
          // Published at once, confirmed by a flush only before a checkpoint write: a live relay sees
          // about one event per batch, and a flush (a NATS round trip) plus a checkpoint transaction per
          // event were most of its cost. A crash re-publishes at most CHECKPOINT_EVERY_MS of events,
          // which gateways drop by `seq`.
          applyBatch: async (events) => {
            for (const event of events) {
              for (const p of routeEvent(event, subjects, route)) nats.publish(p.subject, p.payload);
            }
            if (!route.conversationSubject) {
              const heads = headsOf(events);
              if (heads) nats.publish(subjects.heads, heads);
            }
          },
          settleEffects: () => nats.flush(),
          checkpointEveryMs: deps.checkpointEveryMs ?? CHECKPOINT_EVERY_MS,
        },
        signal,
      ),
  };
};

/** `{"heads":{"<conversationId>": last seq}}` of the conversation streams' events of a batch, or null. */
export const headsOf = (events: readonly RecordedEvent[]): string | null => {
  const heads: Record<string, number> = {};
  let any = false;
  for (const e of events) {
    const stream = parseStreamId(e.streamId);
    if (stream?.category !== 'conversation') continue;
    heads[stream.id] = Math.max(heads[stream.id] ?? -1, e.revision);
    any = true;
  }
  return any ? JSON.stringify({ heads }) : null;
};
