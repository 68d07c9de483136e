import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type WebClientConfig, webClientConfigSchema } from '@chat/events';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

export type WebAppOptions = {
  /** The built web client (apps/web/dist). */
  root: string;
  /** Where the page's WebSocket connects; `{host}` becomes the host name the page was loaded from. */
  gatewayUrl: string;
};

// Vite names every asset by its content hash, so they never change under a name; the page does.
const IMMUTABLE = 'public, max-age=31536000, immutable';
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the web client (apps/web) at `/` from the same origin as the API, so the page needs no CORS,
 * and `GET /config.json` with the gateway URL the page connects to. Files are listed once at start
 * (`wildcard: false`): unknown paths keep the API's 404 body, and nothing outside `root` is reachable.
 */
export const webAppRoutes: FastifyPluginAsync<WebAppOptions> = async (app, options) => {
  if (!existsSync(join(options.root, 'index.html')))
    throw new Error(
      `WEB_ROOT=${options.root} has no index.html (build the web client: pnpm --filter @chat/web build)`,
    );
  await app.register(fastifyStatic, {
    root: options.root,
    wildcard: false,
    index: ['index.html'],
    setHeaders: (reply, path) => {
      if (path.includes('/assets/')) reply.header('cache-control', IMMUTABLE);
      else reply.header('cache-control', 'no-cache');
      if (path.endsWith('.html')) {
        reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
        reply.header('x-content-type-options', 'nosniff');
        reply.header('referrer-policy', 'no-referrer');
      }
    },
  });
  app.get('/config.json', { schema: { hide: true } }, async (request, reply): Promise<WebClientConfig> => {
    reply.header('cache-control', 'no-cache');
    return webClientConfigSchema.parse({
      gatewayUrl: options.gatewayUrl.replaceAll('{host}', request.hostname.replace(/:\d+$/, '')),
    });
  });
};
