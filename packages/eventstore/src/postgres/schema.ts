import pg from 'pg';

/** Channel the append function notifies after each transaction that appended (NOTIFY is per database). */
export const NOTIFY_CHANNEL = 'es_events';

/** Transaction-local setting that lets the scavenger delete expired events past the immutability trigger. */
export const SCAVENGER_SETTING = 'es.scavenging';

// Any fixed 64-bit key: serialises concurrent migrations from several processes starting at once.
const MIGRATION_LOCK_KEY = 7_304_155_013_101;

// Advisory-lock namespace (first key of the two-int form) for per-stream append locks; the two-int key
// space is separate from the one-bigint keys that leader election and the migration lock use.
const STREAM_LOCK_NAMESPACE = 0x65730001;

/**
 * The whole schema as idempotent DDL. `es.append_batch` does the work of an append inside the database,
 * so a group commit of many appends costs one round trip and one transaction. It takes no savepoints:
 * each append's stream is locked first, so every check after that sees all committed writes to the
 * stream and nothing can fail half-way except a genuine error, which the caller handles by retrying the
 * appends one by one.
 */
const DDL = `
CREATE SCHEMA IF NOT EXISTS es;

-- The primary key is the log order, (transaction_id, global_position): transaction id first, so that a
-- transaction committing late is read after the ones that committed before it rather than skipped. It
-- doubles as the subscribers' index, keeping three indexes per event written.
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

-- batch: [{ "i": index, "s": stream id, "e": expected revision (null = any, -1 = no stream),
--           "ev": [{ "id", "type", "data", "metadata" }] }], sorted by stream id by the caller so that
-- concurrent batches lock stream rows in one order and cannot deadlock.
-- o_status: ok | duplicate (all ids already in this stream: the earlier result) | conflict (o_revision =
-- actual revision) | id_conflict (some ids exist, or exist in another stream).
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
  v_appended boolean := false;
  v_lock int;
BEGIN
  -- Take every stream's lock before the first write. Advisory locks need no transaction id, so the id
  -- is assigned only after the locks are held: whoever wrote a stream before us committed before we
  -- got its lock, and so has a lower transaction id. That keeps (transaction_id, global_position) — the
  -- subscribers' log order — in revision order within every stream, also when a group commit spans
  -- several streams. It requires this call to be the transaction's first write (it is, in the adapter).
  FOR v_lock IN SELECT DISTINCT hashtext(x->>'s') FROM jsonb_array_elements(batch) x ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(${STREAM_LOCK_NAMESPACE}, v_lock);
  END LOOP;

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
    PERFORM pg_notify('${NOTIFY_CHANNEL}', '');
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

    -- We hold the stream's lock: every earlier writer of it has committed, and these reads see it all.
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
    v_appended := true;
    RETURN NEXT;
  END LOOP;

  IF v_appended THEN
    PERFORM pg_notify('${NOTIFY_CHANNEL}', '');
  END IF;
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
