import { ChatError, USER_ID_RE } from '@chat/events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';

/** The authenticated caller, from a verified JWT (API.md §1). */
export type AuthUser = { userId: string; roles: string[] };

export type AuthOptions = {
  jwtSecret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Enables RS256/ES256 tokens signed by keys of this JWKS. */
  jwksUrl?: string | undefined;
};

const VERIFIED_TOKENS_KEPT = 10_000;

export type TokenVerifier = (token: string) => Promise<AuthUser>;

/** Verifies a bearer token; any failure (bad signature, alg:none, expired, wrong iss/aud) is a 401. */
export const createTokenVerifier = (options: AuthOptions): TokenVerifier => {
  const secret = new TextEncoder().encode(options.jwtSecret);
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256') return secret;
    if (!jwks) throw new Error(`algorithm ${header.alg} is not accepted`);
    return jwks(header, token);
  };
  const algorithms = jwks ? ['HS256', 'RS256', 'ES256'] : ['HS256'];
  // A client sends the same token with every command: remember verified tokens until they expire, so
  // the signature check (a WebCrypto job) runs once per token rather than once per request.
  const verified = new Map<string, { user: AuthUser; expiresAtMs: number }>();
  return async (token) => {
    const known = verified.get(token);
    if (known && known.expiresAtMs > Date.now()) return known.user;
    if (known) verified.delete(token);
    try {
      const { payload } = await jwtVerify(token, getKey, {
        algorithms,
        requiredClaims: ['sub', 'exp'],
        ...(options.issuer ? { issuer: options.issuer } : {}),
        ...(options.audience ? { audience: options.audience } : {}),
      });
      const userId = payload.sub;
      if (typeof userId !== 'string' || !USER_ID_RE.test(userId))
        throw new Error('sub is not a valid userId');
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((r): r is string => typeof r === 'string')
        : [];
      const user = { userId, roles };
      if (verified.size >= VERIFIED_TOKENS_KEPT) verified.clear();
      verified.set(token, { user, expiresAtMs: (payload.exp ?? 0) * 1000 });
      return user;
    } catch (err) {
      throw new ChatError('unauthorized', 'invalid or expired token', undefined, { cause: err });
    }
  };
};

const BEARER = /^Bearer\s+(\S+)\s*$/i;

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the bearer token and sets `request.user`, or answers 401. */
    authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** onRequest hook for admin routes: `authenticate`, then 403 unless the token has role `admin`. */
    requireAdmin: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
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
    const verify = createTokenVerifier(options);
    app.decorateRequest('user', null as unknown as AuthUser);
    app.decorate('verifyToken', verify);
    const authenticate = async (request: FastifyRequest) => {
      const header = request.headers.authorization;
      const token = header ? BEARER.exec(header)?.[1] : undefined;
      if (!token) throw new ChatError('unauthorized', 'missing bearer token');
      request.user = await verify(token);
    };
    app.decorate('authenticate', authenticate);
    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      await authenticate(request);
      if (!request.user.roles.includes('admin')) throw new ChatError('forbidden', 'admin role required');
    });
  },
  { name: 'chat-auth' },
);
