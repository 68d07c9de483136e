import { USER_ID_RE } from '@chat/events';
import { createRemoteJWKSet, type JWTVerifyGetKey, jwtVerify } from 'jose';

export type Identity = { userId: string; roles: string[] /** epoch seconds */; exp: number };

export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

export type TokenVerifier = (token: string) => Promise<Identity>;

/** HS256 with `JWT_SECRET`, or RS256/ES256 keys from `JWKS_URL`; 5 s clock leeway (API.md §1, §4). */
export const createTokenVerifier = (options: {
  secret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  jwksUrl?: string | undefined;
}): TokenVerifier => {
  const secret = new TextEncoder().encode(options.secret);
  const jwks: JWTVerifyGetKey | undefined = options.jwksUrl
    ? createRemoteJWKSet(new URL(options.jwksUrl))
    : undefined;
  const verifyOptions = {
    clockTolerance: 5,
    requiredClaims: ['sub', 'exp'],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  return async (token) => {
    try {
      const { payload } = jwks
        ? await jwtVerify(token, jwks, { ...verifyOptions, algorithms: ['RS256', 'ES256'] })
        : await jwtVerify(token, secret, { ...verifyOptions, algorithms: ['HS256'] });
      const userId = payload.sub;
      if (typeof userId !== 'string' || !USER_ID_RE.test(userId)) throw new InvalidTokenError('bad subject');
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((r): r is string => typeof r === 'string')
        : [];
      return { userId, roles, exp: payload.exp ?? 0 };
    } catch (err) {
      if (err instanceof InvalidTokenError) throw err;
      throw new InvalidTokenError('invalid token', { cause: err });
    }
  };
};

const BEARER_PREFIX = 'bearer.';

/**
 * The token of an upgrade request: `?access_token=` or the `bearer.<jwt>` entry of
 * `Sec-WebSocket-Protocol` (API.md §1). Also says which subprotocol to select in the answer.
 */
export const tokenFromUpgrade = (
  query: string,
  protocolHeader: string,
): { token: string | undefined; protocol: string } => {
  const offered = protocolHeader
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bearer = offered.find((p) => p.startsWith(BEARER_PREFIX))?.slice(BEARER_PREFIX.length);
  const protocol = offered.includes('chat.v1') ? 'chat.v1' : '';
  const fromQuery = new URLSearchParams(query).get('access_token') ?? undefined;
  return { token: fromQuery || bearer || undefined, protocol };
};

/** Browsers send `Origin`; non-browser clients usually do not and are not subject to the list. */
export const originAllowed = (origin: string, allowed: readonly string[] | undefined): boolean =>
  !allowed || allowed.length === 0 || origin === '' || allowed.includes(origin);
