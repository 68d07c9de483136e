import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
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
} from './fixtures.js';

// The real notifier process against a real receiver on loopback, checked the way a receiver checks:
// with the verifier the README documents (loaded from the README itself) and with the Standard
// Webhooks reference library.

const ROOT = resolve(import.meta.dirname, '../../..');
const NEW_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OLD_SECRET = 'webhook-test-secret-0123456789';
const MAX_ATTEMPTS = 5;

type Received = {
  headers: IncomingHttpHeaders;
  body: Buffer;
  recipientId: string;
  status: number;
};
type Verify = (secret: string, headers: IncomingHttpHeaders, body: Buffer | string, now?: number) => unknown;

let h: Harness;
let receiver: Server;
let receiverUrl: string;
let notifier: ServiceProcess | undefined;
let opsPort = 0;
let verifyWebhook: Verify;
const verifierFile = join(tmpdir(), `verify-webhook-${randomUUID()}.mjs`);
const received: Received[] = [];
/** Requests that reached a redirect's target: there must be none. */
const redirectTargetHits: string[] = [];
/** Bytes the receiver wrote of its endless answer before the notifier hung up. */
let endlessBytesSent = 0;
let redriveReceiverFixed = false;

/** The receiver's answer to attempt n (0-based) for a recipient: a status, or 0 = never answer. */
const behaviour: Record<string, (attempt: number) => number> = {
  flaky: (n) => (n < 3 ? 500 : 204),
  broken: () => 503,
  restart: (n) => [500, 0][n] ?? 204,
  moved301: () => 301,
  moved302: () => 302,
  moved307: () => 307,
  gone: () => 410,
  endless: () => 200,
  redrive: () => (redriveReceiverFixed ? 204 : 503),
};

const start = async () => {
  const started = await startNotifierProcess(h, {
    WEBHOOK_URL: receiverUrl,
    WEBHOOK_SECRET: `${NEW_SECRET},${OLD_SECRET}`,
    WEBHOOK_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
    WEBHOOK_BACKOFF_MS: '20',
    WEBHOOK_BACKOFF_MAX_MS: '100',
    // Long enough that a notifier reading a whole endless answer would take in far more than the limit.
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_LEASE_MS: '2500',
    WEBHOOK_POLL_MS: '50',
  });
  opsPort = started.opsPort;
  return started.service;
};

const attemptsFor = (recipientId: string) => received.filter((r) => r.recipientId === recipientId);
const firstAttempt = (recipientId: string): Received => {
  const first = attemptsFor(recipientId)[0];
  if (!first) throw new Error(`no attempt for ${recipientId}`);
  return first;
};

const outboxRow = async (deliveryId: string) =>
  (
    await h.pool.query<{ status: string; attempts: number; last_error: string | null }>(
      'SELECT status, attempts, last_error FROM notifier.outbox WHERE delivery_id = $1',
      [deliveryId],
    )
  ).rows[0];

/** One message to `recipientId`; resolves with its delivery id. */
/** A direct conversation: its default level (all) notifies the recipient of every message. */
const notify = async (recipientId: string, body = `hello @${recipientId}`) => {
  const conv = await startConversation(h.store, 'alice', ['alice', recipientId], 'direct');
  const { messageId } = await sendMessage(h.store, conv, 'alice', body);
  return notificationIdFor(conv, messageId, recipientId);
};

/** chatctl as an operator runs it: a child process on the test's database. */
const chatctl = (...args: string[]) =>
  promisify(execFile)(
    join(ROOT, 'node_modules/.bin/tsx'),
    [join(ROOT, 'packages/chatctl/src/main.ts'), ...args],
    {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: h.db.url, LOG_LEVEL: 'silent' },
    },
  );

/** Writes an endless 200 answer, respecting backpressure, until the client hangs up (bounded). */
const answerEndlessly = (res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const chunk = Buffer.alloc(64 * 1024, 120);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const pump = () => {
    while (!closed && endlessBytesSent < 512 * 1024 * 1024) {
      endlessBytesSent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!closed) res.end();
  };
  pump();
};

beforeAll(async () => {
  const readme = await readFile(resolve(import.meta.dirname, '../README.md'), 'utf8');
  const verifier = /```js\n(\/\/ verify-webhook\.mjs\n[\s\S]*?)```/.exec(readme)?.[1];
  if (!verifier) throw new Error('the README has no verify-webhook.mjs block');
  await writeFile(verifierFile, verifier);
  ({ verifyWebhook } = (await import(pathToFileURL(verifierFile).href)) as { verifyWebhook: Verify });

  h = await createHarness('notifierhook');
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url?.startsWith('/target')) {
        redirectTargetHits.push(`${req.method} ${req.url}`);
        res.writeHead(204).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const { recipientId } = JSON.parse(body.toString('utf8')) as { recipientId: string };
      const status = behaviour[recipientId]?.(attemptsFor(recipientId).length) ?? 204;
      received.push({ headers: req.headers, body, recipientId, status });
      if (status === 0) return; // hold the request open: the notifier is killed while it waits
      if (recipientId === 'endless') return answerEndlessly(res);
      if (status >= 300 && status < 400) {
        res.writeHead(status, { location: `/target/${recipientId}` }).end();
        return;
      }
      res.writeHead(status).end(status === 503 ? 'down for maintenance' : undefined);
    });
  });
  await new Promise<void>((resolveListen) => receiver.listen(0, '127.0.0.1', resolveListen));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  notifier = await start();
});

