import { saveCheckpointSql, transaction, writeBehind } from '@chat/consumer';
import {
  type ConversationRow,
  createReadModelDb,
  type MemberRow,
  type MessageRow,
  type ReadModelDb,
} from '@chat/db';
import type { RecordedEvent } from '@chat/eventstore';
import { type RawBuilder, sql } from 'kysely';
import type pg from 'pg';
import { copyInto, copyText } from './copy.js';
import { clearModerationChanges, moderationStatements } from './moderation.js';
import {
  applyEvent,
  type BatchKeys,
  type BatchState,
  type ConversationState,
  emptyBatchState,
  keysOf,
  MalformedEventError,
  type MemberState,
  type MessageState,
  type ProjectedEvent,
  pairKey,
  type ReactionState,
  splitKey,
  toProjectedEvent,
} from './state.js';

// The I/O half of the projection: load the rows a batch touches, fold the batch in memory, write the
// changed rows back with multi-row upserts — all in the caller's transaction, which also moves the
// checkpoint, so a crash anywhere leaves either the whole batch applied with its checkpoint or none of it.

type Trx = ReadModelDb;

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

/** A timestamp as `json_agg` writes it, as the fold keeps it (`Date#toISOString`, milliseconds). */
const isoOf = (t: string): string => new Date(t).toISOString();
const isoOrNull = (t: string | null): string | null => (t === null ? null : isoOf(t));

type Json<R> = {
  [K in keyof R]: R[K] extends Date ? string : R[K] extends Date | null ? string | null : R[K];
};

const load = async (trx: Trx, schema: string, state: BatchState, keys: BatchKeys): Promise<void> => {
  // Conversations and members in one statement (one round trip of a live batch's few), as JSON arrays.
  // Members by exact (conversation, user) pairs through unnest: a batch's senders in busy groups would
  // otherwise load every member of every touched conversation.
  if (keys.conversationIds.size + keys.memberKeys.size > 0) {
    const pairs = [...keys.memberKeys].map(splitKey);
    const { rows } = await sql<{ conversations: Json<ConversationRow>[]; members: Json<MemberRow>[] }>`
      SELECT (SELECT coalesce(json_agg(c), '[]') FROM ${sql.id(schema, 'conversations')} c
               WHERE c.conversation_id = ANY(${[...keys.conversationIds]}::text[])) AS conversations,
             (SELECT coalesce(json_agg(m), '[]') FROM ${sql.id(schema, 'members')} m
                JOIN unnest(${pairs.map((p) => p[0])}::text[], ${pairs.map((p) => p[1])}::text[]) AS k(c, u)
                  ON m.conversation_id = k.c AND m.user_id = k.u) AS members`.execute(trx);
    const loaded = rows[0];
    for (const r of loaded?.conversations ?? []) {
      state.conversations.set(r.conversation_id, {
        ...r,
        created_at: isoOf(r.created_at),
        last_activity_at: isoOf(r.last_activity_at),
        last_message_sent_at: isoOrNull(r.last_message_sent_at),
      });
    }
    for (const r of loaded?.members ?? []) {
      state.members.set(pairKey(r.conversation_id, r.user_id), {
        ...r,
        muted_until: isoOrNull(r.muted_until),
      });
    }
  }
  if (keys.messageKeys.size > 0) {
    const pairs = [...keys.messageKeys].map(splitKey);
    const columns = sql.join(MESSAGE_COLUMNS.map(([name]) => sql`x.${sql.id(name)}`));
    const { rows } = await sql<Omit<MessageRow, 'search_vector'>>`
      SELECT ${columns} FROM ${sql.id(schema, 'messages')} x
        JOIN unnest(${pairs.map((p) => p[0])}::text[], ${pairs.map((p) => p[1])}::text[]) AS k(c, id)
          ON x.conversation_id = k.c AND x.message_id = k.id`.execute(trx);
    for (const r of rows) {
      state.messages.set(pairKey(r.conversation_id, r.message_id), {
        ...r,
        sent_at: r.sent_at.toISOString(),
        edited_at: iso(r.edited_at),
        last_reply_at: iso(r.last_reply_at),
      });
    }
  }
};

