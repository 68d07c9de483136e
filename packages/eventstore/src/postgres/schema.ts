import pg from 'pg';

/** Channel notified by every transaction that appended, at its commit (NOTIFY is per database). */
export const NOTIFY_CHANNEL = 'es_events';

/** Transaction-local setting that lets the scavenger delete expired events past the immutability trigger. */
export const SCAVENGER_SETTING = 'es.scavenging';

// Any fixed 64-bit key: serialises concurrent migrations from several processes starting at once.
const MIGRATION_LOCK_KEY = 7_304_155_013_101;

// Advisory-lock key (two-int form, separate from the one-bigint keys of leader election and the migration
// lock) of the log's append lock. Advisory locks are per database, so there is one such lock per log.
const APPEND_LOCK_NAMESPACE = 0x65730002;
const APPEND_LOCK_KEY = 0;

/**
 * Advisory-lock namespace (two-int form, the key `hashtext(user_id)`) taken by whatever stores a user's
 * data key or erases it, for the transaction: so an erasure and the transaction storing that user's
 * first key never both commit unseen by each other (a key beside a tombstone).
 */
export const DATA_KEY_LOCK_NAMESPACE = 0x65730003;

/** Transaction-local flag: this transaction holds the append lock and got its id after taking it. */
const APPEND_LOCK_HELD_SETTING = 'es.append_lock_held';

/**
 * Session setting bounding how long `es.append_batch` waits for the append lock (a Postgres interval,
 * e.g. `200ms`); unset: {@link DEFAULT_APPEND_LOCK_TIMEOUT}.
 */
export const APPEND_LOCK_TIMEOUT_SETTING = 'es.append_lock_timeout';
export const DEFAULT_APPEND_LOCK_TIMEOUT = '5s';

/**
 * The whole schema as idempotent DDL. `es.append_batch` does the work of an append inside the database,
 * so a group commit of many appends costs one round trip and one transaction. It takes no savepoints:
 * it holds the log's append lock from before its first check, so every check sees all committed appends
 * and nothing can fail half-way except a genuine error, which the caller handles by retrying the appends
 * one by one.
 */
