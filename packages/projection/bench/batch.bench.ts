import { randomUUID } from 'node:crypto';
import { transaction } from '@chat/consumer';
import { createReadModelDb, READ_MODEL_SCHEMA } from '@chat/db';
import { conversationStream } from '@chat/events';
import { encodePosition, type RecordedEvent } from '@chat/eventstore';
import { projectEvents } from '../src/index.js';
import { createHarness } from '../test/harness.js';

// Node CPU of the live projection per message: batches of `size` MessageSent events (as B1's live
// batches: ~12 messages over 100 conversations of 50 members) applied as the projector does, one
// transaction each. Events are built in memory, so only the projection's own work is measured.
// Usage: tsx packages/projection/bench/batch.bench.ts [batches=2000] [size=12]

const batches = Number(process.argv[2] ?? 2000);
const size = Number(process.argv[3] ?? 12);
const h = await createHarness('batchbench');
try {
  const conversations = Array.from({ length: 100 }, () => randomUUID());
  const at = new Date().toISOString();
  let position = 0n;
  const recorded = (streamId: string, revision: number, type: string, data: Record<string, unknown>) =>
    ({
      id: randomUUID(),
      type,
      streamId,
      revision,
      position: encodePosition(1n, ++position),
      occurredAt: at,
      data,
      metadata: { userId: 'u0', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
    }) as RecordedEvent;
  const revisions = new Map<string, number>();
  const starts = conversations.map((c) => {
    revisions.set(c, 0);
    return recorded(conversationStream(c), 0, 'ConversationStarted', {
      conversationId: c,
      kind: 'group',
      title: 'bench',
      createdBy: 'u0',
      members: Array.from({ length: 50 }, (_, i) => `u${i}`),
    });
  });
  const db = createReadModelDb(h.pool);
  await db.transaction().execute((trx) => projectEvents(trx, READ_MODEL_SCHEMA, starts, () => {}));
  const batch = (): RecordedEvent[] =>
    Array.from({ length: size }, () => {
      const c = conversations[Math.floor(Math.random() * conversations.length)] ?? '';
      const revision = (revisions.get(c) ?? 0) + 1;
      revisions.set(c, revision);
      return recorded(conversationStream(c), revision, 'MessageSent', {
        conversationId: c,
        messageId: randomUUID(),
        senderId: `u${revision % 50}`,
        body: `message ${revision} of a batch benchmark`,
        replyTo: null,
        sentAt: at,
      });
    });
  const run = async (n: number) => {
    const pages = Array.from({ length: n }, batch);
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (const page of pages) {
      await transaction(h.pool, async (client) => {
        await projectEvents(createReadModelDb(client, READ_MODEL_SCHEMA), READ_MODEL_SCHEMA, page, () => {});
      });
    }
    const used = process.cpuUsage(cpu);
    return { cpuUs: (used.user + used.system) / (n * size), ms: performance.now() - started };
  };
  await run(Math.min(300, batches)); // warm-up
  const r = await run(batches);
  console.log(
    `${batches} batches of ${size} messages: Node CPU ${r.cpuUs.toFixed(1)} µs per message, ${(r.ms / batches).toFixed(2)} ms per batch (wall)`,
  );
} finally {
  await h.close();
}