/**
 * Multi-row upsert from one JSON array of the rows (`json_to_recordset`): a fixed number of parameters
 * however many rows, and serialised by `JSON.stringify` rather than by pg's per-element array escaping,
 * which was a tenth of a replay's Node time.
 */
const upsert = <R extends object>(
  schema: string,
  table: string,
  rows: readonly R[],
  columns: readonly (readonly [keyof R & string, string])[],
  conflict: readonly string[],
  /** Columns an existing row takes over; none: an existing row is kept as it is. */
  update: readonly string[],
): RawBuilder<unknown> | undefined =>
  insertJson(schema, table, rows, columns, ['upsert', ...conflict, '', ...update], () => {
    const onConflict =
      update.length === 0
        ? 'DO NOTHING'
        : `DO UPDATE SET ${update.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}`;
    return ` ON CONFLICT (${conflict.map(quoteIdent).join(', ')}) ${onConflict}`;
  });

/** A multi-row insert of rows known to be new (no arbiter index probed, no conflict handling). */
const insert = <R extends object>(
  schema: string,
  table: string,
  rows: readonly R[],
  columns: readonly (readonly [keyof R & string, string])[],
): RawBuilder<unknown> | undefined => insertJson(schema, table, rows, columns, ['insert'], () => '');

/** `INSERT … SELECT … FROM json_to_recordset(<rows>)` and `clause` (its statement text built once). */
const insertJson = <R extends object>(
  schema: string,
  table: string,
  rows: readonly R[],
  columns: readonly (readonly [keyof R & string, string])[],
  shape: readonly string[],
  clause: () => string,
): RawBuilder<unknown> | undefined => {
  if (rows.length === 0) return undefined;
  const [head, tail] = statementText([schema, table, ...shape], () => {
    const names = columns.map(([name]) => quoteIdent(name)).join(', ');
    return [
      `INSERT INTO ${quoteIdent(schema)}.${quoteIdent(table)} (${names}) SELECT ${names} FROM json_to_recordset(`,
      `::json) AS x(${recordType(columns)})${clause()}`,
    ];
  });
  return sql`${sql.raw(head)}${JSON.stringify(rows)}${sql.raw(tail)}`;
};

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const recordType = (columns: readonly (readonly [string, string])[]): string =>
  columns.map(([name, type]) => `${quoteIdent(name)} ${type}`).join(', ');

/**
 * The SQL around a write's one parameter (the rows as JSON), built once per statement shape: composing
 * it from kysely's identifier nodes for every batch, and kysely compiling those nodes again, was about a
 * fifth of a live batch's Node time (batch.bench.ts).
 */
const statementTexts = new Map<string, readonly [string, string]>();
const statementText = (
  key: readonly string[],
  build: () => readonly [string, string],
): readonly [string, string] => {
  const k = key.join('\u0000');
  let text = statementTexts.get(k);
  if (!text) {
    text = build();
    // Every rebuild's shadow schema adds its own few shapes: keep the map from growing without bound.
    if (statementTexts.size >= 64) statementTexts.clear();
    statementTexts.set(k, text);
  }
  return text;
};

/**
 * The columns the writer sends for a row type, with their SQL types: every column of the row, or the
 * list does not compile (a column added to a table's interface cannot be forgotten here).
 */
const columnsOf =
  <Row>() =>
  <const C extends readonly (readonly [keyof Row, string])[]>(
    columns: C &
      ([Exclude<keyof Row, C[number][0]>] extends [never]
        ? unknown
        : { missing: Exclude<keyof Row, C[number][0]> }),
  ): C =>
    columns;

const CONVERSATION_COLUMNS = columnsOf<ConversationState>()([
  ['conversation_id', 'text'],
  ['kind', 'text'],
  ['title', 'text'],
  ['created_by', 'text'],
  ['created_at', 'timestamptz'],
  ['last_seq', 'int4'],
  ['last_activity_at', 'timestamptz'],
  ['message_count', 'int4'],
  ['last_message_id', 'text'],
  ['last_message_sender', 'text'],
  ['last_message_preview', 'text'],
  ['last_message_sent_at', 'timestamptz'],
  ['last_message_seq', 'int4'],
  ['last_message_deleted', 'bool'],
]);

