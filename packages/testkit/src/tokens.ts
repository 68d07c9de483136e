import { SignJWT } from 'jose';

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
