import { createHmac } from 'node:crypto';
import { TEST_JWT_SECRET } from '@chat/testkit';
import fc from 'fast-check';
import { nastyJson, nastyKey, nastyString } from './arbitraries.js';
import { type Json, Obj, Raw, toJsonText } from './json.js';

// Tokens written by hand (header, payload and signature as bytes), so that every way a JWT can be
// wrong is reachable: algorithms, claims of the wrong type, repeated claims, unsigned, cut off.

export const CLAIMS = { issuer: 'https://idp.fuzz.test', audience: 'chat-fuzz' } as const;

/** What a service must do with a token: accept it, refuse it, or either (but every service alike). */
export type Verdict = 'accept' | 'refuse' | 'either';

export type TokenCase = {
  kind: string;
  verdict: Verdict;
  header: Json;
  payload: Json;
  secret: string;
  sign: 'hs256' | 'none' | 'garbage';
  garbage?: string;
  /** Who an accepted token is (RFC 7519 §4: of repeated claims, the last one counts). */
  expectedUser?: string;
};

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
const noResolve = () => {
  throw new Error('tokens name no known values');
};

export const tokenText = (c: TokenCase): string => {
  if (c.sign === 'garbage') return c.garbage ?? '';
  const head = `${b64(toJsonText(c.header, noResolve))}.${b64(toJsonText(c.payload, noResolve))}`;
  if (c.sign === 'none') return `${head}.`;
  return `${head}.${createHmac('sha256', c.secret).update(head).digest('base64url')}`;
};

const hs256 = new Obj([
  ['alg', 'HS256'],
  ['typ', 'JWT'],
]);

/** A time `offset` seconds from when the token is written (cases may run long after they were made). */
const fromNow = (offset: number) => new Raw(() => String(Math.floor(Date.now() / 1000) + offset));

const claims = (sub: Json, overrides: [string, Json][] = [], drop: string[] = []): Obj => {
  const base: [string, Json][] = [
    ['sub', sub],
    ['iat', fromNow(0)],
    ['exp', fromNow(3600)],
    ['iss', CLAIMS.issuer],
    ['aud', CLAIMS.audience],
  ];
  const kept = base.filter(([k]) => !drop.includes(k) && !overrides.some(([o]) => o === k));
  return new Obj([...kept, ...overrides]);
};

const BAD_SUBS = [
  '',
  ' ',
  'a b',
  'a'.repeat(65),
  'ü',
  '\u0000',
  'mallory\u0000',
  'mallory ',
  'mal/lory',
  '\ud800',
  '👍',
  'mal\nlory',
];