const MESSAGE_COLUMNS = columnsOf<MessageState>()([
  ['conversation_id', 'text'],
  ['seq', 'int4'],
  ['message_id', 'text'],
  ['msg_index', 'int4'],
  ['sender_id', 'text'],
  ['body', 'text'],
  ['reply_to', 'text'],
  ['sent_at', 'timestamptz'],
  ['edited_at', 'timestamptz'],
  ['deleted', 'bool'],
  ['deleted_by', 'text'],
  ['thread_root_id', 'text'],
  ['reply_count', 'int4'],
  ['last_reply_at', 'timestamptz'],
  ['thread_participants', 'text[]'],
]);
const MESSAGE_COLUMN_NAMES = MESSAGE_COLUMNS.map(([name]) => name);

const REACTION_COLUMNS = columnsOf<ReactionState>()([
  ['conversation_id', 'text'],
  ['message_id', 'text'],
  ['reaction', 'text'],
  ['user_id', 'text'],
  ['seq', 'int4'],
]);

const MEMBER_COLUMNS = columnsOf<MemberState>()([
  ['conversation_id', 'text'],
  ['user_id', 'text'],
  ['active', 'bool'],
  ['joined_seq', 'int4'],
  ['ordinal', 'int4'],
  ['read_seq', 'int4'],
  ['read_msg_index', 'int4'],
  ['muted_until', 'timestamptz'],
  ['notification_level', 'text'],
  ['role', 'text'],
]);

/** The rows a flush writes: by default every changed row of the batch, all as upserts. */
type FlushRows = {
  conversations: readonly ConversationState[];
  members: readonly MemberState[];
  /** Upserted: rows that may be in the table already. */
  messages: readonly MessageState[];
  /** Inserted as they are: rows a replay knows are not in the table (sent in this page). */
  newMessages?: readonly MessageState[];
};

const rowsOf = <R>(keys: Iterable<string>, rows: ReadonlyMap<string, R>): R[] => {
  const out: R[] = [];
  for (const k of keys) {
    const row = rows.get(k);
    if (row) out.push(row);
  }
  return out;
};

const dirtyRows = (state: BatchState): FlushRows => ({
  conversations: rowsOf(state.dirtyConversations, state.conversations),
  members: rowsOf(state.dirtyMembers, state.members),
  messages: rowsOf(state.dirtyMessages, state.messages),
});

const upsertConversations = (schema: string, rows: readonly ConversationState[]) =>
  upsert(
    schema,
    'conversations',
    rows,
    CONVERSATION_COLUMNS,
    ['conversation_id'],
    [
      'last_seq',
      'last_activity_at',
      'message_count',
      'last_message_id',
      'last_message_sender',
      'last_message_preview',
      'last_message_sent_at',
      'last_message_seq',
      'last_message_deleted',
    ],
  );

const upsertMembers = (schema: string, rows: readonly MemberState[]) =>
  upsert(
    schema,
    'members',
    rows,
    MEMBER_COLUMNS,
    ['conversation_id', 'user_id'],
    [
      'active',
      'joined_seq',
      'ordinal',
      'read_seq',
      'read_msg_index',
      'muted_until',
      'notification_level',
      'role',
    ],
  );

/** Rows per statement when a replay writes its deferred rows (up to the whole cache at once). */
const DEFERRED_ROWS_PER_STATEMENT = 5000;

/** Upserts of a replay's deferred rows, in statements of a bounded size. */
const deferredRowStatements = (
  schema: string,
  conversations: readonly ConversationState[],
  members: readonly MemberState[],
): RawBuilder<unknown>[] => {
  const out: (RawBuilder<unknown> | undefined)[] = [];
  for (let i = 0; i < conversations.length; i += DEFERRED_ROWS_PER_STATEMENT)
    out.push(upsertConversations(schema, conversations.slice(i, i + DEFERRED_ROWS_PER_STATEMENT)));
  for (let i = 0; i < members.length; i += DEFERRED_ROWS_PER_STATEMENT)
    out.push(upsertMembers(schema, members.slice(i, i + DEFERRED_ROWS_PER_STATEMENT)));
  return out.filter((w) => w !== undefined);
};

/**
 * The statements writing the batch's changed rows: one statement with data-modifying CTEs (one round
 * trip instead of three, which is most of a small live batch's latency), then the watermark recount if
 * any. Built synchronously — every row is serialised by the time this returns — so the caller may
 * change `state` again while they run.
 */
