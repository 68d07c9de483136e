import { notificationIdFor } from '@chat/notifications';
import { type ServiceProcess, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  checkpoint,
  createHarness,
  type Harness,
  sendMany,
  setLevel,
  startConversation,
  startNotifierProcess,
} from '../test/fixtures.js';

let h: Harness;
let notifier: ServiceProcess | undefined;

// Small batches: many transactions, so the kill lands in the middle of the work.
const start = async () => (await startNotifierProcess(h, { NOTIFIER_BATCH_SIZE: '10' })).service;

const count = async () =>
  (await h.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM notifier.notifications')).rows[0]!.n;

beforeAll(async () => {
  h = await createHarness('notifiercrash');
});

afterAll(async () => {
  await notifier?.stop();
  await h?.close();
});

it('SIGKILL mid-batch and restart: every record exactly once', async () => {
  const members = Array.from({ length: 20 }, (_, i) => `m${i}`);
  const expected = new Set<string>();
  let last = '';
  for (let c = 0; c < 20; c++) {
    const conv = await startConversation(h.store, 'm0', members);
    // Every member but the sender wants every message: 19 records per message.
    for (const m of members.slice(1)) await setLevel(h.store, m, conv, 'all');
    const bodies = Array.from({ length: 30 }, (_, i) => `message ${i}`);
    last = (await sendMany(h.store, conv, 'm0', bodies)).position;
    const events = await h.store.readStream(`conversation-${conv}`);
    for (const e of events) {
      if (e.type !== 'MessageSent') continue;
      for (const m of members.slice(1)) expected.add(notificationIdFor(conv, String(e.data.messageId), m));
    }
  }

  notifier = await start();
  const seen = await waitFor(async () => (await count()) > 0 && (await count()), {
    intervalMs: 5,
    timeoutMs: 60_000,
    what: 'first records',
  });
  await notifier.kill();
  const atKill = await count();
  expect(atKill).toBeGreaterThanOrEqual(seen);
  expect(atKill).toBeLessThan(expected.size);

  notifier = await start();
  // The last append's position, not the store's head: on a shared cluster the head may still be held
  // back below it by other databases' transactions.
  await waitFor(async () => ((await checkpoint(h.pool)) ?? '') >= last, {
    timeoutMs: 90_000,
    what: 'catch-up',
  });
  const { rows } = await h.pool.query<{ notification_id: string }>(
    'SELECT notification_id FROM notifier.notifications',
  );
  const ids = rows.map((r) => r.notification_id);
  expect(ids.length).toBe(expected.size);
  expect(new Set(ids)).toEqual(expected);
}, 180_000);
