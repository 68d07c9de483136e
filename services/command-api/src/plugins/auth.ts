import { ChatError } from '@chat/events';
import {
  createTokenVerifier,
  type Identity,
  InvalidTokenError,
  ROLE_ADMIN,
  ROLE_ANALYST,
} from '@chat/platform';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/** The authenticated caller, from a verified JWT (API.md §1). */
export type AuthUser = Pick<Identity, 'userId' | 'roles'>;

export type AuthOptions = {
  jwtSecret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** JWKS mode: only asymmetric tokens signed by keys of this JWKS (HS256 is then refused). */
  jwksUrl?: string | undefined;
};

export type TokenVerifier = (token: string) => Promise<AuthUser>;

const BEARER = /^Bearer\s+(\S+)\s*$/i;
const READS = new Set(['GET', 'HEAD']);

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer token and sets `request.user`, or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** onRequest hook for admin routes: `authenticate`, then 403 unless the token has role `admin`. */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** onRequest hook of the event export: `authenticate`, then 403 unless role `admin` or `analyst`. */
    requireExportReader: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    verifyToken: TokenVerifier;
  }
  interface FastifyRequest {
    /** Set by `app.authenticate`; only read it in routes that use that hook. */
    user: AuthUser;
  }
}

/**
 * Decorates `app.authenticate` (and `app.requireAdmin`, `app.verifyToken`). Route plugins opt in with
 * `{ onRequest: app.authenticate }` on a route or `app.addHook('onRequest', app.authenticate)`.
 */
export const authPlugin = fp<AuthOptions>(
  async (app, options) => {
    const verifyIdentity = createTokenVerifier({
      secret: options.jwtSecret,
      issuer: options.issuer,
      audience: options.audience,
      jwksUrl: options.jwksUrl,
    });
    const verify: TokenVerifier = async (token) => {
      try {
        return await verifyIdentity(token);
      } catch (err) {
        if (!(err instanceof InvalidTokenError)) throw err;
        throw new ChatError('unauthorized', 'invalid or expired token', undefined, { cause: err });
      }
    };
    app.decorateRequest('user', null as unknown as AuthUser);
    app.decorate('verifyToken', verify);
    const authenticate = async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const token = header ? BEARER.exec(header)?.[1] : undefined;
      try {
        if (!token) throw new ChatError('unauthorized', 'missing bearer token');
        request.user = await verify(token);
      } catch (err) {
        // Refused attempts count against the caller's IP, so guessing tokens is rate limited too.
        await app.rateLimits.takeAnonymous(request);
        throw err;
      }
      // An analyst token reads; it never writes, whatever else the token says.
      if (!READS.has(request.method) && request.user.roles.includes(ROLE_ANALYST)) {
        throw new ChatError('forbidden', 'the analyst role is read-only');
      }
    };
    app.decorate('authenticate', authenticate);
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      await authenticate(request);
      if (!request.user.roles.includes(ROLE_ADMIN)) throw new ChatError('forbidden', 'admin role required');
    });
    app.decorate('requireExportReader', async (request: FastifyRequest) => {
      await authenticate(request);
      const { roles } = request.user;
      if (!roles.includes(ROLE_ADMIN) && !roles.includes(ROLE_ANALYST)) {
        throw new ChatError('forbidden', 'admin or analyst role required');
      }
    });
  },
  { name: 'chat-auth', dependencies: ['chat-rate-limit'] },
);