const flushStatements = (
  schema: string,
  state: BatchState,
  rows: FlushRows = dirtyRows(state),
): RawBuilder<unknown>[] => {
  const writes: (RawBuilder<unknown> | undefined)[] = [];
  writes.push(upsertConversations(schema, rows.conversations));
  writes.push(
    upsert(
      schema,
      'messages',
      rows.messages,
      MESSAGE_COLUMNS,
      ['conversation_id', 'seq'],
      ['body', 'edited_at', 'deleted', 'deleted_by', 'reply_count', 'last_reply_at', 'thread_participants'],
    ),
  );
  writes.push(insert(schema, 'messages', rows.newMessages ?? [], MESSAGE_COLUMNS));
  writes.push(upsertMembers(schema, rows.members));
  const reactions = [...state.reactions.values()];
  writes.push(
    upsert(
      schema,
      'message_reactions',
      reactions.flatMap((r) => (r.add ? [r.row] : [])),
      REACTION_COLUMNS,
      ['conversation_id', 'message_id', 'reaction', 'user_id'],
      [],
    ),
  );
  // Data-modifying CTEs run to completion whether or not the main query reads them.
  const ctes = writes.flatMap((w, i) => (w ? [sql`${sql.id(`w${i}`)} AS (${w})`] : []));
  const statements = ctes.length > 0 ? [sql`WITH ${sql.join(ctes)} SELECT 1`] : [];
  // Removals first, in a statement of their own: CTEs of one statement see the same snapshot, so an
  // insert there could still meet the row its batch removed.
  const removed = reactions.filter((r) => r.remove).map((r) => r.row);
  if (removed.length > 0) {
    statements.unshift(sql`
      DELETE FROM ${sql.id(schema, 'message_reactions')} AS r
       USING json_to_recordset(${JSON.stringify(removed)}::json)
             AS x(conversation_id text, message_id text, reaction text, user_id text)
       WHERE (r.conversation_id, r.message_id, r.reaction, r.user_id)
           = (x.conversation_id, x.message_id, x.reaction, x.user_id)`);
  }
  statements.push(...moderationStatements(schema, state.moderation));
  // Erasures: after the batch's rows, so rows written above lose the text too.
  const erased = [...state.erasedUsers];
  if (erased.length > 0) {
    statements.push(sql`
      UPDATE ${sql.id(schema, 'messages')} SET body = NULL
       WHERE sender_id = ANY(${erased}::text[]) AND NOT deleted AND body IS NOT NULL`);
    statements.push(sql`
      UPDATE ${sql.id(schema, 'conversations')}
         SET last_message_preview = CASE WHEN last_message_sender = ANY(${erased}::text[])
                                          AND last_message_deleted IS NOT TRUE
                                         THEN NULL ELSE last_message_preview END,
             title = CASE WHEN created_by = ANY(${erased}::text[]) THEN NULL ELSE title END
       WHERE (last_message_sender = ANY(${erased}::text[]) AND last_message_preview IS NOT NULL
              AND last_message_deleted IS NOT TRUE)
          OR (created_by = ANY(${erased}::text[]) AND title IS NOT NULL)`);
  }
  // A watermark set below the newest message: count the messages up to it (an index lookup each).
  const pending = [...state.readIndexPending].map(splitKey);
  if (pending.length > 0) {
    statements.push(sql`
      UPDATE ${sql.id(schema, 'members')} AS m
         SET read_msg_index = coalesce((
               SELECT x.msg_index FROM ${sql.id(schema, 'messages')} x
                WHERE x.conversation_id = m.conversation_id AND x.seq <= m.read_seq
                ORDER BY x.seq DESC LIMIT 1), 0)
        FROM unnest(${pending.map((p) => p[0])}::text[], ${pending.map((p) => p[1])}::text[]) AS k(c, u)
       WHERE m.conversation_id = k.c AND m.user_id = k.u`);
  }
  return statements;
};

/** Called for an event the projection cannot apply; it may throw to fail the batch instead. */
export type OnRejected = (event: RecordedEvent, error: MalformedEventError) => void;

