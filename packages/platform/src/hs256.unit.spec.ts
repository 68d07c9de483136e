import { createHmac } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { createHs256Verifier } from './hs256.js';

// The synchronous HS256 check must give jose's verdict (HS256 pinned, sub and exp required, 5 s leeway)
// on every token: valid, expired, early, forged, re-algorithmed or malformed.

const SECRET = 'unit-secret-unit-secret-unit-secret';
const key = new TextEncoder().encode(SECRET);
const NOW = 1_800_000_000; // epoch seconds, fixed
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
/** A token with any header and payload, signed (HS256) with `secret` over what it says. */
const forge = (header: unknown, payload: unknown, secret = SECRET) => {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
};
const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', ...header }).sign(key);

const corpus = async (): Promise<[string, string][]> => {
  const ok = { sub: 'alice', exp: NOW + 60, iat: NOW };
  const valid = await sign(ok);
  return [
    ['valid', valid],
    ['valid with typ and roles', await sign({ ...ok, roles: ['admin'] }, { typ: 'JWT' })],
    ['expired beyond the leeway', await sign({ ...ok, exp: NOW - 6 })],
    ['expired within the leeway', await sign({ ...ok, exp: NOW - 4 })],
    ['expires exactly at the leeway', await sign({ ...ok, exp: NOW - 5 })],
    ['not yet valid beyond the leeway', await sign({ ...ok, nbf: NOW + 6 })],
    ['not yet valid within the leeway', await sign({ ...ok, nbf: NOW + 5 })],
    ['no exp', await sign({ sub: 'alice' })],
    ['no sub', await sign({ exp: NOW + 60 })],
    ['string exp', forge({ alg: 'HS256' }, { sub: 'alice', exp: String(NOW + 60) })],
    ['string iat', forge({ alg: 'HS256' }, { ...ok, iat: 'yesterday' })],
    ['string nbf', forge({ alg: 'HS256' }, { ...ok, nbf: 'now' })],
    ['wrong secret', forge({ alg: 'HS256' }, ok, 'another-secret-another-secret-xx')],
    ['alg none', `${b64({ alg: 'none' })}.${b64(ok)}.`],
    ['alg HS512 header, HS256 signature', forge({ alg: 'HS512' }, ok)],
    ['no alg', forge({}, ok)],
    ['crit header', forge({ alg: 'HS256', crit: ['exp'], exp: 1 }, ok)],
    ['payload not an object', forge({ alg: 'HS256' }, [1, 2])],
    ['header not JSON', forge('{nope', ok)],
    ['payload tampered', `${valid.split('.')[0]}.${b64({ ...ok, sub: 'mallory' })}.${valid.split('.')[2]}`],
    ['signature truncated', valid.slice(0, -3)],
    ['two segments', valid.split('.').slice(0, 2).join('.')],
    ['four segments', `${valid}.x`],
    ['empty', ''],
    ['garbage', 'garbage'],
    ['bad base64 in payload', `${valid.split('.')[0]}.@@@.${valid.split('.')[2]}`],
  ];
};

const joseVerdict = async (token: string, options: { issuer?: string; audience?: string } = {}) =>
  jwtVerify(token, key, {
    algorithms: ['HS256'],
    clockTolerance: 5,
    requiredClaims: ['sub', 'exp'],
    currentDate: new Date(NOW * 1000),
    ...options,
  }).then(
    (r) => `ok ${r.payload.sub}`,
    () => 'refused',
  );
const ourVerdict = (token: string, options: { issuer?: string; audience?: string } = {}) => {
  try {
    const payload = createHs256Verifier(SECRET, { clockToleranceSeconds: 5, ...options })(token, NOW * 1000);
    return `ok ${String(payload.sub)}`;
  } catch {
    return 'refused';
  }
};

describe('createHs256Verifier', () => {
  it('gives the same verdicts with one verifier reused over the corpus twice (remembered headers)', async () => {
    const cases = await corpus();
    const verify = createHs256Verifier(SECRET, { clockToleranceSeconds: 5 });
    const verdict = (token: string) => {
      try {
        return `ok ${String(verify(token, NOW * 1000).sub)}`;
      } catch {
        return 'refused';
      }
    };
    const theirs = await Promise.all(cases.map(async ([name, token]) => [name, await joseVerdict(token)]));
    for (let pass = 0; pass < 2; pass++) {
      expect(cases.map(([name, token]) => [name, verdict(token)])).toEqual(theirs);
    }
  });

  it("gives jose's verdict on every token of the corpus", async () => {
    const cases = await corpus();
    const ours = cases.map(([name, token]) => [name, ourVerdict(token)]);
    const theirs = await Promise.all(cases.map(async ([name, token]) => [name, await joseVerdict(token)]));
    expect(ours).toEqual(theirs);
    expect(ours.filter(([, v]) => v?.startsWith('ok')).map(([name]) => name)).toEqual([
      'valid',
      'valid with typ and roles',
      'expired within the leeway',
      'not yet valid within the leeway',
    ]);
  });

  it("gives jose's verdict on issuer and audience", async () => {
    const options = { issuer: 'https://id.example.com', audience: 'chat' };
    const base = { sub: 'alice', exp: NOW + 60 };
    const tokens = [
      await sign({ ...base, iss: options.issuer, aud: options.audience }),
      await sign({ ...base, iss: options.issuer, aud: ['other', options.audience] }),
      await sign({ ...base, iss: options.issuer, aud: 'other' }),
      await sign({ ...base, iss: 'https://evil.example.com', aud: options.audience }),
      await sign({ ...base, aud: options.audience }),
      await sign({ ...base, iss: options.issuer }),
    ];
    const ours = tokens.map((t) => ourVerdict(t, options));
    const theirs = await Promise.all(tokens.map((t) => joseVerdict(t, options)));
    expect(ours).toEqual(theirs);
    expect(ours).toEqual(['ok alice', 'ok alice', 'refused', 'refused', 'refused', 'refused']);
  });
});
