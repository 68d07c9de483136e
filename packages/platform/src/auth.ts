import { USER_ID_RE } from '@chat/events';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { createHs256Verifier } from './hs256.js';

/**
 * Roles a token may carry in its `roles` claim: `admin` unlocks the admin routes (API.md §2.5);
 * `analyst` reads the event export and can write nothing (every write route answers 403).
 */
export const ROLE_ADMIN = 'admin';
export const ROLE_ANALYST = 'analyst';

/** Who a verified token says the caller is (API.md §1). `exp` in epoch seconds. */
export type Identity = { userId: string; roles: string[]; exp: number };

export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

export type TokenVerifier = ((token: string) => Promise<Identity>) & {
  /**
   * The verdict without waiting, where one needs no I/O: always in HS256 mode, and in JWKS mode for a
   * token verified before (undefined otherwise: only the promise can tell). Throws InvalidTokenError.
   * The ws-gateway needs it to upgrade inside uWS's own upgrade callback (see its server.ts).
   */
  now(token: string): Identity | undefined;
};

export type TokenVerifierOptions = {
  /** HS256 secret; used only when `jwksUrl` is unset. */
  secret: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** JWKS mode: asymmetric keys from this endpoint, and nothing else. */
  jwksUrl?: string | undefined;
};

/** Clock leeway for `exp`/`nbf`/`iat` (API.md §4). */
export const TOKEN_CLOCK_LEEWAY_SECONDS = 5;

/**
 * Asymmetric algorithms accepted in JWKS mode. HS256 is never among them: the secret would then be a
 * second way in, and with the public development secret anyone could sign as anyone.
 */
export const JWKS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'EdDSA',
];

const VERIFIED_TOKENS_KEPT = 10_000;

/**
 * The one token check of every service (command-api and ws-gateway), so they can never disagree on
 * which tokens are valid: HS256 with the secret, or — when a JWKS URL is configured — only the
 * asymmetric algorithms above with keys from that endpoint. `alg: none`, a bad signature, expiry beyond
 * the leeway, a wrong `iss`/`aud` or a `sub` that is no userId all throw `InvalidTokenError`.
 */
export const createTokenVerifier = (options: TokenVerifierOptions): TokenVerifier => {
  if (!options.jwksUrl) {
    // HS256 is one synchronous HMAC with a key object made once (hs256.ts, jose's verdicts without its
    // WebCrypto key import and thread-pool job): cheaper than remembering tokens, and a reconnect storm
    // of fresh tokens would not hit such a cache anyway.
    const hs256 = createHs256Verifier(options.secret, {
      issuer: options.issuer,
      audience: options.audience,
      clockToleranceSeconds: TOKEN_CLOCK_LEEWAY_SECONDS,
    });
    const now = (token: string): Identity => {
      let payload: JWTPayload;
      try {
        payload = hs256(token);
      } catch (err) {
        throw new InvalidTokenError('invalid or expired token', { cause: err });
      }
      return identityOf(payload);
    };
    return Object.assign(async (token: string) => now(token), { now });
  }
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl));
  const verifyOptions = {
    algorithms: JWKS_ALGORITHMS,
    clockTolerance: TOKEN_CLOCK_LEEWAY_SECONDS,
    requiredClaims: ['sub', 'exp'],
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  // A client presents the same token with every request and on every reconnect: remember verified
  // tokens until they expire, so the signature check (a WebCrypto job) runs once per token.
  const verified = new Map<string, Identity>();
  const now = (token: string): Identity | undefined => {
    const known = verified.get(token);
    if (known && known.exp * 1000 > Date.now()) return known;
    if (known) verified.delete(token);
    return undefined;
  };
  const verify = async (token: string): Promise<Identity> => {
    const known = now(token);
    if (known) return known;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, jwks, verifyOptions));
    } catch (err) {
      throw new InvalidTokenError('invalid or expired token', { cause: err });
    }
    const identity = identityOf(payload);
    if (verified.size >= VERIFIED_TOKENS_KEPT) verified.clear();
    verified.set(token, identity);
    return identity;
  };
  return Object.assign(verify, { now });
};

const identityOf = (payload: JWTPayload): Identity => {
  const userId = payload.sub;
  if (typeof userId !== 'string' || !USER_ID_RE.test(userId)) {
    throw new InvalidTokenError('sub is not a valid userId');
  }
  const roles = Array.isArray(payload.roles)
    ? payload.roles.filter((r): r is string => typeof r === 'string')
    : [];
  return { userId, roles, exp: payload.exp ?? 0 };
};