const toProjected = (events: readonly RecordedEvent[], onRejected: OnRejected): ProjectedEvent[] => {
  const projected: ProjectedEvent[] = [];
  for (const e of events) {
    try {
      const p = toProjectedEvent(e);
      if (p) projected.push(p);
    } catch (err) {
      if (!(err instanceof MalformedEventError)) throw err;
      onRejected(e, err);
    }
  }
  return projected;
};

export type BatchResult = Pick<BatchState, 'unreadPairs' | 'deletedUnread'>;

/**
 * Applies `events` (in log order) to the read models in `schema`, inside the caller's transaction
 * (which moves the checkpoint). Returns whose unread counts may have changed.
 */
export const projectEvents = async (
  trx: Trx,
  schema: string,
  events: readonly RecordedEvent[],
  onRejected: OnRejected,
): Promise<BatchResult> => {
  const state = emptyBatchState();
  const projected = toProjected(events, onRejected);
  await load(trx, schema, state, keysOf(projected));
  for (const e of projected) applyEvent(state, e);
  for (const statement of flushStatements(schema, state)) await statement.execute(trx);
  return { unreadPairs: state.unreadPairs, deletedUnread: state.deletedUnread };
};

/** Rows kept between pages of a replay; past this many members the caches start over (reloaded). */
const REPLAY_CACHE_MAX_MEMBERS = 250_000;

/** Events a replay folds between two turns of the event loop. */
const REPLAY_SLICE = 1000;
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export type Replayer = {
  /** Folds `events` (the next page in log order) and starts writing it; resolves when it may be called again. */
  apply(events: readonly RecordedEvent[]): Promise<void>;
  /** Resolves when every page handed to `apply` is written. */
  drain(): Promise<void>;
};

/**
 * Replays pages into a schema nothing else writes (a rebuild's shadow), overlapping Node and Postgres:
 * page N+1 is folded while page N's rows are written. That needs the rows as page N left them without
 * reading them back, so conversations and members stay in memory between pages; a page loads only the
 * rows it touches that are not there (messages it edits, members whose watermark Postgres recounted, all
 * of them after the cache starts over), and it waits for the writes in flight before such a load. One
 * page's writes run at a time, in page order; each page moves the `progress` checkpoint, if given.
 *
 * Nothing reads the schema before `drain`, so a changed conversation or member row is written once when
 * it has to be, not with every page that changes it (a group's rows changed with nearly every message:
 * most of a replay's row writes): when Postgres itself reads or changes it (a watermark recount, an
 * erasure), before the cache starts over, and at `drain`. Messages sent in a page are inserted as they
 * are, with COPY; only rows loaded from the table are upserted.
 */
