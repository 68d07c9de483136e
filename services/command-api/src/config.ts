import { authEnv, authEnvChecks, baseEnv, loadConfig, natsEnvChecks, portEnv } from '@chat/platform';
import { z } from 'zod';

export const configSchema = z
  .object({
    ...baseEnv,
    ...authEnv,
    PORT: portEnv(3000),
    HOST: z.string().default('0.0.0.0'),
    /** Per-user command rate (HTTP and NATS together); 0 disables the limit. */
    COMMAND_RATE_PER_SEC: z.coerce.number().min(0).default(200),
    /** Commands a user may send at once before the rate applies. */
    COMMAND_RATE_BURST: z.coerce.number().int().min(1).default(500),
    /** Conversations whose command-side state is kept in memory. */
    COMMAND_CACHE_CONVERSATIONS: z.coerce.number().int().min(1).default(10_000),
    /** NATS queue group shared by every command-api instance. */
    COMMAND_QUEUE_GROUP: z.string().default('command-api'),
    DB_POOL_SIZE: z.coerce.number().int().min(1).default(10),
  })
  .superRefine(natsEnvChecks)
  .superRefine(authEnvChecks);

export type AppConfig = z.infer<typeof configSchema>;

export const readConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<AppConfig> =>
  loadConfig(configSchema, env);
