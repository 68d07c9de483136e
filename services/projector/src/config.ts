import {
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

const int = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);

export const projectorEnv = z
  .object({
    ...baseEnv,
    ...dataKeyEnv,
    ...livePublishEnv,
    PORT: portEnv(3002),
    HOST: z.string().default('127.0.0.1'),
    /** Largest batch per read-model transaction (reached while catching up). */
    PROJECTOR_BATCH_SIZE: int(1, 2000),
    /** Wait after a partial batch so the next gathers more: fewer transactions, ≤ this much more lag. */
    PROJECTOR_LINGER_MS: int(0, 20),
    LEADER_RETRY_MS: int(50, 1000),
    /** Migrations are a separate step (`pnpm migrate`); `true` also runs the read models' at start. */
    MIGRATE_ON_START: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    /**
     * The relay's wait after a partial batch. Unset: 20 ms when the command-api publishes conversation
     * events (the relay then carries receipts, typing, membership news and heads), 0 when the relay does.
     */
    RELAY_LINGER_MS: z.coerce.number().int().min(0).optional(),
    /** `false` runs only the projection (e.g. when the relay is deployed on its own). */
    RELAY_ENABLED: z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
  })
  .superRefine(natsEnvChecks)
  .superRefine(livePublishEnvChecks)
  .superRefine(dataKeyEnvChecks);

export type ProjectorConfig = z.infer<typeof projectorEnv>;

export const loadProjectorConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<ProjectorConfig> =>
  loadConfig(projectorEnv, env);
