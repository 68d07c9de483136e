import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';

export type ReadinessCheck = () => Promise<void>;

/**
 * `/healthz`, `/readyz` and `/metrics` for services that have no HTTP framework of their own
 * (projector, notifier). `/readyz` runs every named check and answers 503 naming the failed ones.
 */
export const startOpsServer = async (options: {
  port: number;
  host?: string;
  registry: Registry;
  checks: Record<string, ReadinessCheck>;
}): Promise<{ server: Server; port: number; close: () => Promise<void> }> => {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: string, type = 'application/json') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET')
      return send(405, JSON.stringify({ error: { code: 'not_found', message: 'GET only' } }));
    if (path === '/healthz') return send(200, JSON.stringify({ status: 'ok' }));
    if (path === '/readyz') {
      void runChecks(options.checks).then(({ ok, results }) =>
        send(ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'unavailable', checks: results })),
      );
      return;
    }
    if (path === '/metrics') {
      void options.registry.metrics().then(
        (text) => send(200, text, options.registry.contentType),
        (err: unknown) => send(500, String(err), 'text/plain'),
      );
      return;
    }
    send(404, JSON.stringify({ error: { code: 'not_found', message: `no route ${path}` } }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

export const runChecks = async (
  checks: Record<string, ReadinessCheck>,
  timeoutMs = 2000,
): Promise<{ ok: boolean; results: Record<string, 'ok' | string> }> => {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      try {
        await Promise.race([
          check(),
          new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), timeoutMs).unref()),
        ]);
        return [name, 'ok'] as const;
      } catch (err) {
        return [name, err instanceof Error ? err.message : String(err)] as const;
      }
    }),
  );
  return { ok: entries.every(([, r]) => r === 'ok'), results: Object.fromEntries(entries) };
};
