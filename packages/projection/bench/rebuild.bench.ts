import { createReadModelDb } from '@chat/db';
import { rebuildReadModels } from '../src/index.js';
import { appendBulkHistory, createHarness, readWholeLog, silentLogger } from '../test/harness.js';

// Rebuild throughput: replays a bulk history (messages, edits, deletes, reads, mutes) into a shadow
// schema and swaps it in. Usage: tsx packages/projection/bench/rebuild.bench.ts [events=200000] [batch=5000]

const total = Number(process.argv[2] ?? 200_000);
const batchSize = Number(process.argv[3] ?? 5000);
const h = await createHarness('rebuildbench');
try {
  const perConversation = 1000;
  let t = Date.now();
  await appendBulkHistory(h.store, {
    conversations: Math.ceil(total / perConversation),
    eventsPerConversation: perConversation,
  });
  console.log(`appended in ${Date.now() - t} ms`);
  t = Date.now();
  const log = await readWholeLog(h.store);
  const readMs = Date.now() - t;
  console.log(
    `read ${log.length} events in ${readMs} ms (${Math.round((log.length / readMs) * 1000)} events/s, store only)`,
  );
  const cpu = process.cpuUsage();
  const result = await rebuildReadModels({ store: h.store, pool: h.pool, logger: silentLogger, batchSize });
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  console.log(
    `rebuild CPU in this process (read + fold + SQL building, Postgres excluded): ${cpuMs.toFixed(0)} ms = ${((cpuMs * 1000) / result.events).toFixed(1)} µs/event`,
  );
  console.log(
    `rebuild: ${result.events} events in ${result.ms} ms = ${Math.round((result.events / result.ms) * 1000)} events/s`,
  );
  const db = createReadModelDb(h.pool);
  const n = await db
    .selectFrom('messages')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirst();
  console.log(`messages in read model: ${n?.n}`);
} finally {
  await h.close();
}
