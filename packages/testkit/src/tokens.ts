import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/** The secret test services are configured with. */
export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123';

export type TokenOptions = {
  roles?: string[];
  /** Seconds from now; negative for an already expired token. Default one hour. */
  expiresIn?: number;
  secret?: string;
  issuer?: string;
  audience?: string;
};

export const signToken = async (userId: string, options: TokenOptions = {}): Promise<string> => {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ ...(options.roles ? { roles: options.roles } : {}) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresIn ?? 3600));
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret ?? TEST_JWT_SECRET));
};

/** An unsigned `alg: none` token, for proving it is refused. */
export const unsignedToken = (userId: string): string => {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: userId, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
};

export type JwksIssuer = {
  /** The JWKS endpoint to configure as `JWKS_URL`. */
  url: string;
  /** A token signed by one of the endpoint's keys (RS256 or ES256). */
  sign: (
    userId: string,
    options?: Omit<TokenOptions, 'secret'> & { alg?: 'RS256' | 'ES256' },
  ) => Promise<string>;
  /** A token naming the ES256 key's `kid` but signed by another key. */
  forge: (userId: string) => Promise<string>;
  close: () => Promise<void>;
};

/** An identity provider's JWKS endpoint on a loopback port, with an RS256 and an ES256 key. */
export const startJwksServer = async (): Promise<JwksIssuer> => {
  const keys = {
    RS256: await generateKeyPair('RS256'),
    ES256: await generateKeyPair('ES256'),
  };
  const jwks = {
    keys: await Promise.all(
      (['RS256', 'ES256'] as const).map(async (alg) => ({
        ...(await exportJWK(keys[alg].publicKey)),
        kid: `${alg}-key`,
        alg,
        use: 'sig',
      })),
    ),
  };
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(jwks));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const build = (userId: string, options: Omit<TokenOptions, 'secret'>, alg: 'RS256' | 'ES256') => {
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT({ ...(options.roles ? { roles: options.roles } : {}) })
      .setProtectedHeader({ alg, kid: `${alg}-key`, typ: 'JWT' })
      .setSubject(userId)
      .setIssuedAt(now)
      .setExpirationTime(now + (options.expiresIn ?? 3600));
    if (options.issuer) jwt = jwt.setIssuer(options.issuer);
    if (options.audience) jwt = jwt.setAudience(options.audience);
    return jwt;
  };
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    sign: (userId, options = {}) => {
      const alg = options.alg ?? 'ES256';
      return build(userId, options, alg).sign(keys[alg].privateKey);
    },
    forge: async (userId) => build(userId, {}, 'ES256').sign((await generateKeyPair('ES256')).privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

/**
 * The tokens a service in JWKS mode (with `JWT_ISSUER`/`JWT_AUDIENCE` set to these) must refuse and
 * accept, the same list for every service that checks tokens: they must never disagree.
 */
export const jwksTokenCases = async (
  idp: JwksIssuer,
  userId: string,
  claims: { issuer: string; audience: string },
  developmentSecret: string,
): Promise<{ refused: Record<string, string>; accepted: Record<string, string> }> => ({
  refused: {
    'HS256 with the development secret': await signToken(userId, { ...claims, secret: developmentSecret }),
    'HS256 with another secret': await signToken(userId, { ...claims, secret: TEST_JWT_SECRET }),
    'alg none': unsignedToken(userId),
    forged: await idp.forge(userId),
    'wrong audience': await idp.sign(userId, { issuer: claims.issuer, audience: 'other' }),
    'wrong issuer': await idp.sign(userId, { issuer: 'https://evil.test', audience: claims.audience }),
    'expired 10 s ago': await idp.sign(userId, { ...claims, expiresIn: -10 }),
  },
  accepted: {
    ES256: await idp.sign(userId, { ...claims, alg: 'ES256' }),
    RS256: await idp.sign(userId, { ...claims, alg: 'RS256' }),
    'expired 2 s ago (within the 5 s leeway)': await idp.sign(userId, { ...claims, expiresIn: -2 }),
  },
});
