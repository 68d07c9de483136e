import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { outboxStats } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { waitFor } from '@chat/testkit';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNotifierConfig } from '../src/config.js';
import { WebhookDelivery, webhookOptions } from '../src/delivery.js';
import { createNotifierMetrics } from '../src/metrics.js';
import { createHarness, type Harness } from './fixtures.js';

// The webhook worker in-process, with the policy built from environment values and the jitter drawn
// at its top (random → 1), so every wait is the policy's ceiling and the schedule can be checked.

let h: Harness;
let receiver: Server;
let url = '';
const arrivals: number[] = [];

beforeAll(async () => {
  h = await createHarness('webhookschedule');
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      arrivals.push(performance.now());
      res.writeHead(503).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
});

afterAll(async () => {
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await h?.close();
});

describe('webhook retry schedule', () => {
  it('waits base·2ⁿ⁻¹ capped at the maximum between attempts, then dead-letters', async () => {
    const config = loadNotifierConfig({
      WEBHOOK_URL: url,
      WEBHOOK_SECRET: 'schedule-test-secret-0123',
      WEBHOOK_MAX_ATTEMPTS: '5',
      WEBHOOK_BACKOFF_MS: '200',
      WEBHOOK_BACKOFF_MAX_MS: '400',
      WEBHOOK_TIMEOUT_MS: '1000',
      WEBHOOK_LEASE_MS: '5000',
      WEBHOOK_POLL_MS: '20',
    });
    const options = webhookOptions(config);
    if (!options) throw new Error('no webhook options');
    const worker = new WebhookDelivery({
      pool: h.pool,
      logger: createLogger('webhook-schedule-test', 'silent'),
      metrics: createNotifierMetrics(new Registry(), () => outboxStats(h.pool)),
      options,
      random: () => 0.999999,
    });
    const deliveryId = randomUUID();
    await h.pool.query(
      `INSERT INTO notifier.outbox (delivery_id, recipient_id, payload) VALUES ($1, 'bob', '{"type":"notification"}')`,
      [deliveryId],
    );
    const stop = new AbortController();
    const running = worker.run(stop.signal);
    try {
      await waitFor(
        async () =>
          (
            await h.pool.query(`SELECT 1 FROM notifier.outbox WHERE delivery_id = $1 AND status = 'dead'`, [
              deliveryId,
            ])
          ).rowCount === 1,
        { timeoutMs: 30_000, what: 'dead letter' },
      );
    } finally {
      stop.abort();
      await running;
    }
    expect(arrivals).toHaveLength(5);
    const gaps = arrivals.slice(1).map((t, i) => t - (arrivals[i] ?? t));
    // Ceilings 200, 400, then capped at 400 (uncapped: 800, 1600), less the 1 ms the draw stays below
    // them. A wait is never shorter; it is longer by a poll, a claim and a POST, which a loaded host
    // can stretch, but not by the doubling the cap prevents.
    const ceilings = [199, 399, 399, 399];
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((ceilings[i] ?? 0) - 5);
      expect(gap).toBeLessThan((ceilings[i] ?? 0) + 1000);
    });
    const row = await h.pool.query(
      'SELECT attempts, last_error FROM notifier.outbox WHERE delivery_id = $1',
      [deliveryId],
    );
    expect(row.rows[0]).toEqual({ attempts: 5, last_error: 'receiver answered 503' });
  });
});
