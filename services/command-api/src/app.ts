import { randomUUID } from 'node:crypto';
import type { NatsSubjects } from '@chat/events';
import type { DataKeyStore, EventStore } from '@chat/eventstore';
import { livePublisher } from '@chat/platform';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { jsonSchemaTransform, serializerCompiler } from 'fastify-type-provider-zod';
import type { NatsConnection } from 'nats';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { eraseRoutes } from './admin/erase.js';
import { type Clock, conversationCommands } from './commands/catalogue.js';
import { moderationCommands } from './commands/moderation.js';
import { CommandRegistry } from './commands/registry.js';
import { commandRoutes } from './commands/routes.js';
import { ConversationWriter, ReportWriter, UserWriter } from './commands/writer.js';
import type { AppConfig } from './config.js';
import { exportRoutes } from './export/routes.js';
import { publishingConversationEvents } from './nats/live-publisher.js';
import { NatsOutbox } from './nats/outbox.js';
import { CommandResponder } from './nats/responder.js';
import { notificationRoutes } from './notifications/routes.js';
import { authPlugin } from './plugins/auth.js';
import {
  clientErrorResponse,
  registerErrorHandling,
  toApiError,
  zodValidatorCompiler,
} from './plugins/errors.js';
import { infrastructurePlugin } from './plugins/infrastructure.js';
import { createMetrics } from './plugins/metrics.js';
import { opsRoutes } from './plugins/ops.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { optionalBodies } from './plugins/route-schema.js';
import { presenceRoutes } from './presence/routes.js';
import { readModelPlugin } from './queries/freshness.js';
import { moderationQueryRoutes } from './queries/moderation-routes.js';
import { queryRoutes } from './queries/routes.js';
import { threadAndSearchRoutes } from './queries/threads-and-search.js';
import { devTokenRoutes } from './web/dev-token.js';
import { webAppRoutes } from './web/static.js';

export type AppDeps = {
  config: Readonly<AppConfig>;
  store: EventStore;
  /** The users' data keys (the store encrypts with them); needed by the erase route, else it answers 503. */
  dataKeys?: DataKeyStore;
  pool: pg.Pool;
  nats: NatsConnection;
  subjects: NatsSubjects;
  logger: Logger;
  clock: Clock;
  registry: Registry;
};

export const BODY_LIMIT_BYTES = 64 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The command-api as a fastify instance, not listening. Plugins register in dependency order; route
 * groups are encapsulated plugins. Serving commands over NATS starts on `ready` and stops on `close`.
 */
