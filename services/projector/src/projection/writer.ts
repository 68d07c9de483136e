import type { Database } from '@chat/db';
import { START_POSITION_TEXT } from '@chat/db';
import type { RecordedEvent } from '@chat/eventstore';
import { type Kysely, sql, type Transaction } from 'kysely';
import {
  applyEvent,
  type BatchState,
  emptyBatchState,
  keysOf,
  type ProjectedEvent,
  pairKey,
  splitKey,
  toProjectedEvent,
} from './state.js';

// The I/O half of the projection: load the rows a batch touches, fold the batch in memory, write the
// changed rows back with multi-row upserts and move the checkpoint — all in the caller's transaction,
// so a crash anywhere leaves either the whole batch applied with its checkpoint or none of it.

type Trx = Transaction<Database> | Kysely<Database>;

/** Postgres caps a statement at 65,535 parameters; the widest table has 14 columns. */
const CHUNK = 2000;
const chunks = <T>(rows: T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += CHUNK) out.push(rows.slice(i, i + CHUNK));
  return out;
};

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

const load = async (trx: Trx, state: BatchState, events: ProjectedEvent[]): Promise<void> => {
  const keys = keysOf(events);
  if (keys.conversationIds.size > 0) {
    const rows = await trx
      .selectFrom('conversations')
      .selectAll()
      .where('conversation_id', 'in', [...keys.conversationIds])
      .execute();
    for (const r of rows) {
      state.conversations.set(r.conversation_id, {
        ...r,
        created_at: r.created_at.toISOString(),
        last_activity_at: r.last_activity_at.toISOString(),
        last_message_sent_at: iso(r.last_message_sent_at),
      });
    }
  }
  if (keys.memberKeys.size > 0) {
    const pairs = [...keys.memberKeys].map(splitKey);
    const rows = await trx
      .selectFrom('members')
      .selectAll()
      .where('conversation_id', 'in', [...new Set(pairs.map((p) => p[0]))])
      .where('user_id', 'in', [...new Set(pairs.map((p) => p[1]))])
      .execute();
    for (const r of rows) {
      state.members.set(pairKey(r.conversation_id, r.user_id), { ...r, muted_until: iso(r.muted_until) });
    }
  }
  if (keys.messageKeys.size > 0) {
    const pairs = [...keys.messageKeys].map(splitKey);
    const rows = await trx
      .selectFrom('messages')
      .selectAll()
      .where('conversation_id', 'in', [...new Set(pairs.map((p) => p[0]))])
      .where('message_id', 'in', [...new Set(pairs.map((p) => p[1]))])
      .execute();
    for (const r of rows) {
      state.messages.set(pairKey(r.conversation_id, r.message_id), {
        ...r,
        sent_at: r.sent_at.toISOString(),
        edited_at: iso(r.edited_at),
      });
    }
  }
};

