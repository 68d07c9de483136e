import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { routeOf } from '../plugins/route-schema.js';
import type { Actor, RegisteredCommand } from './catalogue.js';

export type CommandRoutesOptions = { commands: readonly RegisteredCommand[] };

export const actorOf = (request: FastifyRequest): Actor => ({
  userId: request.user.userId,
  roles: request.user.roles,
  correlationId: request.id,
  causationId: null,
});

/** Registers the HTTP route of one command (its definition is also served over NATS). */
export const registerCommandRoute = (app: FastifyInstance, command: RegisteredCommand): void => {
  const { shape } = command;
  app.withTypeProvider<ZodTypeProvider>().route({
    ...routeOf(shape),
    handler: async (request, reply) => {
      const outcome = await command.run(
        app.commands.services,
        actorOf(request),
        request.params,
        request.body,
      );
      app.metrics.commands.inc({ command: shape.name, transport: 'http', status: outcome.status });
      return reply.code(outcome.status).send(outcome.result);
    },
  });
};

/** The command routes of API.md §2.1-2.3, one per command definition. */
export const commandRoutes = async (
  app: FastifyInstance,
  { commands }: CommandRoutesOptions,
): Promise<void> => {
  app.addHook('onRequest', app.authenticate);
  for (const command of commands) registerCommandRoute(app, command);
};
