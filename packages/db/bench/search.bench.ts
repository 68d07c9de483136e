import { performance } from 'node:perf_hooks';
import { createTestDatabase } from '@chat/testkit';
import { sql } from 'kysely';
import pg from 'pg';
import { createReadModelDb, migrateReadModels, searchMessages, searchQuery } from '../src/index.js';

// Search on a large read model: seeds MESSAGES messages straight into the read model by bulk SQL (no
// events: the projector's write path is O(1) per message and measured elsewhere), then runs QUERIES
// searches of varied words as a user who is a member of MEMBER_OF conversations, and prints p50/p99
// and the EXPLAIN ANALYZE of a common and a rare word. Run: `pnpm --filter @chat/db bench:search`
// (env MESSAGES, QUERIES, KEEP=1 keeps the database). Figures go to bench/README.md, not here.

const MESSAGES = Number(process.env.MESSAGES ?? 1_000_000);
const QUERIES = Number(process.env.QUERIES ?? 200);
const PER_CONVERSATION = 50;
const CONVERSATIONS = Math.ceil(MESSAGES / PER_CONVERSATION);
const USERS = 5000;
const MEMBERS_PER_CONVERSATION = 6;
const MEMBER_OF = 50;
const USER = 'bench-user';

// Common English chat words (most frequent first), then a long tail of made-up but pronounceable words:
// word frequencies in chat follow a power law, which is what decides how many rows a query matches.
const COMMON = `the to i you a and it is of that in we for on this be have are not with just do so can
what but at me my will get know if like about was all up out your no now there one they good time
think how ok when need yes from go see lol make an back would want today meeting tomorrow thanks work
call let new more here some going please also did really sure great going us our right well people day
could after check send look done will week still project update team issue build release fix deploy
test review merge branch lunch coffee morning tonight weekend customer design server client bug error
data report plan idea question answer problem sorry happy nice cool awesome love friday monday doc`
  .split(/\s+/)
  .filter((w) => w.length > 0);
const SYLLABLES = [
  'ka',
  'lo',
  'mi',
  'ren',
  'to',
  'sha',
  'vu',
  'pel',
  'dri',
  'zon',
  'qua',
  'ber',
  'nix',
  'fa',
  'gor',
  'hel',
];
const tail: string[] = [];
for (let i = 0; tail.length < 20_000; i++) {
  let n = i;
  let w = '';
  do {
    w += SYLLABLES[n % SYLLABLES.length];
    n = Math.floor(n / SYLLABLES.length);
  } while (n > 0);
  if (w.length >= 4) tail.push(w);
}
const WORDS = [...new Set([...COMMON, ...tail])];

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

const seedReadModel = async (db: ReturnType<typeof createReadModelDb>, pool: pg.Pool) => {
  await migrateReadModels(pool);
  const t0 = performance.now();
  // Bulk load without the GIN index, then build it once (as a restore would).
  await sql`DROP INDEX read_models.messages_search_idx`.execute(db);
  const chunk = 100_000;
  for (let from = 0; from < MESSAGES; from += chunk) {
    const to = Math.min(MESSAGES, from + chunk) - 1;
    // Word i is drawn with probability ~ power(random, 2.5): a few words are very common, most rare.
    await sql`
        INSERT INTO read_models.messages (conversation_id, seq, message_id, msg_index, sender_id, body, sent_at)
        SELECT md5('c' || (i / ${PER_CONVERSATION}))::uuid::text,
               i % ${PER_CONVERSATION} + 1,
               md5('m' || i)::uuid::text,
               i % ${PER_CONVERSATION} + 1,
               'u' || ((i / ${PER_CONVERSATION} * 7 + i % ${MEMBERS_PER_CONVERSATION} * 131) % ${USERS}),
               b.body,
               timestamptz '2026-01-01' + i * interval '1 second'
          FROM generate_series(${from}::int, ${to}::int) AS g(i),
               LATERAL (
                 SELECT string_agg((${WORDS}::text[])[1 + floor(power(random(), 2.5) * ${WORDS.length})::int], ' ') AS body
                   FROM generate_series(1, 4 + (g.i % 13)) AS w(n)
               ) AS b`.execute(db);
    process.stdout.write(`\rseeded ${to + 1} messages`);
  }
  await sql`
      INSERT INTO read_models.members (conversation_id, user_id, active, joined_seq, read_seq)
      SELECT DISTINCT md5('c' || k)::uuid::text, 'u' || ((k * 7 + j * 131) % ${USERS}), true, 0, 0
        FROM generate_series(0, ${CONVERSATIONS - 1}) AS k, generate_series(0, ${MEMBERS_PER_CONVERSATION - 1}) AS j
      ON CONFLICT DO NOTHING`.execute(db);
  // The searching user: a member of MEMBER_OF conversations spread over the whole table.
  await sql`
      INSERT INTO read_models.members (conversation_id, user_id, active, joined_seq, read_seq)
      SELECT md5('c' || (k * ${Math.floor(CONVERSATIONS / MEMBER_OF)}))::uuid::text, ${USER}, true, 0, 0
        FROM generate_series(0, ${MEMBER_OF - 1}) AS k`.execute(db);
  const seeded = performance.now();
  await sql`CREATE INDEX messages_search_idx ON read_models.messages USING gin (search_vector)`.execute(db);
  await sql`ANALYZE read_models.messages`.execute(db);
  await sql`ANALYZE read_models.members`.execute(db);
  const indexed = performance.now();
  const size = await sql<{ table: string; index: string }>`
      SELECT pg_size_pretty(pg_table_size('read_models.messages')) AS table,
             pg_size_pretty(pg_relation_size('read_models.messages_search_idx')) AS index`.execute(db);
  console.log(
    `\nseeded ${MESSAGES} messages in ${CONVERSATIONS} conversations in ${((seeded - t0) / 1000).toFixed(1)} s; GIN index ${((indexed - seeded) / 1000).toFixed(1)} s; table ${size.rows[0]?.table}, index ${size.rows[0]?.index}`,
  );
};