const DDL = `
CREATE SCHEMA IF NOT EXISTS es;

-- The primary key is the log order, (transaction_id, global_position): appenders take their transaction
-- id under the append lock (below), so this is the order in which they held it, which is the order in
-- which they became visible. It doubles as the subscribers' index, keeping three indexes per event
-- written. (global_position alone, taken under the lock too, would also do while its sequence is not
-- cached; the pair stays because positions handed out and checkpoints stored before the lock are pairs.)
CREATE TABLE IF NOT EXISTS es.events (
  global_position bigserial   NOT NULL,
  transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
  stream_id       text        NOT NULL,
  revision        bigint      NOT NULL,
  event_id        uuid        NOT NULL UNIQUE,
  type            text        NOT NULL,
  data            jsonb       NOT NULL,
  metadata        jsonb       NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (transaction_id, global_position),
  UNIQUE (stream_id, revision)
);

CREATE TABLE IF NOT EXISTS es.streams (
  stream_id text   PRIMARY KEY,
  revision  bigint NOT NULL,
  metadata  jsonb  NOT NULL DEFAULT '{}'::jsonb
);

CREATE OR REPLACE FUNCTION es.refuse_event_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('${SCAVENGER_SETTING}', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'es.events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE OR REPLACE TRIGGER events_append_only
  BEFORE UPDATE OR DELETE ON es.events FOR EACH ROW EXECUTE FUNCTION es.refuse_event_change();
CREATE OR REPLACE TRIGGER events_no_truncate
  BEFORE TRUNCATE ON es.events FOR EACH STATEMENT EXECUTE FUNCTION es.refuse_event_change();

-- The log's append lock: every transaction that writes es.events takes it before its first write and
-- holds it to its end, and must not have a transaction id yet when it first takes it (refused here).
-- That makes the log order safe to read with no visibility horizon:
-- * transaction ids are handed out in increasing order, and an appender gets its id (at its first write)
--   while it holds the lock, so the transaction ids of appenders follow the order in which they held it;
-- * PostgreSQL ends a transaction by recording its commit (or abort), then removing it from the running
--   transactions (ProcArrayEndTransaction: from then on every new snapshot sees it committed), and only
--   then releasing its locks (CommitTransaction and AbortTransaction in xact.c: "this must be done
--   _before_ releasing locks we hold"; COMMIT PREPARED too). So whoever gets the lock next — and hence
--   every transaction with a larger id that writes events — ends after its predecessor is visible;
-- * so a snapshot that sees an event sees every event before it in (transaction_id, global_position),
--   and a reader may move past whatever it has read: nothing can commit behind it later.
-- Transactions that write no events never take the lock and hold nobody back, wherever they run; an
-- open appender holds back only the appends queued behind it. One transaction carries many appends
-- (group commit), so the lock costs little throughput. Notifying here, at most once per transaction,
-- wakes subscribers after every commit that appended, also one of a raw INSERT.
-- es.lock_appends takes the lock (waiting for it when wait, else only when free) and answers whether the
-- transaction holds it. Its checks and the lock are simple expressions, not statements: plpgsql
-- evaluates those without the executor, which an append pays for on every call.
CREATE OR REPLACE FUNCTION es.lock_appends(wait boolean) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  v_held text;
BEGIN
  IF current_setting('${APPEND_LOCK_HELD_SETTING}', true) = 'on' THEN
    RETURN true;
  END IF;
  IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
    RAISE EXCEPTION 'es.events must be the first write of its transaction'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'It got its id before the log''s append lock: its events could sort before events committed earlier, which readers would have passed.',
            HINT = 'Append in a transaction of its own, or before any other write of the transaction.';
  END IF;
  IF NOT pg_try_advisory_xact_lock(${APPEND_LOCK_NAMESPACE}, ${APPEND_LOCK_KEY}) THEN
    IF NOT wait THEN
      RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(${APPEND_LOCK_NAMESPACE}, ${APPEND_LOCK_KEY});
  END IF;
  -- Transaction-local: rolled back with a savepoint that took the lock (which releases the lock too).
  v_held := set_config('${APPEND_LOCK_HELD_SETTING}', 'on', true);
  PERFORM pg_notify('${NOTIFY_CHANNEL}', '');
  RETURN true;
END
$fn$;

-- The lock for whoever writes es.events by other means than es.append_batch (waits up to the session's
-- lock_timeout).
CREATE OR REPLACE FUNCTION es.take_append_lock() RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
  v_held boolean;
BEGIN
  v_held := es.lock_appends(true);
END
$fn$;

-- Writers that bypass es.append_batch (INSERT, COPY) take the lock too: a BEFORE ... FOR EACH STATEMENT
-- trigger fires before the statement computes its first row, and so before its defaults take a
-- transaction id and positions. (Like every trigger it is skipped with session_replication_role =
-- replica, which also bypasses the append-only trigger: such sessions are outside the log's guarantees.)
CREATE OR REPLACE FUNCTION es.lock_log_for_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  v_held boolean;
BEGIN
  v_held := es.lock_appends(true);
  RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER events_append_lock
  BEFORE INSERT ON es.events FOR EACH STATEMENT EXECUTE FUNCTION es.lock_log_for_insert();

-- batch: [{ "i": index, "s": stream id, "e": expected revision (null = any, -1 = no stream),
--           "ev": [{ "id", "type", "data", "metadata" }],
--           "k": optional data keys the events were sealed with: [{ "u": author, "k": kid,
--                "w": base64 of the wrapped key to store (absent: only check it) }] }];
-- appends to one stream in the order they apply.
-- o_status: ok | duplicate (all ids already in this stream: the earlier result) | conflict (o_revision =
-- actual revision) | id_conflict (some ids exist, or exist in another stream) | key_erased / key_taken (a
-- data key of "k" is not the author's stored key: erased, or another key stored first; nothing appended).
-- "k" needs the tables of migrateDataKeys (schema keys); appends without it never touch them.
CREATE OR REPLACE FUNCTION es.append_batch(batch jsonb)
RETURNS TABLE (o_index int, o_status text, o_revision bigint, o_transaction_id xid8, o_global_position bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  item jsonb;
  v_stream text;
  v_any boolean;
  v_expected bigint;
  v_count int;
  v_ids uuid[];
  v_current bigint;
  v_found int;
  v_found_here int;
  v_lock_timeout text;
  v_refused int[];
BEGIN
  -- The append lock first, before any check: all appends of the log are serialised, so the checks below
  -- see every earlier append committed. When it is taken, the wait is bounded, so that a transaction
  -- holding the lock (an open raw INSERT) fails appends with lock_not_available instead of queueing them
  -- for ever; the session's own lock_timeout applies again afterwards.
  IF NOT es.lock_appends(false) THEN
    v_lock_timeout := current_setting('lock_timeout');
    PERFORM set_config('lock_timeout',
      coalesce(nullif(current_setting('${APPEND_LOCK_TIMEOUT_SETTING}', true), ''), '${DEFAULT_APPEND_LOCK_TIMEOUT}'),
      true);
    PERFORM es.lock_appends(true);
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
  END IF;

  -- Data keys first (crypto-shredding): a writer's first key is stored in the transaction of the first
  -- events sealed with it, so it is durable before they are visible and costs no commit of its own. Keys
  -- are stored only for authors with no key and no tombstone (per-author lock: an erasure in flight
  -- either ran first, and its tombstone refuses the key, or waits and then destroys it); an append
  -- whose keys are not, after that, its authors' stored keys appends nothing.
  -- Every lookup of the key tables is a scalar subquery, one primary-key probe per key of the batch: as
  -- an anti-join the planner read the whole of keys.user_data_keys into a hash for each append (cost
  -- growing with the number of users ever seen: 6 ms of CPU per append at 10,000 users).
  -- (jsonb_path_exists is a simple expression: a batch that only checks its keys runs no statement to
  -- store one.)
  IF jsonb_path_exists(batch, '$[*].k') THEN
    IF jsonb_path_exists(batch, '$[*].k[*].w') THEN
      PERFORM pg_advisory_xact_lock(${DATA_KEY_LOCK_NAMESPACE}, hashtext(n.u))
         FROM (SELECT DISTINCT c->>'u' AS u
                 FROM jsonb_array_elements(batch) x, jsonb_array_elements(x->'k') c WHERE c ? 'w') n
        ORDER BY hashtext(n.u);
      INSERT INTO keys.user_data_keys (user_id, kid, wrapped)
      SELECT DISTINCT ON (c->>'u') c->>'u', (c->>'k')::uuid, decode(c->>'w', 'base64')
        FROM jsonb_array_elements(batch) x, jsonb_array_elements(x->'k') c
       WHERE c ? 'w' AND (SELECT t.user_id FROM keys.erased_users t WHERE t.user_id = c->>'u') IS NULL
       ORDER BY c->>'u'
      ON CONFLICT (user_id) DO NOTHING;
    END IF;
    SELECT array_agg(DISTINCT (x->>'i')::int) INTO v_refused
      FROM jsonb_array_elements(batch) x, jsonb_array_elements(x->'k') c
     WHERE (SELECT d.kid FROM keys.user_data_keys d WHERE d.user_id = c->>'u')
           IS DISTINCT FROM (c->>'k')::uuid;
    IF v_refused IS NOT NULL THEN
      RETURN QUERY
      SELECT (x->>'i')::int,
             CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(x->'k') c
                                WHERE (SELECT t.user_id FROM keys.erased_users t WHERE t.user_id = c->>'u')
                                      IS NOT NULL) THEN 'key_erased' ELSE 'key_taken' END,
             NULL::bigint, NULL::xid8, NULL::bigint
        FROM jsonb_array_elements(batch) x WHERE (x->>'i')::int = ANY (v_refused);
      SELECT coalesce(jsonb_agg(x), '[]'::jsonb) INTO batch
        FROM jsonb_array_elements(batch) x WHERE (x->>'i')::int <> ALL (v_refused);
    END IF;
  END IF;

  -- Fast path, the common case of a group commit: every append targets a different stream and no event
  -- id exists yet. Then all appends are checked and written set-based, a handful of statements for the
  -- whole group instead of several per append.
  -- Both lookups are correlated subqueries (one index probe per element) rather than joins: a join's
  -- plan follows the table statistics, and a plan made while es.events looked small (a fresh database
  -- before its first ANALYZE) hash-joined a sequential scan of the whole log into every append.
  IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(batch) x GROUP BY x->>'s' HAVING count(*) > 1)
     AND NOT EXISTS (
       SELECT 1 FROM jsonb_array_elements(batch) x, jsonb_array_elements(x->'ev') ev,
              LATERAL (SELECT 1 FROM es.events e WHERE e.event_id = (ev->>'id')::uuid LIMIT 1) found)
  THEN
    RETURN QUERY
    WITH appends AS (
      SELECT (x->>'i')::int AS idx, x->>'s' AS stream, (x->>'e')::bigint AS expected, x->'ev' AS events,
             jsonb_array_length(x->'ev') AS n,
             coalesce((SELECT s.revision FROM es.streams s WHERE s.stream_id = x->>'s'), -1) AS current
        FROM jsonb_array_elements(batch) x
    ),
    accepted AS (
      SELECT * FROM appends WHERE expected IS NULL OR current = greatest(expected, -1)
    ),
    inserted AS (
      INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
      SELECT a.stream, a.current + x.ord, (x.value->>'id')::uuid, x.value->>'type', x.value->'data',
             x.value->'metadata'
        FROM accepted a, jsonb_array_elements(a.events) WITH ORDINALITY AS x(value, ord)
       ORDER BY a.stream, x.ord
      RETURNING stream_id, global_position
    ),
    last_positions AS (
      SELECT i.stream_id, max(i.global_position) AS global_position FROM inserted i GROUP BY i.stream_id
    ),
    revisions AS (
      INSERT INTO es.streams AS s (stream_id, revision)
      SELECT a.stream, a.current + a.n FROM accepted a
      ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision
    )
    SELECT a.idx,
           CASE WHEN ok.idx IS NULL THEN 'conflict' ELSE 'ok' END,
           CASE WHEN ok.idx IS NULL THEN a.current ELSE a.current + a.n END,
           CASE WHEN ok.idx IS NULL THEN NULL ELSE pg_current_xact_id() END,
           lp.global_position
      FROM appends a
      LEFT JOIN accepted ok ON ok.idx = a.idx
      LEFT JOIN last_positions lp ON lp.stream_id = a.stream;
    RETURN;
  END IF;

  -- General path, one append at a time: repeated streams see their predecessors' writes, and event ids
  -- that already exist make an append an idempotent repeat (or an id conflict).
  FOR item IN SELECT value FROM jsonb_array_elements(batch) LOOP
    o_index := (item->>'i')::int;
    v_stream := item->>'s';
    v_any := jsonb_typeof(item->'e') IS DISTINCT FROM 'number';
    v_expected := CASE WHEN v_any THEN NULL ELSE (item->>'e')::bigint END;
    v_count := jsonb_array_length(item->'ev');
    SELECT array_agg((x->>'id')::uuid) INTO v_ids FROM jsonb_array_elements(item->'ev') x;

    -- We hold the append lock: every earlier writer has committed, and these reads see it all.
    SELECT s.revision INTO v_current FROM es.streams s WHERE s.stream_id = v_stream;
    IF NOT FOUND THEN
      v_current := -1;
    END IF;

    -- Idempotency by event id: a retry of an append that already happened returns its result.
    SELECT count(*)::int, (count(*) FILTER (WHERE e.stream_id = v_stream))::int
      INTO v_found, v_found_here
      FROM es.events e WHERE e.event_id = ANY (v_ids);
    IF v_found > 0 THEN
      IF v_found = v_count AND v_found_here = v_count THEN
        SELECT 'duplicate', e.revision, e.transaction_id, e.global_position
          INTO o_status, o_revision, o_transaction_id, o_global_position
          FROM es.events e WHERE e.event_id = ANY (v_ids) ORDER BY e.revision DESC LIMIT 1;
      ELSE
        o_status := 'id_conflict'; o_revision := v_current;
        o_transaction_id := NULL; o_global_position := NULL;
      END IF;
      RETURN NEXT;
      CONTINUE;
    END IF;

    IF NOT v_any AND v_current <> greatest(v_expected, -1) THEN
      o_status := 'conflict'; o_revision := v_current;
      o_transaction_id := NULL; o_global_position := NULL;
      RETURN NEXT;
      CONTINUE;
    END IF;

    WITH inserted AS (
      INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
      SELECT v_stream, v_current + x.ord, (x.value->>'id')::uuid, x.value->>'type', x.value->'data',
             x.value->'metadata'
        FROM jsonb_array_elements(item->'ev') WITH ORDINALITY AS x(value, ord)
       ORDER BY x.ord
      RETURNING global_position
    )
    SELECT max(global_position) INTO o_global_position FROM inserted;
    INSERT INTO es.streams AS s (stream_id, revision) VALUES (v_stream, v_current + v_count)
      ON CONFLICT (stream_id) DO UPDATE SET revision = EXCLUDED.revision;

    o_status := 'ok';
    o_revision := v_current + v_count;
    o_transaction_id := pg_current_xact_id();
    RETURN NEXT;
  END LOOP;
END
$fn$;

-- Deletes events older than their stream's maxAgeSeconds; the only path allowed past the trigger.
CREATE OR REPLACE FUNCTION es.scavenge_expired() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  v_deleted bigint;
BEGIN
  PERFORM set_config('${SCAVENGER_SETTING}', 'on', true);
  DELETE FROM es.events e
   USING es.streams s
   WHERE s.stream_id = e.stream_id
     AND s.metadata ? 'maxAgeSeconds'
     AND e.created_at < now() - make_interval(secs => (s.metadata->>'maxAgeSeconds')::double precision);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  PERFORM set_config('${SCAVENGER_SETTING}', 'off', true);
  RETURN v_deleted;
END
$fn$;
`;

