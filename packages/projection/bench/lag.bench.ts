import { randomUUID } from 'node:crypto';
import { readCheckpoint } from '@chat/db';
import { conversationStream } from '@chat/events';
import type { NewEvent } from '@chat/eventstore';
import { createProjector } from '../src/index.js';
import { createHarness, silentLogger } from '../test/harness.js';

// Projection lag under a steady message rate: each send is appended at its scheduled time, and the
// lag is the time from its append being acknowledged to the read-model checkpoint covering it.
// Usage: tsx packages/projection/bench/lag.bench.ts [rate=500] [seconds=20]

const rate = Number(process.argv[2] ?? 500);
const seconds = Number(process.argv[3] ?? 20);
const h = await createHarness('lagbench');
const stop = new AbortController();
const running = createProjector({ store: h.store, pool: h.pool, logger: silentLogger }).run(stop.signal);
try {
  const conversations = Array.from({ length: 100 }, () => ({ id: randomUUID() }));
  const meta = () => ({ userId: 'u0', correlationId: randomUUID(), causationId: null, schemaVersion: 1 });
  await Promise.all(
    conversations.map((c) =>
      h.store.append(
        conversationStream(c.id),
        [
          {
            id: randomUUID(),
            type: 'ConversationStarted',
            data: {
              conversationId: c.id,
              kind: 'group',
              title: 'bench',
              createdBy: 'u0',
              members: Array.from({ length: 50 }, (_, i) => `u${i}`),
            },
            metadata: meta(),
          },
        ],
        'no_stream',
      ),
    ),
  );

  const pending = new Map<string, number>();
  const lags: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling || pending.size > 0) {
      const checkpoint = await readCheckpoint(h.db);
      const now = performance.now();
      for (const [position, ackedAt] of pending) {
        if (position > checkpoint) continue;
        lags.push(now - ackedAt);
        pending.delete(position);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();

  const total = rate * seconds;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const c = conversations[i % conversations.length];
    if (!c) continue;
    const event: NewEvent = {
      id: randomUUID(),
      type: 'MessageSent',
      data: {
        conversationId: c.id,
        messageId: randomUUID(),
        senderId: `u${i % 50}`,
        body: `bench ${i}`,
        replyTo: null,
        sentAt: new Date().toISOString(),
      },
      metadata: meta(),
    };
    inflight.push(
      h.store.append(conversationStream(c.id), [event], 'any').then((r) => {
        pending.set(r.position, performance.now());
      }),
    );
  }
  await Promise.all(inflight);
  const sentFor = (performance.now() - start) / 1000;
  polling = false;
  await poller;
  lags.sort((a, b) => a - b);
  const q = (p: number) => lags[Math.min(lags.length - 1, Math.floor(p * lags.length))]?.toFixed(1);
  console.log(
    `${lags.length} messages at ${rate}/s target (${Math.round(lags.length / sentFor)}/s achieved): projection lag p50 ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`,
  );
} finally {
  stop.abort();
  await running;
  await h.close();
}
