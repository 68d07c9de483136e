import { runChecks } from '@chat/platform';
import type { FastifyPluginAsync } from 'fastify';

/** `/healthz` (alive), `/readyz` (event store, Postgres and NATS answer), `/metrics` (Prometheus). */
export const opsRoutes: FastifyPluginAsync = async (app) => {
  const hide = { schema: { hide: true } };
  app.get('/healthz', hide, async () => ({ status: 'ok' }));
  app.get('/readyz', hide, async (_request, reply) => {
    const { ok, results } = await runChecks({
      eventstore: () => app.store.ping(),
      postgres: async () => {
        await app.pool.query('SELECT 1');
      },
      nats: async () => {
        if (app.nats.isClosed()) throw new Error('connection closed');
        await app.nats.flush();
      },
    });
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'unavailable', checks: results });
  });
  app.get('/metrics', hide, async (_request, reply) =>
    reply.type(app.metrics.registry.contentType).send(await app.metrics.registry.metrics()),
  );
};
