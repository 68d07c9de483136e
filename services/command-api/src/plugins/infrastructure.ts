import type { NatsSubjects } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import fp from 'fastify-plugin';
import type { NatsConnection } from 'nats';
import type pg from 'pg';
import type { Clock } from '../commands/catalogue.js';
import type { CommandRegistry } from '../commands/registry.js';
import type { AppConfig } from '../config.js';
import type { AppMetrics } from './metrics.js';

/** Shared infrastructure every route plugin reaches through the fastify instance. */
export type Infrastructure = {
  config: Readonly<AppConfig>;
  /** The event store (append/read); commands should go through `commands` instead. */
  store: EventStore;
  /** Postgres pool of the one database (read models live in schema `read_models`). */
  pool: pg.Pool;
  nats: NatsConnection;
  subjects: NatsSubjects;
  clock: Clock;
  metrics: AppMetrics;
  /** Commands by name, also served over NATS `<prefix>.cmd.<name>`; plugins may register more. */
  commands: CommandRegistry;
};

declare module 'fastify' {
  // The decorators below are exactly the Infrastructure fields.
  interface FastifyInstance extends Infrastructure {}
}

export const infrastructurePlugin = fp<Infrastructure>(
  async (app, deps) => {
    app.decorate('config', deps.config);
    app.decorate('store', deps.store);
    app.decorate('pool', deps.pool);
    app.decorate('nats', deps.nats);
    app.decorate('subjects', deps.subjects);
    app.decorate('clock', deps.clock);
    app.decorate('metrics', deps.metrics);
    app.decorate('commands', deps.commands);
  },
  { name: 'chat-infrastructure' },
);
