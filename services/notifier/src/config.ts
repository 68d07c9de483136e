import { baseEnv, dataKeyEnv, dataKeyEnvChecks, loadConfig, natsEnvChecks, portEnv } from '@chat/platform';
import { z } from 'zod';
import { secretProblem } from './signature.js';

const int = (min: number, fallback: number) => z.coerce.number().int().min(min).default(fallback);

export const notifierEnv = z
  .object({
    ...baseEnv,
    ...dataKeyEnv,
    PORT: portEnv(3003),
    HOST: z.string().default('127.0.0.1'),
    NOTIFIER_BATCH_SIZE: int(1, 500),
    /** Wait after a partial batch so the next gathers more: fewer transactions, ≤ this much more lag. */
    NOTIFIER_LINGER_MS: int(0, 50),
    LEADER_RETRY_MS: int(50, 1000),
    WEBHOOK_URL: z
      .string()
      .url()
      .optional()
      .or(z.literal('').transform(() => undefined)),
    /** Comma list: every delivery is signed with each, so a secret can be rotated without downtime. */
    WEBHOOK_SECRET: z
      .string()
      .optional()
      .transform((v) =>
        (v ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      ),
    // The defaults retry for about a day (24 attempts, 5 s doubling to at most 4 h, full jitter): a
    // receiver that is down for a deploy, a night or a long outage still gets every notification.
    WEBHOOK_MAX_ATTEMPTS: int(1, 24),
    WEBHOOK_BACKOFF_MS: int(1, 5_000),
    WEBHOOK_BACKOFF_MAX_MS: int(1, 4 * 3600_000),
    WEBHOOK_TIMEOUT_MS: int(100, 10_000),
    WEBHOOK_LEASE_MS: int(100, 30_000),
    WEBHOOK_CONCURRENCY: int(1, 16),
    WEBHOOK_POLL_MS: int(5, 1000),
    WEBHOOK_RETAIN_DELIVERED_SECONDS: int(0, 7 * 24 * 3600),
  })
  .superRefine(natsEnvChecks)
  .superRefine(dataKeyEnvChecks)
  .superRefine((c, ctx) => {
    if (c.WEBHOOK_URL && c.WEBHOOK_SECRET.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: 'required when WEBHOOK_URL is set (whsec_<base64>, or at least 16 characters)',
        path: ['WEBHOOK_SECRET'],
      });
    }
    // Name the entry by its place in the list, never by its value: this message is logged.
    c.WEBHOOK_SECRET.forEach((secret, i) => {
      const problem = secretProblem(secret);
      if (problem)
        ctx.addIssue({ code: 'custom', message: `entry ${i + 1} ${problem}`, path: ['WEBHOOK_SECRET'] });
    });
  })
  .refine((c) => c.WEBHOOK_BACKOFF_MAX_MS >= c.WEBHOOK_BACKOFF_MS, {
    message: 'must be at least WEBHOOK_BACKOFF_MS',
    path: ['WEBHOOK_BACKOFF_MAX_MS'],
  })
  .refine((c) => c.WEBHOOK_LEASE_MS > c.WEBHOOK_TIMEOUT_MS, {
    message: 'must be longer than WEBHOOK_TIMEOUT_MS, or a slow attempt could be claimed twice',
    path: ['WEBHOOK_LEASE_MS'],
  });

export type NotifierConfig = z.infer<typeof notifierEnv>;

export const loadNotifierConfig = (env: NodeJS.ProcessEnv = process.env): Readonly<NotifierConfig> =>
  loadConfig(notifierEnv, env);
