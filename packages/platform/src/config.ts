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

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === '' ? undefined : v));

/** How a service proves who it is to NATS, and TLS (see infra/nats/ for the server side). */
const natsAuthEnv = {
  NATS_USER: optionalText,
  NATS_PASSWORD: optionalText,
  NATS_TOKEN: optionalText,
  /** A `.creds` file (user JWT + NKEY seed) of a decentralised-auth NATS deployment. */
  NATS_CREDS_FILE: optionalText,
  NATS_TLS_CA_FILE: optionalText,
  NATS_TLS_CERT_FILE: optionalText,
  NATS_TLS_KEY_FILE: optionalText,
};

/** Variables every service shares. Services extend this with their own. */
export const baseEnv = {
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/chat'),
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  ...natsAuthEnv,
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

/**
 * Who publishes a conversation's events to NATS as they are stored (LIVE_PUBLISH_FROM; the command-api
 * and the projector must agree): `command-api`, right after the append commits, and the relay only a
 * `heads` message per batch (subjects.heads), from which gateways fill what never reached them from the
 * store; or `relay`, every event from the log. Unset: `command-api` on the Postgres event store,
 * `relay` on EventStoreDB (whose append does not answer with the events' time).
 */
export const livePublishEnv = {
  LIVE_PUBLISH_FROM: z.enum(['command-api', 'relay']).optional(),
};
export type LivePublisher = 'command-api' | 'relay';
type LivePublishConfig = {
  LIVE_PUBLISH_FROM?: LivePublisher | undefined;
  EVENTSTORE_URL?: string | undefined;
};
/** `command-api` needs the Postgres store: an EventStoreDB append does not answer with the events' time. */
export const livePublishEnvChecks = (config: LivePublishConfig, ctx: z.RefinementCtx): void => {
  if (config.LIVE_PUBLISH_FROM === 'command-api' && config.EVENTSTORE_URL)
    ctx.addIssue({
      code: 'custom',
      path: ['LIVE_PUBLISH_FROM'],
      message: 'command-api needs the Postgres event store (unset EVENTSTORE_URL, or use relay)',
    });
};
export const livePublisher = (config: LivePublishConfig): LivePublisher =>
  config.LIVE_PUBLISH_FROM ?? (config.EVENTSTORE_URL ? 'relay' : 'command-api');

/**
 * The development master key of personal-data keys (crypto-shredding, README "Erasure"): 32 bytes,
 * base64. Refused in production, like the development JWT secret.
 */
export const DEV_DATA_KEY_MASTER = 'ZGV2LWRhdGEta2V5LW1hc3Rlci1jaGFuZ2UtbWUtISE=';

/** 32 bytes as base64 (44 characters) or as 64 hex digits; anything else is refused. */
export const parseDataKeyMaster = (value: string): Buffer | null => {
  const bytes = /^[0-9a-fA-F]{64}$/.test(value)
    ? Buffer.from(value, 'hex')
    : /^[A-Za-z0-9+/]{43}=$/.test(value)
      ? Buffer.from(value, 'base64')
      : null;
  return bytes?.length === 32 ? bytes : null;
};

/** The master key that wraps every user's data key (DATA_KEY_MASTER). */
export const dataKeyEnv = {
  DATA_KEY_MASTER: z
    .string()
    .default(DEV_DATA_KEY_MASTER)
    .refine((v) => parseDataKeyMaster(v) !== null, {
      message: 'must be 32 bytes, as base64 (44 characters) or 64 hex digits',
    }),
};

/** Production refuses an unset DATA_KEY_MASTER (the development default). */
export const dataKeyEnvChecks = (
  config: { NODE_ENV: string; DATA_KEY_MASTER: string },
  ctx: z.RefinementCtx,
): void => {
  if (config.NODE_ENV !== 'production') return;
  const master = parseDataKeyMaster(config.DATA_KEY_MASTER);
  if (master === null || master.equals(parseDataKeyMaster(DEV_DATA_KEY_MASTER) as Buffer))
    ctx.addIssue({
      code: 'custom',
      path: ['DATA_KEY_MASTER'],
      message: 'the development master key is refused in production (set DATA_KEY_MASTER)',
    });
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

/**
 * Production refusals of every service that checks tokens (DESIGN.md "Operations"), as a schema check
 * so `loadConfig` applies them: the development secret never signs a token in production, and browser
 * origins must be listed. Keys are read with their defaults applied; an unset optional key is absent.
 */
export const authEnvChecks = (
  config: {
    NODE_ENV: string;
    JWT_SECRET: string;
    JWKS_URL?: string | undefined;
    ALLOWED_ORIGINS?: string[] | undefined;
  },
  ctx: z.RefinementCtx,
): void => {
  if (config.NODE_ENV !== 'production') return;
  // In JWKS mode the secret verifies nothing (only asymmetric tokens are accepted), so it may stay unset.
  if (config.JWT_SECRET === DEV_JWT_SECRET && !config.JWKS_URL)
    ctx.addIssue({
      code: 'custom',
      path: ['JWT_SECRET'],
      message: 'the development secret is refused in production (set JWT_SECRET or JWKS_URL)',
    });
  if (!config.ALLOWED_ORIGINS?.length)
    ctx.addIssue({ code: 'custom', path: ['ALLOWED_ORIGINS'], message: 'required in production' });
};

export const portEnv = (defaultPort: number) =>
  z.coerce.number().int().min(0).max(65535).default(defaultPort);

/** One way of authenticating to NATS at a time, each complete. Every service adds this check. */
export const natsEnvChecks = (
  config: { [K in keyof typeof natsAuthEnv]?: string | undefined },
  ctx: z.RefinementCtx,
): void => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
  if (config.NATS_USER && !config.NATS_PASSWORD) issue('NATS_PASSWORD', 'required with NATS_USER');
  if (config.NATS_PASSWORD && !config.NATS_USER) issue('NATS_USER', 'required with NATS_PASSWORD');
  const ways = [config.NATS_USER, config.NATS_TOKEN, config.NATS_CREDS_FILE].filter(Boolean).length;
  if (ways > 1)
    issue('NATS_CREDS_FILE', 'set only one of NATS_USER/NATS_PASSWORD, NATS_TOKEN and NATS_CREDS_FILE');
  if (Boolean(config.NATS_TLS_CERT_FILE) !== Boolean(config.NATS_TLS_KEY_FILE))
    issue('NATS_TLS_KEY_FILE', 'NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together');
};

/** `NATS_URL` may name a cluster as a comma list; the client wants one entry per server. */
export const natsServers = (natsUrl: string): string[] =>
  natsUrl
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
