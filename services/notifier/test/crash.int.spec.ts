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
} from './fixtures.js';

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
  /** The log position of the message each record is for. */
  const positionOf = new Map<string, string>();
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
      for (const m of members.slice(1)) {
        const id = notificationIdFor(conv, String(e.data.messageId), m);
        expected.add(id);
        positionOf.set(id, e.position);
      }
    }
  }

  notifier = await start();
  const seen = await waitFor(async () => (await count()) > 0 && (await count()), {
    intervalMs: 5,
    timeoutMs: 60_000,
    what: 'first records',
  });
  await notifier.kill();
  // One snapshot of what the killed notifier left: its records and its checkpoint.
  const { rows: frozen } = await h.pool.query<{ ids: string[] | null; position: string | null }>(
    `SELECT (SELECT array_agg(notification_id::text) FROM notifier.notifications) AS ids,
            (SELECT position FROM consumers.checkpoints WHERE name = 'notifier') AS position`,
  );
  const atKill = frozen[0]!.ids ?? [];
  expect(atKill.length).toBeGreaterThanOrEqual(seen);
  expect(atKill.length).toBeLessThan(expected.size);
  // Exactly once is more than "no duplicate rows" (the records' primary key would hide a batch applied
  // twice): effects and checkpoint commit together, so what the notifier had written is exactly what its
  // checkpoint covers — nothing beyond it that the restart would apply again, nothing below it missing.
  const covered = [...expected].filter((id) => positionOf.get(id)! <= (frozen[0]!.position ?? ''));
  expect(new Set(atKill)).toEqual(new Set(covered));

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