const main = async () => {
  // REUSE=<database> runs the queries on a database a KEEP=1 run left seeded.
  const reuse = process.env.REUSE;
  const database = reuse
    ? { name: reuse, url: `postgres://postgres@127.0.0.1:5432/${reuse}`, drop: async () => {} }
    : await createTestDatabase('searchbench');
  const pool = new pg.Pool({ connectionString: database.url, max: 2 });
  const db = createReadModelDb(pool);
  try {
    if (!reuse) await seedReadModel(db, pool);

    // Queries: common words, mid-frequency words, rare words, and two-word / phrase / exclusion queries.
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const word = (from: number, to: number) => WORDS[from + Math.floor(rnd() * (to - from))] ?? 'the';
    const kinds = [
      ['common', () => word(0, 30)],
      ['mid', () => word(30, 600)],
      ['rare', () => word(3000, WORDS.length)],
      ['two words', () => `${word(0, 200)} ${word(0, 2000)}`],
      ['phrase', () => `"${word(0, 50)} ${word(0, 50)}"`],
      ['or/not', () => `${word(0, 300)} or ${word(300, 3000)} -${word(0, 30)}`],
    ] as const;
    const timings: number[] = [];
    const byKind = new Map<string, number[]>();
    let hits = 0;
    for (let i = 0; i < QUERIES; i++) {
      const [kind, make] = kinds[i % kinds.length] ?? kinds[0];
      const q = make();
      const start = performance.now();
      try {
        const page = await searchMessages(db, USER, { q, limit: 20 });
        hits += page.items.length;
      } catch (err) {
        if (!(err instanceof Error && err.name === 'EmptySearchQueryError')) throw err;
      }
      const ms = performance.now() - start;
      timings.push(ms);
      byKind.set(kind, [...(byKind.get(kind) ?? []), ms]);
    }
    timings.sort((a, b) => a - b);
    console.log(
      `${QUERIES} searches as a member of ${MEMBER_OF} conversations (limit 20, ${hits} hits): p50 ${pct(timings, 50).toFixed(1)} ms, p99 ${pct(timings, 99).toFixed(1)} ms, max ${timings.at(-1)?.toFixed(1)} ms`,
    );
    for (const [kind, list] of byKind) {
      list.sort((a, b) => a - b);
      console.log(
        `  ${kind.padEnd(10)} p50 ${pct(list, 50).toFixed(1)} ms  p99 ${pct(list, 99).toFixed(1)} ms`,
      );
    }
    const load = await import('node:os').then((os) => os.loadavg());
    console.log(`host load average (1/5/15 min): ${load.map((l) => l.toFixed(2)).join(' / ')}`);
    for (const q of ['the', WORDS[5000] ?? 'kalo']) {
      const compiled = searchQuery(db, USER, { q, limit: 20 }).compile();
      const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${compiled.sql}`,
        [...compiled.parameters],
      );
      console.log(`\nEXPLAIN ANALYZE q=${q}\n${rows.map((r) => r['QUERY PLAN']).join('\n')}`);
    }
  } finally {
    await pool.end();
    if (process.env.KEEP === '1') console.log(`kept database ${database.name}`);
    else await database.drop();
  }
};

await main();