/** Who holds the log's append lock, for the error of an append that timed out waiting for it. */
export const describeAppendLockHolder = async (pool: pg.Pool): Promise<string> => {
  const { rows } = await pool.query<{
    pid: number;
    state: string | null;
    application_name: string;
    open_seconds: string | null;
  }>(
    `SELECT a.pid, a.state, a.application_name, round(extract(epoch FROM now() - a.xact_start), 1) AS open_seconds
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 2
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [APPEND_LOCK_NAMESPACE, APPEND_LOCK_KEY],
  );
  const holder = rows[0];
  if (!holder) return 'its holder has ended since';
  return `held by backend pid ${holder.pid} (${holder.state ?? 'unknown state'}, transaction open ${holder.open_seconds ?? '?'} s, application "${holder.application_name}")`;
};

/**
 * Creates or updates the `es` schema. Idempotent, and safe when several processes start at once: an
 * advisory lock serialises them (CREATE ... IF NOT EXISTS alone races on the catalog).
 */
export const migrateEventStore = async (target: pg.Pool | string): Promise<void> => {
  const pool = typeof target === 'string' ? new pg.Pool({ connectionString: target, max: 1 }) : target;
  try {
    const client = await pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        await client.query(DDL);
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
      }
    } finally {
      client.release();
    }
  } finally {
    if (typeof target === 'string') await pool.end();
  }
};
