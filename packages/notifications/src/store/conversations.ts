import type { ConversationKind, NotificationLevel } from '@chat/events';
import { type ConversationState, setLevel } from '../domain/conversation.js';
import type { Db } from './db.js';

/** Loads the stored state of these conversations (unknown ids are absent from the result). */
export const loadConversations = async (db: Db, ids: readonly string[]): Promise<ConversationState[]> => {
  if (ids.length === 0) return [];
  // Sequential: the caller's transaction is one connection, which runs one query at a time anyway.
  const convs = await db.query<{ conversation_id: string; kind: ConversationKind }>(
    'SELECT conversation_id, kind FROM notifier.conversations WHERE conversation_id = ANY($1::text[])',
    [ids],
  );
  const members = await db.query<{ conversation_id: string; user_id: string }>(
    'SELECT conversation_id, user_id FROM notifier.members WHERE conversation_id = ANY($1::text[])',
    [ids],
  );
  const mutes = await db.query<{ conversation_id: string; user_id: string; until: Date }>(
    'SELECT conversation_id, user_id, until FROM notifier.mutes WHERE conversation_id = ANY($1::text[])',
    [ids],
  );
  const levels = await db.query<{ conversation_id: string; user_id: string; level: NotificationLevel }>(
    'SELECT conversation_id, user_id, level FROM notifier.levels WHERE conversation_id = ANY($1::text[])',
    [ids],
  );
  const byId = new Map<string, ConversationState>();
  for (const c of convs.rows) {
    byId.set(c.conversation_id, {
      conversationId: c.conversation_id,
      kind: c.kind,
      members: new Set(),
      levels: new Map(),
      everyMessage: new Set(),
      mutes: new Map(),
    });
  }
  for (const m of members.rows) byId.get(m.conversation_id)?.members.add(m.user_id);
  for (const m of mutes.rows) byId.get(m.conversation_id)?.mutes.set(m.user_id, m.until.getTime());
  for (const l of levels.rows) {
    const state = byId.get(l.conversation_id);
    if (state) setLevel(state, l.user_id, l.level);
  }
  return [...byId.values()];
};

/**
 * Membership, mute and level changes of one batch, coalesced per (conversation, user) so the last
 * change wins, then written with a few set-based statements.
 */
export class StateChanges {
  readonly #conversations = new Map<string, ConversationKind>();
  readonly #members = new Map<string, [conversationId: string, userId: string, present: boolean]>();
  readonly #mutes = new Map<string, [conversationId: string, userId: string, until: string | null]>();
  readonly #levels = new Map<string, [conversationId: string, userId: string, level: NotificationLevel]>();

  conversationStarted(conversationId: string, kind: ConversationKind, members: Iterable<string>): void {
    this.#conversations.set(conversationId, kind);
    for (const userId of members) this.member(conversationId, userId, true);
  }

  member(conversationId: string, userId: string, present: boolean): void {
    this.#members.set(`${conversationId}\n${userId}`, [conversationId, userId, present]);
  }

  mute(conversationId: string, userId: string, until: number | null): void {
    const iso = until === null ? null : new Date(until).toISOString();
    this.#mutes.set(`${conversationId}\n${userId}`, [conversationId, userId, iso]);
  }

  level(conversationId: string, userId: string, level: NotificationLevel): void {
    this.#levels.set(`${conversationId}\n${userId}`, [conversationId, userId, level]);
  }

  async write(db: Db): Promise<void> {
    if (this.#conversations.size > 0) {
      await db.query(
        `INSERT INTO notifier.conversations (conversation_id, kind)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (conversation_id) DO NOTHING`,
        [[...this.#conversations.keys()], [...this.#conversations.values()]],
      );
    }
    const members = [...this.#members.values()];
    const joined = members.filter(([, , present]) => present);
    const left = members.filter(([, , present]) => !present);
    if (left.length > 0) {
      await db.query(
        `DELETE FROM notifier.members m USING unnest($1::text[], $2::text[]) AS l(conversation_id, user_id)
         WHERE m.conversation_id = l.conversation_id AND m.user_id = l.user_id`,
        [left.map((m) => m[0]), left.map((m) => m[1])],
      );
    }
    if (joined.length > 0) {
      await db.query(
        `INSERT INTO notifier.members (conversation_id, user_id)
         SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING`,
        [joined.map((m) => m[0]), joined.map((m) => m[1])],
      );
    }
    const mutes = [...this.#mutes.values()];
    const unmuted = mutes.filter(([, , until]) => until === null);
    const muted = mutes.filter(([, , until]) => until !== null);
    if (unmuted.length > 0) {
      await db.query(
        `DELETE FROM notifier.mutes m USING unnest($1::text[], $2::text[]) AS u(conversation_id, user_id)
         WHERE m.conversation_id = u.conversation_id AND m.user_id = u.user_id`,
        [unmuted.map((m) => m[0]), unmuted.map((m) => m[1])],
      );
    }
    await upsertPreference(db, 'mutes', 'until', 'timestamptz', muted);
    await upsertPreference(db, 'levels', 'level', 'text', [...this.#levels.values()]);
  }
}

/** Sets one per-(conversation, user) preference column of a notifier table, one statement for them all. */
const upsertPreference = async (
  db: Db,
  table: 'mutes' | 'levels',
  column: 'until' | 'level',
  type: 'timestamptz' | 'text',
  rows: readonly (readonly [conversationId: string, userId: string, value: string | null])[],
): Promise<void> => {
  if (rows.length === 0) return;
  await db.query(
    `INSERT INTO notifier.${table} (conversation_id, user_id, ${column})
     SELECT * FROM unnest($1::text[], $2::text[], $3::${type}[])
     ON CONFLICT (conversation_id, user_id) DO UPDATE SET ${column} = EXCLUDED.${column}`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
  );
};
