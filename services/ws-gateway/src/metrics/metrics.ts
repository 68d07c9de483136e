import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export const createGatewayMetrics = (registry: Registry = new Registry()) => {
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    connections: new Gauge({
      name: 'ws_connections',
      help: 'Open WebSocket connections',
      registers: [registry],
    }),
    deliveries: new Counter({
      name: 'ws_deliveries_total',
      help: 'Frames handed to sockets (one per socket reached)',
      registers: [registry],
    }),
    duplicatesDropped: new Counter({
      name: 'ws_duplicates_dropped_total',
      help: 'Conversation events dropped because their seq was already delivered',
      registers: [registry],
    }),
    gapFills: new Counter({
      name: 'ws_gap_fills_total',
      help: 'Gaps in a conversation filled from the event store',
      registers: [registry],
    }),
    hintFills: new Counter({
      name: 'ws_hint_fills_total',
      help: 'Reads of the event store for events the relay said were stored and NATS had not brought within the grace',
      registers: [registry],
    }),
    slowConsumerCloses: new Counter({
      name: 'ws_slow_consumer_closes_total',
      help: 'Sockets closed with 1013 because their send buffer was over the limit',
      registers: [registry],
    }),
    commandRoundTrip: new Histogram({
      name: 'ws_nats_command_roundtrip_seconds',
      help: 'NATS request/reply round trip of commands forwarded to the command-api',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    natsRtt: new Gauge({
      name: 'ws_nats_rtt_seconds',
      help: 'NATS server round trip',
      registers: [registry],
    }),
    presenceErrors: new Counter({
      name: 'ws_presence_errors_total',
      help: 'Presence record writes, lookups and announcements that failed (each write and lookup is retried)',
      registers: [registry],
    }),
    feeds: new Gauge({
      name: 'ws_conversation_feeds',
      help: 'Conversations with a NATS subscription on this gateway',
      registers: [registry],
    }),
  };
};
