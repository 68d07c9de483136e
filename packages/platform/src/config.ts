import { z } from 'zod';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses `env` with a zod schema once, at start-up, and freezes the result. A bad or missing variable
 * fails with a message naming it, so an operator sees what to fix instead of a stack trace later.
 */
export const loadConfig = <S extends z.ZodType>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): Readonly<z.infer<S>> => {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return Object.freeze(parsed.data);
};

export const DEV_JWT_SECRET = 'dev-secret-change-me-dev-secret-change-me';

/** Variables every service shares. Services extend this with their own. */
export const baseEnv = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/chat'),
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_SUBJECT_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'must be NATS subject tokens')
    .default('chat'),
  EVENTSTORE_URL: z
    .string()
    .optional()
    .refine((v) => v === undefined || v === '' || v.startsWith('esdb://') || v.startsWith('kurrentdb://'), {
      message: 'must be esdb://… (leave unset for the Postgres event store)',
    }),
};

export const authEnv = {
  JWT_SECRET: z.string().min(16, 'must be at least 16 characters').default(DEV_JWT_SECRET),
  JWT_ISSUER: z.string().optional(),
  JWT_AUDIENCE: z.string().optional(),
  JWKS_URL: z.string().url().optional(),
  ALLOWED_ORIGINS: z
    .string()
    .optional()
    .transform((v) =>
      v === undefined
        ? undefined
        : v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean),
    ),
};

/** Refuses production start-up on development defaults (DESIGN.md "Operations"). */
export const assertProductionSafe = (config: {
  NODE_ENV: string;
  JWT_SECRET?: string;
  JWKS_URL?: string | undefined;
  ALLOWED_ORIGINS?: string[] | undefined;
}): void => {
  if (config.NODE_ENV !== 'production') return;
  if (config.JWT_SECRET === DEV_JWT_SECRET && !config.JWKS_URL) {
    throw new ConfigError(
      'invalid configuration:\n  JWT_SECRET: the development secret is refused in production',
    );
  }
  if ('ALLOWED_ORIGINS' in config && !config.ALLOWED_ORIGINS?.length) {
    throw new ConfigError('invalid configuration:\n  ALLOWED_ORIGINS: required in production');
  }
};

export const portEnv = (defaultPort: number) =>
  z.coerce.number().int().min(0).max(65535).default(defaultPort);

/** `NATS_URL` may name a cluster as a comma list; the client wants one entry per server. */
export const natsServers = (natsUrl: string): string[] =>
  natsUrl
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
