import { z } from 'zod';
import { noParams } from './commands.js';
import { instantSchema, userIdSchema } from './ids.js';
import type { RouteShape } from './routes.js';

// What the command-api serves for the web client (apps/web): its runtime configuration, and the
// development-only token route (registered only when NODE_ENV is not `production`).

/** `GET /config.json` next to the web client's files: where its WebSocket connects. */
export const webClientConfigSchema = z.object({ gatewayUrl: z.string() });
export type WebClientConfig = z.output<typeof webClientConfigSchema>;

export const devTokenBody = z.strictObject({ userId: userIdSchema });
export type DevTokenBody = z.infer<typeof devTokenBody>;

export const devTokenResult = z.object({
  /** An HS256 token signed with the service's JWT_SECRET, accepted by the command-api and ws-gateway. */
  token: z.string(),
  userId: userIdSchema,
  expiresAt: instantSchema,
});

export const devShapes = {
  devToken: {
    name: 'devToken',
    method: 'POST',
    path: '/v1/dev/token',
    summary:
      'DEVELOPMENT ONLY (absent when NODE_ENV=production or in JWKS mode): a token for any user id, to sign in to the web client without an identity provider',
    tags: ['development'],
    params: noParams,
    body: devTokenBody,
    responses: { 200: devTokenResult.describe('a token for the user, valid for an hour') },
    errors: ['validation_failed', 'payload_too_large', 'rate_limited'],
  },
} as const satisfies Record<string, RouteShape>;

export type DevShapes = typeof devShapes;
