import { createServer, type Server } from 'node:http';
import { notificationIdFor, outboxStats } from '@chat/notifications';
import { type ServiceProcess, waitFor } from '@chat/testkit';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHarness,
  type Harness,
  sendMessage,
  startConversation,
  startNotifierProcess,
} from '../test/fixtures.js';

const SECRET = 'webhook-test-secret-0123456789';
const MAX_ATTEMPTS = 5;

type Received = {
  deliveryId: string;
  headers: Record<string, string>;
  body: string;
  recipientId: string;
  status: number;
};

let h: Harness;
let receiver: Server;
let receiverUrl: string;
let notifier: ServiceProcess | undefined;
let opsPort = 0;
const received: Received[] = [];
/** The receiver's answer to attempt n (0-based) for a recipient: a status, or 0 = never answer. */
const behaviour: Record<string, (attempt: number) => number> = {
  flaky: (n) => (n < 3 ? 500 : 204),
  broken: () => 503,
  restart: (n) => [500, 0][n] ?? 204,
};

const start = async () => {
  const started = await startNotifierProcess(h, {
    WEBHOOK_URL: receiverUrl,
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    WEBHOOK_BACKOFF_MS: '20',
    WEBHOOK_BACKOFF_MAX_MS: '100',
    WEBHOOK_TIMEOUT_MS: '500',
    WEBHOOK_LEASE_MS: '1000',
    WEBHOOK_POLL_MS: '50',
  });
  opsPort = started.opsPort;
  return started.service;
};

const attemptsFor = (recipientId: string) => received.filter((r) => r.recipientId === recipientId);

beforeAll(async () => {
  h = await createHarness('notifierhook');
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const { recipientId } = JSON.parse(body) as { recipientId: string };
      const status = behaviour[recipientId]?.(attemptsFor(recipientId).length) ?? 204;
      received.push({
        deliveryId: String(req.headers['webhook-id']),
        headers: req.headers as Record<string, string>,
        body,
        recipientId,
        status,
      });
      // 0: hold the request open, so the notifier is killed while an attempt is in flight.
      if (status !== 0) res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  notifier = await start();
});

afterAll(async () => {
  await notifier?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
  await h?.close();
});

describe('webhook outbox', () => {
  it('retries a failing receiver until it accepts, with a valid signature and a stable delivery id', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'flaky']);
    const { messageId } = await sendMessage(h.store, conv, 'alice', 'hello @flaky');
    await waitFor(() => attemptsFor('flaky').some((r) => r.status === 204), {
      timeoutMs: 30_000,
      what: 'delivery to flaky',
    });
    const attempts = attemptsFor('flaky');
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 500, 204]);
    const id = notificationIdFor(conv, messageId, 'flaky');
    expect(new Set(attempts.map((a) => a.deliveryId))).toEqual(new Set([id]));
    for (const a of attempts) {
      expect(new Webhook(Buffer.from(SECRET), { format: 'raw' }).verify(a.body, a.headers)).toBeTruthy();
      expect(JSON.parse(a.body)).toMatchObject({
        deliveryId: id,
        recipientId: 'flaky',
        notification: { notificationId: id, kind: 'mention', messageId, actorId: 'alice' },
      });
    }
    const row = await h.pool.query('SELECT status, attempts FROM notifier.outbox WHERE delivery_id = $1', [
      id,
    ]);
    expect(row.rows[0]).toEqual({ status: 'delivered', attempts: 4 });
  });

  it('dead-letters a delivery the receiver always refuses, after the configured attempts', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'broken']);
    const { messageId } = await sendMessage(h.store, conv, 'alice', 'into the void');
    const id = notificationIdFor(conv, messageId, 'broken');
    await waitFor(
      async () =>
        (await h.pool.query(`SELECT 1 FROM notifier.outbox WHERE delivery_id = $1 AND status = 'dead'`, [id]))
          .rowCount === 1,
      { timeoutMs: 30_000, what: 'dead letter' },
    );
    expect(attemptsFor('broken')).toHaveLength(MAX_ATTEMPTS);
    expect((await outboxStats(h.pool)).deadLettered).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toMatch(/notifier_outbox_depth\{state="dead"\} 1/);
    expect(metrics).toMatch(/notifier_webhook_dead_letters_total 1/);
    expect(metrics).toMatch(/notifier_webhook_failures_total [1-9]/);
  });

  it('loses nothing when the notifier is killed mid-retry', { timeout: 120_000 }, async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'restart']);
    const { messageId } = await sendMessage(h.store, conv, 'alice', 'survive this');
    // Attempt 1 fails, attempt 2 hangs: kill the notifier while it waits for that answer.
    await waitFor(() => attemptsFor('restart').length === 2, {
      timeoutMs: 30_000,
      what: 'second attempt in flight',
    });
    await notifier?.kill();
    notifier = await start();
    await waitFor(() => attemptsFor('restart').some((r) => r.status === 204), {
      what: 'delivery after restart',
    });
    const attempts = attemptsFor('restart');
    expect(attempts.map((a) => a.status)).toEqual([500, 0, 204]);
    expect(new Set(attempts.map((a) => a.deliveryId))).toEqual(
      new Set([notificationIdFor(conv, messageId, 'restart')]),
    );
    // The receiver has answered 204; the notifier marks the row delivered just after.
    await waitFor(async () => (await outboxStats(h.pool)).pending === 0, { what: 'outbox drained' });
    expect(await outboxStats(h.pool)).toMatchObject({ pending: 0, delivered: 2, deadLettered: 1 });
  });
});
