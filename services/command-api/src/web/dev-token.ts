import { devShapes } from '@chat/events';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SignJWT } from 'jose';
import { routeOf } from '../plugins/route-schema.js';

export type DevTokenOptions = {
  jwtSecret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  ttlSeconds?: number;
};

export const DEV_TOKEN_TTL_SECONDS = 3600;

/**
 * `POST /v1/dev/token`: a token for any user id, so a person can sign in to the web client without an
 * identity provider. Development only — app.ts registers it only when NODE_ENV is not `production` and
 * tokens are HS256 (in JWKS mode the services accept no token this service could sign). Rate limited
 * per client IP like every unauthenticated request.
 */
export const devTokenRoutes: FastifyPluginAsyncZod<DevTokenOptions> = async (app, options) => {
  const key = new TextEncoder().encode(options.jwtSecret);
  const ttl = options.ttlSeconds ?? DEV_TOKEN_TTL_SECONDS;
  app.log.warn('development token route enabled: anyone can sign in as any user (POST /v1/dev/token)');
  app.route({
    ...routeOf(devShapes.devToken),
    handler: async (request) => {
      const { userId } = request.body;
      const now = Math.floor(app.clock.now().getTime() / 1000);
      let jwt = new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(userId)
        .setIssuedAt(now)
        .setExpirationTime(now + ttl);
      if (options.issuer) jwt = jwt.setIssuer(options.issuer);
      if (options.audience) jwt = jwt.setAudience(options.audience);
      return { token: await jwt.sign(key), userId, expiresAt: new Date((now + ttl) * 1000).toISOString() };
    },
  });
};