afterAll(async () => {
  await notifier?.stop();
  receiver?.closeAllConnections();
  await new Promise((resolveClose) => receiver?.close(resolveClose));
  await h?.close();
  await rm(verifierFile, { force: true });
});

describe('webhook signatures', () => {
  it('verify with the documented verifier and the Standard Webhooks library, under either secret', async () => {
    const id = await notify('bob');
    await waitFor(() => attemptsFor('bob').length === 1, { timeoutMs: 30_000, what: 'delivery to bob' });
    const { headers, body } = firstAttempt('bob');
    expect(headers['webhook-id']).toBe(id);
    expect(headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    // One signature per secret of WEBHOOK_SECRET: a receiver holding either verifies (rotation).
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    for (const secret of [NEW_SECRET, OLD_SECRET]) {
      expect(verifyWebhook(secret, headers, body)).toMatchObject({
        deliveryId: id,
        recipientId: 'bob',
        notification: { notificationId: id, kind: 'mention', actorId: 'alice' },
      });
    }
    const asRecord = headers as Record<string, string>;
    expect(new Webhook(NEW_SECRET).verify(body, asRecord)).toMatchObject({ deliveryId: id });
    expect(new Webhook(Buffer.from(OLD_SECRET), { format: 'raw' }).verify(body, asRecord)).toMatchObject({
      deliveryId: id,
    });
  });

  it('fail on a changed body, timestamp or id, a wrong secret, and a replay outside the window', async () => {
    const { headers, body } = firstAttempt('bob');
    const sentAt = Number(headers['webhook-timestamp']);
    const text = body.toString('utf8');
    const verify =
      (h2: IncomingHttpHeaders, b: Buffer | string, now = sentAt, secret = NEW_SECRET) =>
      () =>
        verifyWebhook(secret, h2, b, now);

    expect(verify(headers, text.replace('hello', 'hellO'))).toThrow(/no valid signature/);
    expect(verify(headers, `${text} `)).toThrow(/no valid signature/);
    expect(verify({ ...headers, 'webhook-timestamp': String(sentAt + 1) }, body)).toThrow(
      /no valid signature/,
    );
    expect(verify({ ...headers, 'webhook-id': randomUUID() }, body)).toThrow(/no valid signature/);
    expect(verify(headers, body, sentAt, `whsec_${randomBytes(32).toString('base64')}`)).toThrow(
      /no valid signature/,
    );
    // The same request captured and replayed: accepted within the 5-minute window (the receiver drops
    // it as a repeat by webhook-id), refused after it.
    expect(verify(headers, body, sentAt + 299)).not.toThrow();
    expect(verify(headers, body, sentAt + 301)).toThrow(/tolerance window/);
    expect(verify(headers, body, sentAt - 301)).toThrow(/tolerance window/);
    const { 'webhook-signature': _, ...unsigned } = headers;
    expect(verify(unsigned, body)).toThrow(/missing/);
    expect(() => new Webhook(NEW_SECRET).verify(`${text} `, headers as Record<string, string>)).toThrow(
      /No matching signature/,
    );
  });
});

describe('webhook delivery', () => {
  it('retries a failing receiver until it accepts, with a stable delivery id', async () => {
    const id = await notify('flaky');
    await waitFor(() => attemptsFor('flaky').some((r) => r.status === 204), {
      timeoutMs: 30_000,
      what: 'delivery to flaky',
    });
    const attempts = attemptsFor('flaky');
    expect(attempts.map((a) => a.status)).toEqual([500, 500, 500, 204]);
    expect(new Set(attempts.map((a) => a.headers['webhook-id']))).toEqual(new Set([id]));
    expect(attempts.map((a) => a.headers['x-chat-attempt'])).toEqual(['1', '2', '3', '4']);
    for (const a of attempts) expect(verifyWebhook(NEW_SECRET, a.headers, a.body)).toBeTruthy();
    await waitFor(async () => (await outboxRow(id))?.status === 'delivered', { what: 'delivered row' });
    expect(await outboxRow(id)).toEqual({ status: 'delivered', attempts: 4, last_error: null });
  });

  it('never follows a redirect: each attempt fails and the target gets no request', async () => {
    const ids = await Promise.all(['moved301', 'moved302', 'moved307'].map((r) => notify(r)));
    const finished = async () => {
      const rows = await Promise.all(ids.map(outboxRow));
      return rows.every((r) => r?.status === 'dead' || r?.status === 'delivered');
    };
    await waitFor(async () => redirectTargetHits.length > 0 || (await finished()), {
      timeoutMs: 30_000,
      what: 'every redirected delivery finished',
    });
    expect(redirectTargetHits).toEqual([]);
    for (const id of ids) {
      expect(await outboxRow(id)).toEqual({
        status: 'dead',
        attempts: MAX_ATTEMPTS,
        last_error:
          'receiver answered with a redirect, which is not followed: set WEBHOOK_URL to the final address',
      });
    }
  });

  it('reads a bounded part of the answer: an endless body neither stalls nor fills the notifier', async () => {
    const id = await notify('endless');
    await waitFor(async () => (await outboxRow(id))?.status === 'delivered', {
      timeoutMs: 30_000,
      what: 'delivered despite an endless answer',
    });
    expect(attemptsFor('endless')).toHaveLength(1);
    // 64 KiB read, plus what the loopback socket buffers held (about 4 MiB) when the notifier hung up.
    await waitFor(() => endlessBytesSent > 0, { what: 'the answer started' });
    expect(endlessBytesSent).toBeLessThan(16 * 1024 * 1024);
  });

  it('dead-letters at once a receiver that answers 410 Gone', async () => {
    const id = await notify('gone');
    await waitFor(async () => (await outboxRow(id))?.status === 'dead', { timeoutMs: 30_000, what: 'dead' });
    expect(await outboxRow(id)).toEqual({ status: 'dead', attempts: 1, last_error: 'receiver answered 410' });
    expect(attemptsFor('gone')).toHaveLength(1);
  });

  it('dead-letters a delivery the receiver always refuses, after the configured attempts', async () => {
    const id = await notify('broken');
    await waitFor(async () => (await outboxRow(id))?.status === 'dead', { timeoutMs: 30_000, what: 'dead' });
    expect(attemptsFor('broken')).toHaveLength(MAX_ATTEMPTS);
    expect(await outboxRow(id)).toEqual({
      status: 'dead',
      attempts: MAX_ATTEMPTS,
      last_error: 'receiver answered 503: down for maintenance',
    });
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    // With the three redirected deliveries and the 410.
    expect(metrics).toMatch(/notifier_outbox_depth\{state="dead"\} 5/);
    expect(metrics).toMatch(/notifier_webhook_dead_letters_total 5/);
    expect(metrics).toMatch(/notifier_webhook_failures_total [1-9]/);
  });

  it('delivers a dead letter after chatctl webhooks redrive, with the same id and body', async () => {
    const id = await notify('redrive');
    await waitFor(async () => (await outboxRow(id))?.status === 'dead', { timeoutMs: 30_000, what: 'dead' });
    const listed = await chatctl('webhooks', 'list', '--status', 'dead');
    expect(listed.stdout).toContain(id);
    expect(listed.stdout).toMatch(/receiver answered 503: down for maintenance/);

    redriveReceiverFixed = true;
    const redriven = await chatctl('webhooks', 'redrive', '--id', id);
    expect(redriven.stdout).toBe('redrove 1 dead-lettered delivery; the notifier sends them again now\n');
    await waitFor(async () => (await outboxRow(id))?.status === 'delivered', {
      timeoutMs: 30_000,
      what: 'delivered after the redrive',
    });
    const attempts = attemptsFor('redrive');
    expect(attempts.map((a) => a.status)).toEqual([...Array(MAX_ATTEMPTS).fill(503), 204]);
    const last = attempts.at(-1);
    expect(last?.headers['webhook-id']).toBe(id);
    expect(last?.headers['x-chat-attempt']).toBe('1');
    expect(last?.body.equals(attempts[0]?.body ?? Buffer.alloc(0))).toBe(true);
    expect(verifyWebhook(NEW_SECRET, last?.headers ?? {}, last?.body ?? '')).toMatchObject({
      deliveryId: id,
    });
    expect(await outboxRow(id)).toEqual({ status: 'delivered', attempts: 1, last_error: null });
    // The other dead letters were not touched.
    expect((await chatctl('webhooks', 'list', '--status', 'dead')).stdout).not.toContain(id);
    expect((await outboxStats(h.pool)).deadLettered).toBe(5);
  });

  it('loses nothing when the notifier is killed mid-retry', { timeout: 120_000 }, async () => {
    const id = await notify('restart', 'survive this');
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
    expect(new Set(attempts.map((a) => a.headers['webhook-id']))).toEqual(new Set([id]));
    // The receiver has answered 204; the notifier marks the row delivered just after.
    await waitFor(async () => (await outboxStats(h.pool)).pending === 0, { what: 'outbox drained' });
    expect(await outboxStats(h.pool)).toMatchObject({ pending: 0, deadLettered: 5, delivered: 5 });
  });
});
