import { ChatClient } from '@chat/client';
import { migrateReadModels } from '@chat/db';
import type { ServerFrameOf } from '@chat/events';
import { notificationIdFor } from '@chat/notifications';
import {
  freePort,
  natsUrl,
  type ServiceProcess,
  signToken,
  startService,
  startTogether,
  TEST_JWT_SECRET,
  waitFor,
} from '@chat/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createHarness, type Harness, sendMessage, startConversation } from './fixtures.js';

let h: Harness;
const processes: ServiceProcess[] = [];
let gatewayUrl = '';

const start = async (name: string, env: Record<string, string>, readyPath = '/readyz') => {
  const port = await freePort();
  const proc = await startService({
    name,
    entry: `services/${name}`,
    env: {
      DATABASE_URL: h.db.url,
      NATS_URL: natsUrl(),
      NATS_SUBJECT_PREFIX: h.prefix,
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    ready: { url: `http://127.0.0.1:${port}${readyPath}` },
    timeoutMs: 60_000,
  });
  processes.push(proc);
  return port;
};

const connect = async (userId: string) => {
  const client = new ChatClient({
    url: gatewayUrl,
    token: () => signToken(userId),
    WebSocket: WebSocket as unknown as ConstructorParameters<typeof ChatClient>[0]['WebSocket'] & object,
    reconnect: { baseDelayMs: 50, maxDelayMs: 500 },
  });
  const notifications: ServerFrameOf<'notification'>[] = [];
  const resumed: unknown[] = [];
  client.on('notification', (f) => notifications.push(f));
  client.on('resumed', (f) => resumed.push(f));
  await client.connect();
  await waitFor(() => resumed.length > 0, { timeoutMs: 30_000, what: `${userId} connected` });
  return { client, notifications };
};

beforeAll(async () => {
  h = await createHarness('notifierlive');
  await migrateReadModels(h.pool);
  // In parallel: on a busy machine each start costs seconds. Every one that came up is in `processes`
  // before a failure is thrown, so afterAll stops it.
  const [, , gatewayPort] = await startTogether(
    () => start('projector', { LEADER_RETRY_MS: '200' }, '/healthz'),
    () => start('notifier', { LEADER_RETRY_MS: '200' }),
    () => start('ws-gateway', { GATEWAY_ID: 'gw-notifier' }),
  );
  gatewayUrl = `ws://127.0.0.1:${gatewayPort}/v1/ws`;
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop(3000)));
  await h?.close();
});

it('a live socket of the recipient receives the notification frame; the sender none', async () => {
  const bob = await connect('bob');
  const alice = await connect('alice');
  try {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob']);
    const { messageId } = await sendMessage(h.store, conv, 'alice', 'are you there @bob?');
    await waitFor(() => bob.notifications.length > 0, { timeoutMs: 30_000, what: 'notification frame' });
    expect(bob.notifications).toEqual([
      {
        type: 'notification',
        notification: {
          notificationId: notificationIdFor(conv, messageId, 'bob'),
          kind: 'mention',
          conversationId: conv,
          messageId,
          actorId: 'alice',
          preview: 'are you there @bob?',
          erased: false,
          createdAt: expect.any(String),
          readAt: null,
        },
      },
    ]);
    expect(alice.notifications).toEqual([]);
  } finally {
    bob.client.close();
    alice.client.close();
  }
});