export const createReplayer = (options: {
  pool: pg.Pool;
  schema: string;
  /** Checkpoint row showing how far the replay got (`chatctl stats`, the rebuild progress metric). */
  progress?: string;
  onRejected: OnRejected;
  cacheMaxMembers?: number;
  /**
   * Awaited before a page reads messages back from the table (loads the ones its events change, recounts
   * watermarks), after the writes in flight have landed: a rebuild creates the indexes it deferred here.
   */
  beforeMessageLookup?: () => Promise<void>;
}): Replayer => {
  const { pool, schema, progress } = options;
  const cacheMaxMembers = options.cacheMaxMembers ?? REPLAY_CACHE_MAX_MEMBERS;
  const db = createReadModelDb(pool, schema);
  const state = emptyBatchState();
  const pageWrites = writeBehind();
  // One transaction per page, committed without waiting for its WAL flush: a replay that crashes is
  // started over from scratch anyway, and the swap that publishes it is a transaction of its own.
  // The page's new messages go first, with COPY (most of what a replay writes; every statement after
  // them may read or change them). The SET and the checkpoint ride on BEGIN's and COMMIT's round trips:
  // each round trip waits for this thread, which is folding the next page meanwhile.
  const run = (newMessages: string, statements: RawBuilder<unknown>[], position: string | undefined) =>
    transaction(
      pool,
      async (client) => {
        await copyInto(client, schema, 'messages', MESSAGE_COLUMN_NAMES, newMessages);
        const trx = createReadModelDb(client, schema);
        for (const statement of statements) await statement.execute(trx);
      },
      {
        begin: 'SET LOCAL synchronous_commit = off',
        beforeCommit: () =>
          progress && position !== undefined ? saveCheckpointSql(progress, position) : undefined,
      },
    );
  /** The deferred rows among `keys` (all of them when `only` is omitted), no longer dirty once taken. */
  const take = <R>(dirty: Set<string>, rows: ReadonlyMap<string, R>, only?: ReadonlySet<string>): R[] => {
    const keys = only ? [...only].filter((k) => dirty.has(k)) : [...dirty];
    for (const k of keys) dirty.delete(k);
    return rowsOf(keys, rows);
  };
  return {
    async apply(events) {
      const last = events.at(-1);
      if (!last) return;
      // In slices, letting the event loop run between them: the previous page's write goes on meanwhile,
      // and each of its round trips waits for this thread.
      const projected: ProjectedEvent[] = [];
      for (let i = 0; i < events.length; i += REPLAY_SLICE) {
        if (i > 0) await breathe();
        projected.push(...toProjected(events.slice(i, i + REPLAY_SLICE), options.onRejected));
      }
      const missing = missingKeys(state, keysOf(projected));
      if (missing.conversationIds.size + missing.memberKeys.size + missing.messageKeys.size > 0) {
        await pageWrites.drain();
        if (missing.messageKeys.size > 0) await options.beforeMessageLookup?.();
        await load(db, schema, state, missing);
      }
      // Messages are held for one page only: those here now came from the table.
      const stored = new Set(state.messages.keys());
      for (let i = 0; i < projected.length; i++) {
        if (i > 0 && i % REPLAY_SLICE === 0) await breathe();
        applyEvent(state, projected[i]!);
      }
      if (state.readIndexPending.size > 0 && options.beforeMessageLookup) {
        await pageWrites.drain();
        await options.beforeMessageLookup();
      }
      // An erasure rewrites rows in SQL and the cache is about to start over: write every deferred row.
      const all = state.erasedUsers.size > 0 || state.members.size > cacheMaxMembers;
      const messages: MessageState[] = [];
      const newMessages: MessageState[] = [];
      for (const key of state.dirtyMessages) {
        const row = state.messages.get(key);
        if (row) (stored.has(key) ? messages : newMessages).push(row);
      }
      // First the deferred rows due now; then the page's statements, whose watermark recounts and
      // erasures read and change them.
      const statements = [
        ...deferredRowStatements(
          schema,
          all ? take(state.dirtyConversations, state.conversations) : [],
          // Postgres recounts pending watermarks from the member rows: those must be in the table.
          take(state.dirtyMembers, state.members, all ? undefined : state.readIndexPending),
        ),
        ...flushStatements(schema, state, { conversations: [], members: [], messages, newMessages: [] }),
      ];
      // Postgres recounts these watermarks: the copies here are stale from now on.
      for (const key of state.readIndexPending) state.members.delete(key);
      state.messages.clear();
      state.reactions.clear();
      clearModerationChanges(state.moderation);
      if (state.members.size > cacheMaxMembers) {
        state.members.clear();
        state.conversations.clear();
      }
      for (const set of [
        state.dirtyMessages,
        state.readIndexPending,
        state.unreadPairs,
        state.deletedUnread,
        state.erasedUsers,
      ]) {
        set.clear();
      }
      const copy = copyText(newMessages, MESSAGE_COLUMN_NAMES);
      await pageWrites.start(() => run(copy, statements, last.position));
    },
    async drain() {
      if (state.dirtyConversations.size + state.dirtyMembers.size > 0) {
        const statements = deferredRowStatements(
          schema,
          take(state.dirtyConversations, state.conversations),
          take(state.dirtyMembers, state.members),
        );
        await pageWrites.start(() => run('', statements, undefined));
      }
      await pageWrites.drain();
    },
  };
};
/** The keys of `keys` whose rows `state` does not hold yet. */
const missingKeys = (state: BatchState, keys: BatchKeys): BatchKeys => ({
  conversationIds: new Set([...keys.conversationIds].filter((k) => !state.conversations.has(k))),
  memberKeys: new Set([...keys.memberKeys].filter((k) => !state.members.has(k))),
  messageKeys: new Set([...keys.messageKeys].filter((k) => !state.messages.has(k))),
});
