import {
  authEnv,
  authEnvChecks,
  baseEnv,
  dataKeyEnv,
  dataKeyEnvChecks,
  livePublishEnv,
  livePublishEnvChecks,
  loadConfig,
  natsEnvChecks,
  portEnv,
} from '@chat/platform';
import { z } from 'zod';

export const configSchema = z
  .object({
    ...baseEnv,
    ...dataKeyEnv,
    ...authEnv,
    ...livePublishEnv,
    PORT: portEnv(3000),
    HOST: z.string().default('0.0.0.0'),
    /**
     * Which proxies' X-Forwarded-For to believe for the client IP (per-IP limits, logs): unset trusts
     * none, `true` all, a number that many hops, else a comma list of addresses/CIDRs.
     */
    TRUST_PROXY: z
      // Parsed values pass through again unchanged (tests re-parse a parsed config with overrides).
      .union([z.string(), z.boolean(), z.number(), z.array(z.string())])
      .optional()
      .transform((v): boolean | number | string[] => {
        if (typeof v !== 'string') return v ?? false;
        if (v === '' || v === 'false') return false;
        if (v === 'true') return true;
        if (/^\d+$/.test(v)) return Number(v);
        return v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      }),
    /** Rate-limit window; each limit below counts requests per window (0 turns that limit off). */
    RATE_LIMIT_WINDOW_MS: z.coerce.number().int().min(100).default(1000),
    /** Commands per user (HTTP and NATS together: a WebSocket client draws from the same budget). */
    RATE_LIMIT_COMMANDS: z.coerce.number().int().min(0).default(200),
    /** Queries (GET routes, `minPosition` waits included) per user. */
    RATE_LIMIT_QUERIES: z.coerce.number().int().min(0).default(200),
    /** Requests without a valid token (refused ones, ops and docs routes) per client IP. */
    RATE_LIMIT_ANONYMOUS: z.coerce.number().int().min(0).default(100),
    /** Conversations whose command-side state is kept in memory. */
    COMMAND_CACHE_CONVERSATIONS: z.coerce.number().int().min(1).default(10_000),
    /** NATS queue group shared by every command-api instance. */
    COMMAND_QUEUE_GROUP: z.string().default('command-api'),
    DB_POOL_SIZE: z.coerce.number().int().min(1).default(10),
    /** The built web client (apps/web/dist) to serve at `/`; unset serves none. */
    WEB_ROOT: z
      .string()
      .optional()
      .transform((v) => v || undefined),
    /** Where the web client's WebSocket connects; `{host}` is the host name the page was loaded from. */
    WEB_GATEWAY_URL: z.string().min(1).default('ws://{host}:3001/v1/ws'),
  })
  .superRefine(natsEnvChecks)
  .superRefine(livePublishEnvChecks)
  .superRefine(dataKeyEnvChecks)
  .superRefine(authEnvChecks);

export type AppConfig = z.infer<typeof configSchema>;

export const readConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<AppConfig> =>
  loadConfig(configSchema, env);
