import pg from 'pg';
import { round } from './report.js';
import { insertChunk } from './scenarios/b5-rebuild.js';
import { createDatabase, migrate } from './system.js';

// A log to measure `chatctl export` on and to query its files: B5's bulk load (`--events`, default
// 1,000,000 group messages, 1,000 conversations; all sent "now") plus 300 direct conversations of 30
// messages spread over 7 days, with the two members answering each other after random delays (the
// sample of README's DuckDB query). Prints DATABASE_URL; the database is kept (drop it by hand).
//
//   node --import tsx bench/src/export-log.ts [--events 1000000]

const DIRECT = 300;
const DIRECT_MESSAGES = 30;

const args = process.argv.slice(2);
const eventsArg = args.indexOf('--events');
const events = eventsArg >= 0 ? Number(args[eventsArg + 1]) : 1_000_000;
const perConversation = Math.max(2, Math.ceil(events / 1000));

const db = await createDatabase('export');
await migrate(db.url);
const client = new pg.Client({ connectionString: db.url });
await client.connect();
const started = performance.now();
await client.query('SET synchronous_commit = off');
for (let r = 0; r < perConversation; r += 5)
  await insertChunk(client, r, Math.min(perConversation, r + 5) - 1);
await client.query(
  `INSERT INTO es.streams (stream_id, revision)
   SELECT 'conversation-' || md5('bench-rebuild-' || c)::uuid::text, $1::bigint FROM generate_series(0, 999) c`,
  [perConversation - 1],
);
// Direct conversations: day d % 7 of the week of 2026-11-16, from 08:00 UTC; each message 5 s to ~1 h
// after the previous one; the sender changes with probability 0.6 (a reply), else the same one goes on.
await client.query(
  `WITH m AS (
     SELECT d, r, md5('bench-direct-' || d)::uuid::text AS cid,
            'ann' || (d % 40) AS a, 'ben' || (d % 35) AS b,
            random() < 0.6 AS flips, 5 + (-ln(1 - random()) * 600)::int AS delay_s
       FROM generate_series(0, $1::int - 1) d, generate_series(0, $2::int) r),
   t AS (
     SELECT *, timestamp '2026-11-16 08:00:00' + (d % 7) * interval '1 day'
                 + sum(delay_s) OVER (PARTITION BY d ORDER BY r) * interval '1 second' AS at,
            sum(flips::int) OVER (PARTITION BY d ORDER BY r) % 2 AS side
       FROM m)
   INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
   SELECT 'conversation-' || cid, r, gen_random_uuid(),
          CASE WHEN r = 0 THEN 'ConversationStarted' ELSE 'MessageSent' END,
          CASE WHEN r = 0 THEN jsonb_build_object('conversationId', cid, 'kind', 'direct', 'title', null,
                                                  'createdBy', a, 'members', jsonb_build_array(a, b))
               ELSE jsonb_build_object('conversationId', cid, 'messageId', gen_random_uuid(),
                      'senderId', CASE WHEN side = 0 THEN a ELSE b END, 'body', 'direct message ' || r,
                      'replyTo', null, 'sentAt', to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) END,
          jsonb_build_object('userId', CASE WHEN side = 0 THEN a ELSE b END, 'correlationId', gen_random_uuid(),
                             'causationId', null, 'schemaVersion', 1)
     FROM t ORDER BY d, r`,
  [DIRECT, DIRECT_MESSAGES],
);
await client.query(
  `INSERT INTO es.streams (stream_id, revision)
   SELECT 'conversation-' || md5('bench-direct-' || d)::uuid::text, $2::bigint FROM generate_series(0, $1::int - 1) d`,
  [DIRECT, DIRECT_MESSAGES],
);
await client.query('ANALYZE es.events');
const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM es.events');
await client.end();
const seconds = (performance.now() - started) / 1000;
process.stderr.write(`seeded ${rows[0]?.n} events in ${round(seconds)} s\n`);
process.stdout.write(`${db.url}\n`);
