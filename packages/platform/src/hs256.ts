import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

export type Hs256Options = {
  issuer?: string | undefined;
  audience?: string | undefined;
  /** Leeway for `exp` and `nbf`, in seconds. */
  clockToleranceSeconds: number;
};

export class Hs256VerificationError extends Error {
  override readonly name = 'Hs256VerificationError';
}

const fail = (reason: string): never => {
  throw new Hs256VerificationError(reason);
};

const MAX_REMEMBERED_HEADERS = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const decodeJson = (segment: string): Record<string, unknown> => {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
  } catch {
    return fail('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not a JSON object');
  return value as Record<string, unknown>;
};

/**
 * HS256 JWT verification in one synchronous HMAC with a key object made once. It checks what jose's
 * `jwtVerify` checks for HS256 with required `sub` and `exp` (same verdicts; the unit test compares the
 * two on a corpus): `alg` pinned to HS256, no `crit` extensions, the signature (timing-safe), `exp`,
 * `nbf` and `iat` numeric, `exp`/`nbf` with the leeway, `iss`/`aud` when configured. jose goes through
 * WebCrypto — a key import and a thread-pool job per token — which was most of a connect's token cost.
 * Returns the payload; throws Hs256VerificationError.
 */
export const createHs256Verifier = (secret: string, options: Hs256Options) => {
  const key: KeyObject = createSecretKey(Buffer.from(secret, 'utf8'));
  const tolerance = options.clockToleranceSeconds;
  // A header's verdict depends on its text alone, and an issuer signs every token with the same header:
  // the few accepted header segments are remembered, so most tokens skip its base64 and JSON decoding.
  const acceptedHeaders = new Set<string>();
  return (token: string, nowMs = Date.now()): Record<string, unknown> => {
    const firstDot = token.indexOf('.');
    const lastDot = token.lastIndexOf('.');
    if (firstDot <= 0 || lastDot === firstDot || token.indexOf('.', firstDot + 1) !== lastDot) {
      fail('not a compact JWS');
    }
    const headerPart = token.slice(0, firstDot);
    const payloadPart = token.slice(firstDot + 1, lastDot);
    const signaturePart = token.slice(lastDot + 1);
    if (!BASE64URL.test(headerPart) || !BASE64URL.test(payloadPart) || !BASE64URL.test(signaturePart)) {
      fail('not base64url');
    }
    if (!acceptedHeaders.has(headerPart)) {
      const header = decodeJson(headerPart);
      if (header.alg !== 'HS256') fail('algorithm not allowed');
      if (header.crit !== undefined) fail('crit extensions not supported');
      if (acceptedHeaders.size < MAX_REMEMBERED_HEADERS) acceptedHeaders.add(headerPart);
    }
    const signature = Buffer.from(signaturePart, 'base64url');
    const expected = createHmac('sha256', key).update(token.slice(0, lastDot)).digest();
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) fail('bad signature');
    const payload = decodeJson(payloadPart);
    const now = Math.floor(nowMs / 1000);
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      if (payload[claim] !== undefined && typeof payload[claim] !== 'number') fail(`${claim} not numeric`);
    }
    if (payload.sub === undefined || payload.exp === undefined) fail('sub and exp required');
    if ((payload.exp as number) <= now - tolerance) fail('expired');
    if (payload.nbf !== undefined && (payload.nbf as number) > now + tolerance) fail('not active yet');
    if (options.issuer !== undefined && payload.iss !== options.issuer) fail('wrong issuer');
    if (options.audience !== undefined) {
      const aud = payload.aud;
      const ok =
        typeof aud === 'string'
          ? aud === options.audience
          : Array.isArray(aud) && aud.includes(options.audience);
      if (!ok) fail('wrong audience');
    }
    return payload;
  };
};