/** A token of `user` (a valid userId) for one of the ways a token can be right or wrong. */
export const tokenCase = (user: string): fc.Arbitrary<TokenCase> => {
  const ok = (
    kind: string,
    payload: fc.Arbitrary<Json> | Json,
    verdict: Verdict = 'accept',
    header: Json = hs256,
  ) =>
    (payload instanceof fc.Arbitrary ? payload : fc.constant(payload)).map(
      (p): TokenCase => ({ kind, verdict, header, payload: p, secret: TEST_JWT_SECRET, sign: 'hs256' }),
    );
  return fc.oneof(
    ok('valid', claims(user)),
    ok('admin role', claims(user, [['roles', ['admin']]])),
    // A real identity provider's token with many groups: a few KiB.
    ok(
      'valid, 6 KiB of roles',
      claims(user, [['roles', Array.from({ length: 300 }, (_, i) => `group-${i}-of-the-org`)]]),
    ),
    ok('expired within the 5 s leeway', claims(user, [['exp', fromNow(-2)]])),
    ok(
      'roles of any shape',
      nastyJson.map((roles) => claims(user, [['roles', roles]])),
    ),
    ok('audience list naming us', claims(user, [['aud', ['other', CLAIMS.audience]]])),
    ok(
      'extra claims',
      fc.array(fc.tuple(nastyKey, nastyJson), { maxLength: 3 }).map((extra) =>
        claims(
          user,
          extra.filter(([k]) => !['sub', 'exp', 'iat', 'nbf', 'iss', 'aud'].includes(k)),
        ),
      ),
    ),
    ok(
      'expired',
      fc.integer({ min: 10, max: 10_000_000 }).map((ago) => claims(user, [['exp', fromNow(-ago)]])),
      'refuse',
    ),
    ok('wrong audience', claims(user, [['aud', 'other']]), 'refuse'),
    ok('wrong issuer', claims(user, [['iss', 'https://evil.test']]), 'refuse'),
    ok('no audience', claims(user, [], ['aud']), 'refuse'),
    ok('no issuer', claims(user, [], ['iss']), 'refuse'),
    ok('no sub', claims(user, [], ['sub']), 'refuse'),
    ok('sub in __proto__', claims(user, [['__proto__', new Obj([['sub', 'victim-a']])]], ['sub']), 'refuse'),
    ok(
      'sub with illegal characters',
      fc
        .oneof(
          fc.constantFrom(...BAD_SUBS),
          nastyString.filter((s) => !/^[A-Za-z0-9_.:@-]{1,64}$/.test(s)),
        )
        .map((s) => claims(s)),
      'refuse',
    ),
    ok(
      'sub not a string',
      fc.constantFrom<Json>(123, null, [user], new Obj([['id', user]]), true).map((s) => claims(s)),
      'refuse',
    ),
    ok('no exp', claims(user, [], ['exp']), 'refuse'),
    ok(
      'exp as a string',
      claims(user, [['exp', new Raw(() => JSON.stringify(String(Math.floor(Date.now() / 1000) + 3600)))]]),
      'refuse',
    ),
    ok('not yet valid', claims(user, [['nbf', fromNow(3600)]]), 'refuse'),
    ok('exp 1e400', claims(user, [['exp', new Raw('1e400')]]), 'either'),
    ok(
      'exp fractional',
      claims(user, [['exp', new Raw(() => String(Math.floor(Date.now() / 1000) + 3600.5))]]),
      'either',
    ),
    ok('repeated sub', new Obj([...claims(user).pairs, ['sub', 'victim-a']]), 'either').map((c) => ({
      ...c,
      expectedUser: 'victim-a',
    })),
    ok(
      'HS512 header',
      claims(user),
      'refuse',
      new Obj([
        ['alg', 'HS512'],
        ['typ', 'JWT'],
      ]),
    ),
    ok(
      'RS256 header on an HMAC',
      claims(user),
      'refuse',
      new Obj([
        ['alg', 'RS256'],
        ['typ', 'JWT'],
      ]),
    ),
    nastyString
      .filter((alg) => alg !== 'HS256')
      .map(
        (alg): TokenCase => ({
          kind: 'header of any shape',
          verdict: 'refuse',
          header: new Obj([['alg', alg]]),
          payload: claims(user),
          secret: TEST_JWT_SECRET,
          sign: 'hs256',
        }),
      ),
    fc.constant<TokenCase>({
      kind: 'wrong signature',
      verdict: 'refuse',
      header: hs256,
      payload: claims(user),
      secret: 'another-secret-another-secret-012345',
      sign: 'hs256',
    }),
    fc.constant<TokenCase>({
      kind: 'alg none',
      verdict: 'refuse',
      header: new Obj([
        ['alg', 'none'],
        ['typ', 'JWT'],
      ]),
      payload: claims(user),
      secret: '',
      sign: 'none',
    }),
    fc.constant<TokenCase>({
      kind: 'HS256 header, no signature',
      verdict: 'refuse',
      header: hs256,
      payload: claims(user),
      secret: '',
      sign: 'none',
    }),
    fc
      .oneof(
        nastyString,
        fc.constantFrom(
          '',
          '.',
          '..',
          'a.b.c',
          'Bearer',
          'null',
          `${b64('{"alg":"HS256"}')}..`,
          'e30.e30.e30',
        ),
        fc.base64String({ maxLength: 200 }),
      )
      .map(
        (garbage): TokenCase => ({
          kind: 'garbage',
          verdict: 'refuse',
          header: null,
          payload: null,
          secret: '',
          sign: 'garbage',
          garbage,
        }),
      ),
  );
};

/** A valid token of `user` with these claims merged in (for the fuzzer's own legitimate calls). */
export const validToken = (user: string, extra: [string, Json][] = []): string =>
  tokenText({
    kind: 'valid',
    verdict: 'accept',
    header: hs256,
    payload: claims(user, extra),
    secret: TEST_JWT_SECRET,
    sign: 'hs256',
  });
