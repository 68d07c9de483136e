import {
  authEnv,
  authEnvChecks,
  baseEnv,
  dataKeyEnv,
  dataKeyEnvChecks,
  loadConfig,
  natsEnvChecks,
  portEnv,
} from '@chat/platform';
import { z } from 'zod';

export const gatewayEnv = z
  .object({
    ...baseEnv,
    ...dataKeyEnv,
    ...authEnv,
    PORT: portEnv(3001),
    HOST: z.string().default('0.0.0.0'),
    /** Stable name of this process in presence records; defaults to a random id per start. */
    GATEWAY_ID: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/)
      .optional(),
    /** Bytes queued for one socket before it is closed as a slow consumer (1013). */
    WS_MAX_BACKPRESSURE: z.coerce
      .number()
      .int()
      .min(16 * 1024)
      .default(512 * 1024),
    /** Seconds without traffic before uWS pings (and then drops) a socket. */
    WS_IDLE_TIMEOUT: z.coerce.number().int().min(8).max(960).default(60),
    WS_RATE_PER_SECOND: z.coerce.number().positive().default(20),
    WS_RATE_BURST: z.coerce.number().int().positive().default(40),
    /** `ping` frames have their own bucket (API.md: "not counted" against commands), generous but bounded. */
    WS_PING_RATE_PER_SECOND: z.coerce.number().positive().default(10),
    WS_PING_BURST: z.coerce.number().int().positive().default(20),
    /** Sockets one user may hold on one gateway; one more closes the oldest with 4409. */
    WS_MAX_SOCKETS_PER_USER: z.coerce.number().int().min(1).default(20),
    /**
     * A full garbage collection once this many connects have come and connects have stopped for a
     * second (memory/reducer.ts); 0 disables.
     */
    WS_GC_AFTER_CONNECTS: z.coerce.number().int().min(0).default(1000),
    /**
     * How long a feed waits at least for conversation events by NATS, once the relay's heads (or a
     * membership message) said they are stored, before it reads them from the event store (twice how
     * far NATS lately trails the heads when that is longer, at most 2 s); 0 reads at once.
     */
    LIVE_HINT_GRACE_MS: z.coerce.number().int().min(0).max(10_000).default(50),
    /** Time a command waits for the command-api's reply before the client gets `unavailable`. */
    COMMAND_TIMEOUT_MS: z.coerce.number().int().positive().default(5000),
  })
  .superRefine(natsEnvChecks)
  .superRefine(dataKeyEnvChecks)
  .superRefine(authEnvChecks);
export type GatewayConfig = z.infer<typeof gatewayEnv>;

export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<GatewayConfig> =>
  loadConfig(gatewayEnv, env);
