import { fork } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { shareLog } from '@chat/consumer';
import { migrateReadModels } from '@chat/db';
import { conversationStream, natsSubjects } from '@chat/events';
import {
  createEventStore,
  createPgDataKeyStore,
  EncryptingEventStore,
  migrateEventStore,
} from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { cpuTicks } from '@chat/processes';
import { createProjector, PROJECTED_STREAMS } from '@chat/projection';
import { createRelay, RELAYED_STREAMS } from '@chat/relay';
import { createTestDatabase } from '@chat/testkit';
import { connect } from 'nats';
import pg from 'pg';

// CPU of the projector process (projection + relay, as services/projector runs them) per message at a
// steady rate, and of the Postgres backends it uses, with the log read once per page for both
// (`shared`, the default) or once per consumer (`separate`). Messages are appended by a child process
// (its CPU and backends are not counted), encrypted like the command-api's, 100 groups × 50 members.
// Usage: tsx services/projector/bench/consumers.bench.ts [shared|separate] [rate=200] [seconds=10]

const logger = createLogger('bench', (process.env.LOG_LEVEL ?? 'silent') as 'silent');
const meta = () => ({ userId: 'u0', correlationId: randomUUID(), causationId: null, schemaVersion: 1 });

if (process.argv[2] === 'writer') {
  // The child: appends `rate` messages per second for `seconds`, then reports the last position.
  const [, , , url, master, rate, seconds, ids] = process.argv as string[];
  const conversations = (ids as string).split(',');
  const store = new EncryptingEventStore(
    createEventStore({ databaseUrl: url as string, logger }),
    createPgDataKeyStore({ connectionString: url as string, master: Buffer.from(master as string, 'hex') }),
  );
  const total = Number(rate) * Number(seconds);
  const start = performance.now();
  let last = '';
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / Number(rate) - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const conversationId = conversations[i % conversations.length] as string;
    const data = {
      conversationId,
      messageId: randomUUID(),
      senderId: `u${i % 50}`,
      body: `bench message ${i} with a few words of text`,
      replyTo: null,
      sentAt: new Date().toISOString(),
    };
    inflight.push(
      store
        .append(
          conversationStream(conversationId),
          [{ id: randomUUID(), type: 'MessageSent', data, metadata: meta() }],
          'any',
        )
        .then((r) => {
          if (r.position > last) last = r.position;
        }),
    );
  }
  await Promise.all(inflight);
  process.send?.({ last, total });
  await store.close();
  process.exit(0);
}

const mode = process.argv[2] === 'separate' ? 'separate' : 'shared';
const rate = Number(process.argv[3] ?? 200);
const seconds = Number(process.argv[4] ?? 10);
const database = await createTestDatabase('consumersbench');
const url = `${database.url}${database.url.includes('?') ? '&' : '?'}application_name=consumers`;
const master = randomBytes(32);
const pool = new pg.Pool({ connectionString: url, max: 10 });
const nats = await connect({ servers: process.env.NATS_URL ?? '127.0.0.1:4222' });
const stop = new AbortController();
let running: Promise<unknown> | undefined;
try {
  await migrateEventStore(pool);
  await migrateReadModels(pool);
  const store = new EncryptingEventStore(
    createEventStore({ databaseUrl: url, logger }),
    createPgDataKeyStore({ connectionString: url, master }),
  );
  const conversations = Array.from({ length: 100 }, () => randomUUID());
  let head = '';
  for (const conversationId of conversations) {
    const data = {
      conversationId,
      kind: 'group',
      title: 'bench',
      createdBy: 'u0',
      members: Array.from({ length: 50 }, (_, i) => `u${i}`),
    };
    head = (
      await store.append(
        conversationStream(conversationId),
        [{ id: randomUUID(), type: 'ConversationStarted', data, metadata: meta() }],
        'no_stream',
      )
    ).position;
  }
  const log = mode === 'shared' ? shareLog(store, { filters: [PROJECTED_STREAMS, RELAYED_STREAMS] }) : store;
  const subjects = natsSubjects(`bench_${randomBytes(3).toString('hex')}`);
  running = Promise.all([
    createProjector({ store: log, pool, logger, lingerMs: 20, publish: () => {} }).run(stop.signal),
    createRelay({ store: log, nats, subjects, pool, logger }).run(stop.signal),
  ]);
  const caughtUp = async (position: string) => {
    for (let i = 0; i < 6000; i++) {
      const { rows } = await pool.query<{ position: string }>(
        `SELECT min(position) AS position FROM consumers.checkpoints WHERE name IN ('read_models', 'relay')
         HAVING count(*) = 2`,
      );
      if ((rows[0]?.position ?? '') >= position) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the consumers did not catch up in 300 s');
  };
  await caughtUp(head);
  await new Promise((r) => setTimeout(r, 1000));

  // Postgres CPU: the backends of this process's connections (application_name), from /proc.
  const backendTicks = async () => {
    const { rows } = await pool.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'consumers'`,
    );
    return rows.reduce((ticks, { pid }) => ticks + (cpuTicks(pid) ?? 0), 0);
  };
  // Statements of this database (pg_stat_statements, when the server preloads it): page reads of the log
  // and everything else but the writer's appends.
  await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements').catch(() => {});
  const statements = async () => {
    const { rows } = await pool
      .query<{ reads: string; others: string }>(
        `SELECT coalesce(sum(calls) FILTER (WHERE query LIKE '%head_transaction_id%'), 0) AS reads,
                coalesce(sum(calls) FILTER (WHERE query NOT LIKE '%head_transaction_id%'
                                              AND query NOT LIKE '%append_batch%'), 0) AS others
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      )
      .catch(() => ({ rows: [{ reads: 'NaN', others: 'NaN' }] }));
    return { reads: Number(rows[0]?.reads), others: Number(rows[0]?.others) };
  };
  const cpu0 = process.cpuUsage();
  const pg0 = await backendTicks();
  const st0 = await statements();
  const child = fork(
    new URL(import.meta.url).pathname,
    ['writer', database.url, master.toString('hex'), String(rate), String(seconds), conversations.join(',')],
    { execArgv: ['--import', 'tsx'] },
  );
  const { last, total } = await new Promise<{ last: string; total: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { last: string; total: number }));
    child.once('exit', (code) => code !== 0 && reject(new Error(`writer exited ${code}`)));
  });
  await caughtUp(last);
  const pg1 = await backendTicks();
  const cpu = process.cpuUsage(cpu0);
  const st1 = await statements();
  const nodeUs = (cpu.user + cpu.system) / total;
  const pgUs = ((pg1 - pg0) * 10_000) / total;
  console.log(
    `${mode}: ${total} messages at ${rate}/s: projector process ${nodeUs.toFixed(0)} µs CPU per message, its Postgres backends ${pgUs.toFixed(0)} µs (backends alive at the end only); per message: ${((st1.reads - st0.reads) / total).toFixed(2)} log page reads, ${((st1.others - st0.others) / total).toFixed(2)} other statements but appends${mode === 'shared' && 'stats' in log ? `; shared log ${JSON.stringify(log.stats)}` : ''}`,
  );
} finally {
  stop.abort();
  await running;
  await nats.close();
  await pool.end();
  await database.drop();
}