const flush = async (trx: Trx, state: BatchState): Promise<void> => {
  const conversations = [...state.dirtyConversations].flatMap((k) => state.conversations.get(k) ?? []);
  for (const rows of chunks(conversations)) {
    await trx
      .insertInto('conversations')
      .values(rows)
      .onConflict((oc) =>
        oc.column('conversation_id').doUpdateSet((eb) => ({
          last_seq: eb.ref('excluded.last_seq'),
          last_activity_at: eb.ref('excluded.last_activity_at'),
          message_count: eb.ref('excluded.message_count'),
          last_message_id: eb.ref('excluded.last_message_id'),
          last_message_sender: eb.ref('excluded.last_message_sender'),
          last_message_preview: eb.ref('excluded.last_message_preview'),
          last_message_sent_at: eb.ref('excluded.last_message_sent_at'),
          last_message_seq: eb.ref('excluded.last_message_seq'),
          last_message_deleted: eb.ref('excluded.last_message_deleted'),
        })),
      )
      .execute();
  }
  const messages = [...state.dirtyMessages].flatMap((k) => state.messages.get(k) ?? []);
  for (const rows of chunks(messages)) {
    await trx
      .insertInto('messages')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['conversation_id', 'seq']).doUpdateSet((eb) => ({
          body: eb.ref('excluded.body'),
          edited_at: eb.ref('excluded.edited_at'),
          deleted: eb.ref('excluded.deleted'),
        })),
      )
      .execute();
  }
  const members = [...state.dirtyMembers].flatMap((k) => state.members.get(k) ?? []);
  for (const rows of chunks(members)) {
    await trx
      .insertInto('members')
      .values(rows)
      .onConflict((oc) =>
        oc.columns(['conversation_id', 'user_id']).doUpdateSet((eb) => ({
          active: eb.ref('excluded.active'),
          joined_seq: eb.ref('excluded.joined_seq'),
          ordinal: eb.ref('excluded.ordinal'),
          read_seq: eb.ref('excluded.read_seq'),
          read_msg_index: eb.ref('excluded.read_msg_index'),
          muted_until: eb.ref('excluded.muted_until'),
        })),
      )
      .execute();
  }
  // A watermark set below the newest message: count the messages up to it (an index lookup each).
  const pending = [...state.readIndexPending].map(splitKey);
  for (const rows of chunks(pending)) {
    await trx
      .updateTable('members as m')
      .set((eb) => ({
        read_msg_index: eb.fn.coalesce(
          eb
            .selectFrom('messages as x')
            .select('x.msg_index')
            .whereRef('x.conversation_id', '=', 'm.conversation_id')
            .whereRef('x.seq', '<=', 'm.read_seq')
            .orderBy('x.seq', 'desc')
            .limit(1),
          eb.lit(0),
        ),
      }))
      .where((eb) =>
        eb.or(rows.map(([c, u]) => eb.and([eb('m.conversation_id', '=', c), eb('m.user_id', '=', u)]))),
      )
      .execute();
  }
};

export type BatchResult = {
  /** Events past the checkpoint that this batch applied (or skipped as not projected). */
  applied: number;
  /** Checkpoint after the batch. */
  position: string;
  unreadConversations: Set<string>;
  unreadPairs: Set<string>;
};

/**
 * Applies `events` (in log order) inside `trx`: skips those at or below the stored checkpoint (so a
 * redelivered batch, or one that raced a rebuild's swap, is applied at most once), then moves it.
 */
export const projectBatch = async (
  trx: Trx,
  checkpointName: string,
  events: readonly RecordedEvent[],
  onMalformed: (event: RecordedEvent, err: unknown) => void = () => {},
): Promise<BatchResult> => {
  const row = await trx
    .selectFrom('checkpoints')
    .select('position')
    .where('name', '=', checkpointName)
    .forUpdate()
    .executeTakeFirst();
  const checkpoint = row?.position ?? START_POSITION_TEXT;
  const fresh = events.filter((e) => e.position > checkpoint);
  const last = fresh.at(-1);
  const state = emptyBatchState();
  if (!last) {
    return { applied: 0, position: checkpoint, unreadConversations: new Set(), unreadPairs: new Set() };
  }
  const projected: ProjectedEvent[] = [];
  for (const e of fresh) {
    try {
      const p = toProjectedEvent(e);
      if (p) projected.push(p);
    } catch (err) {
      onMalformed(e, err);
    }
  }
  await load(trx, state, projected);
  for (const e of projected) applyEvent(state, e);
  await flush(trx, state);
  await trx
    .insertInto('checkpoints')
    .values({ name: checkpointName, position: last.position, updated_at: sql`now()` })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet((eb) => ({ position: eb.ref('excluded.position'), updated_at: sql`now()` })),
    )
    .execute();
  return {
    applied: fresh.length,
    position: last.position,
    unreadConversations: state.unreadConversations,
    unreadPairs: state.unreadPairs,
  };
};