export const buildApp = async (given: AppDeps): Promise<FastifyInstance> => {
  const { config } = given;
  const outbox = new NatsOutbox(given.nats);
  const deps: AppDeps =
    livePublisher(config) === 'command-api'
      ? {
          ...given,
          store: publishingConversationEvents(
            given.store,
            given.subjects,
            (subject, payload, onError) => outbox.publish(subject, payload, onError),
            given.logger,
          ),
        }
      : given;
  const trustProxy = config.TRUST_PROXY;
  const loggerInstance: FastifyBaseLogger = deps.logger;
  const app = Fastify({
    loggerInstance,
    bodyLimit: BODY_LIMIT_BYTES,
    // A hop count as proxy-addr reads it (the typings only know booleans, lists and functions).
    trustProxy:
      typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy,
    // Per-request log lines cost more than a command at thousands per second; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // A client-supplied correlation id (UUID) is carried into event metadata; otherwise a fresh one.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-correlation-id'];
      return typeof given === 'string' && UUID.test(given) ? given.toLowerCase() : randomUUID();
    },
    // A malformed URL (bad percent-encoding) fails before routing: answer it with the API error body too.
    frameworkErrors: (error: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const { status, body } = toApiError(error);
      reply.code(status).send(body);
    },
    // Refused by Node's HTTP parser before fastify sees a request (a URL or headers over 16 KiB…).
    clientErrorHandler: (err, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(err));
      socket.destroy(err);
    },
  });
  app.setValidatorCompiler(zodValidatorCompiler);
  // Every answer is checked against its route's response schema from @chat/events as it is written,
  // so a response that drifts from the documented shape fails loudly instead of reaching clients.
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  // DELETE and typing carry no body, but many clients still send `Content-Type: application/json`:
  // read an empty JSON body as no body instead of refusing it.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    return parseJson(request, text, done);
  });

  const metrics = createMetrics(deps.registry);
  const writer = new ConversationWriter(deps.store, {
    logger: deps.logger.child({ component: 'conversation-writer' }),
    metrics: metrics.writer,
    maxCached: config.COMMAND_CACHE_CONVERSATIONS,
  });
  const users = new UserWriter(deps.store, {
    logger: deps.logger.child({ component: 'user-writer' }),
    metrics: metrics.writer,
    maxCached: config.COMMAND_CACHE_CONVERSATIONS,
  });
  const reports = new ReportWriter(deps.store, {
    logger: deps.logger.child({ component: 'report-writer' }),
    metrics: metrics.writer,
    maxCached: config.COMMAND_CACHE_CONVERSATIONS,
  });
  const services = { writer, users, reports, clock: deps.clock };
  const commands = new CommandRegistry(services);
  for (const command of [...conversationCommands, ...moderationCommands]) commands.register(command);

  await app.register(infrastructurePlugin, { ...deps, metrics, commands });
  // Before every route: its hook is added to each route registered after it.
  await app.register(rateLimitPlugin, {
    pool: deps.pool,
    logger: deps.logger.child({ component: 'rate-limit' }),
    policy: {
      windowMs: config.RATE_LIMIT_WINDOW_MS,
      max: {
        commands: config.RATE_LIMIT_COMMANDS,
        queries: config.RATE_LIMIT_QUERIES,
        anonymous: config.RATE_LIMIT_ANONYMOUS,
      },
    },
  });
  await app.register(authPlugin, {
    jwtSecret: config.JWT_SECRET,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    jwksUrl: config.JWKS_URL,
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpDuration.observe(
      { method: request.method, route, status_code: reply.statusCode },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'chat command-api',
        version: '1.1.0',
        description: 'Commands and queries (API.md §2)',
        license: { name: 'Proprietary' },
      },
      // Relative: the document describes the server that serves it, wherever it is deployed.
      servers: [{ url: '/', description: 'this command-api' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: (document) =>
      'openapiObject' in document ? optionalBodies(document.openapiObject) : document.swaggerObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  await app.register(readModelPlugin);
  await app.register(opsRoutes);
  await app.register(commandRoutes, { commands: [...conversationCommands, ...moderationCommands] });
  await app.register(moderationQueryRoutes);
  await app.register(notificationRoutes);
  await app.register(queryRoutes);
  await app.register(exportRoutes);
  await app.register(threadAndSearchRoutes);
  await app.register(presenceRoutes);
  await app.register(eraseRoutes, { dataKeys: deps.dataKeys });
  // Signing in as anyone is for development only; in JWKS mode no token this service signs is accepted.
  if (config.NODE_ENV !== 'production' && !config.JWKS_URL) {
    await app.register(devTokenRoutes, {
      jwtSecret: config.JWT_SECRET,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
    });
  }
  if (config.WEB_ROOT) {
    await app.register(webAppRoutes, { root: config.WEB_ROOT, gatewayUrl: config.WEB_GATEWAY_URL });
  }
  // Route groups of the read path, notifications and presence register here, one line each.

  const responder = new CommandResponder({
    nats: deps.nats,
    outbox,
    subjects: deps.subjects,
    commands,
    limits: app.rateLimits,
    metrics,
    logger: deps.logger.child({ component: 'nats-commands' }),
    queueGroup: config.COMMAND_QUEUE_GROUP,
  });
  app.addHook('onReady', async () => responder.start());
  app.addHook('preClose', async () => responder.stop());
  // What the last commands queued goes out before the caller drains the NATS connection.
  app.addHook('onClose', async () => outbox.flush());
  return app;
};
