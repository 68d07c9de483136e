import { readCheckpoint as readConsumerCheckpoint } from '@chat/consumer';
import type { Notification, NotificationKind } from '@chat/events';
import type { NotificationCursor } from '../domain/cursor.js';
import type { NotificationRecord } from '../domain/rules.js';
import type { Db } from './db.js';

/** Rows per multi-row insert: large enough to amortise round trips, small enough for one statement. */
const INSERT_CHUNK = 5000;

type NotificationRow = {
  notification_id: string;
  recipient_id: string;
  kind: NotificationKind;
  conversation_id: string;
  message_id: string;
  actor_id: string;
  preview: string | null;
  created_at: Date;
  read_at: Date | null;
};

export const toNotification = (row: NotificationRow): Notification => ({
  notificationId: row.notification_id,
  kind: row.kind,
  conversationId: row.conversation_id,
  messageId: row.message_id,
  actorId: row.actor_id,
  preview: row.preview,
  // Only an erasure leaves a record without a preview (a deleted message's is "").
  erased: row.preview === null,
  createdAt: row.created_at.toISOString(),
  readAt: row.read_at?.toISOString() ?? null,
});

/**
 * Inserts records with set-based multi-row statements and returns the ones that were new: a record
 * that exists (same deterministic id) is left alone, which makes re-processing after a crash a no-op.
 */
export const insertNotifications = async (
  db: Db,
  records: readonly NotificationRecord[],
): Promise<NotificationRecord[]> => {
  const inserted: NotificationRecord[] = [];
  for (let i = 0; i < records.length; i += INSERT_CHUNK) {
    const chunk = records.slice(i, i + INSERT_CHUNK);
    const { rows } = await db.query<{ notification_id: string }>(
      `INSERT INTO notifier.notifications
         (notification_id, recipient_id, kind, conversation_id, message_id, actor_id, preview, created_at)
       SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                            $7::text[], $8::timestamptz[])
       ON CONFLICT (notification_id) DO NOTHING
       RETURNING notification_id`,
      [
        chunk.map((r) => r.notificationId),
        chunk.map((r) => r.recipientId),
        chunk.map((r) => r.kind),
        chunk.map((r) => r.conversationId),
        chunk.map((r) => r.messageId),
        chunk.map((r) => r.actorId),
        chunk.map((r) => r.preview),
        chunk.map((r) => r.createdAt),
      ],
    );
    if (rows.length === chunk.length) inserted.push(...chunk);
    else {
      const fresh = new Set(rows.map((r) => r.notification_id));
      inserted.push(...chunk.filter((r) => fresh.has(r.notificationId)));
    }
  }
  return inserted;
};

/**
 * An edit or delete changes the preview of the records the message made (as many as it made, none
 * in most groups): the kinds whose preview is the message's own text.
 */
export const updatePreview = async (
  db: Db,
  conversationId: string,
  messageId: string,
  preview: string | null,
): Promise<void> => {
  await db.query(
    `UPDATE notifier.notifications SET preview = $3
      WHERE conversation_id = $1 AND message_id = $2 AND kind IN ('message', 'mention', 'reply')`,
    [conversationId, messageId, preview],
  );
};

/**
 * Applies a `UserErased`: the records whose preview is text the user wrote (their messages, mentions
 * and replies; not the reactions they added, whose preview is the reaction) lose it.
 */
export const erasePreviews = async (db: Db, userId: string): Promise<void> => {
  await db.query(
    `UPDATE notifier.notifications SET preview = NULL
      WHERE actor_id = $1 AND kind IN ('message', 'mention', 'reply') AND preview IS NOT NULL`,
    [userId],
  );
};

export type ReadSelection = { userId: string; notificationIds: readonly string[] | null; upTo: string };

const READ_FILTER = `recipient_id = $1 AND read_at IS NULL AND created_at <= $3
  AND ($2::text[] IS NULL OR notification_id::text = ANY($2::text[]))`;

const readParams = (s: ReadSelection) => [
  s.userId,
  s.notificationIds === null ? null : s.notificationIds.map((id) => id.toLowerCase()),
  s.upTo,
];

/**
 * Applies a `NotificationsRead` event: marks the user's unread records created at or before `upTo`
 * (restricted to the listed ids, if any) and remembers how many moved, keyed by the event id, so the
 * command that appended it can answer with the exact count. Idempotent.
 */
export const markRead = async (db: Db, eventId: string, selection: ReadSelection): Promise<number> => {
  const { rows } = await db.query<{ updated: number }>(
    `WITH moved AS (UPDATE notifier.notifications SET read_at = $3 WHERE ${READ_FILTER} RETURNING 1)
     INSERT INTO notifier.read_results (event_id, user_id, updated)
     SELECT $4, $1, count(*)::int FROM moved
     ON CONFLICT (event_id) DO NOTHING
     RETURNING updated`,
    [...readParams(selection), eventId],
  );
  return rows[0]?.updated ?? 0;
};

/** How many records `markRead` would move now (used when the notifier has not applied the event yet). */
export const countReadable = async (db: Db, selection: ReadSelection): Promise<number> => {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM notifier.notifications WHERE ${READ_FILTER}`,
    readParams(selection),
  );
  return rows[0]?.n ?? 0;
};

/** The count `markRead` stored for this event, or undefined while the notifier has not applied it. */
export const readResult = async (db: Db, eventId: string): Promise<number | undefined> => {
  const { rows } = await db.query<{ updated: number }>(
    'SELECT updated FROM notifier.read_results WHERE event_id = $1',
    [eventId],
  );
  return rows[0]?.updated;
};

/** One page of a user's notifications, newest first; one row more than `limit` tells if more follow. */
export const listNotifications = async (
  db: Db,
  query: { userId: string; unreadOnly: boolean; limit: number; after: NotificationCursor | null },
): Promise<{ items: Notification[]; hasMore: boolean }> => {
  const { rows } = await db.query<NotificationRow>(
    `SELECT n.notification_id, n.recipient_id, n.kind, n.conversation_id, n.message_id, n.actor_id, n.preview,
            n.created_at, n.read_at
       FROM notifier.notifications n
      WHERE n.recipient_id = $1
        AND ($2::boolean IS FALSE OR n.read_at IS NULL)
        AND ($3::timestamptz IS NULL OR (n.created_at, n.notification_id) < ($3::timestamptz, $4::uuid))
      ORDER BY n.created_at DESC, n.notification_id DESC
      LIMIT $5`,
    [
      query.userId,
      query.unreadOnly,
      query.after?.createdAt ?? null,
      query.after?.notificationId ?? null,
      query.limit + 1,
    ],
  );
  return { items: rows.slice(0, query.limit).map(toNotification), hasMore: rows.length > query.limit };
};

/** The notifier's consumer name: its row in `consumers.checkpoints` and its quarantine key. */
export const NOTIFIER_CONSUMER = 'notifier';

/** The position the notifier has applied up to; null before it has applied anything. */
export const readCheckpoint = async (db: Db): Promise<string | null> =>
  (await readConsumerCheckpoint(db, NOTIFIER_CONSUMER)) ?? null;

/**
 * Forgets read results older than `maxAgeSeconds`: they only serve the command that appended the
 * event, which waits seconds at most.
 */
export const pruneReadResults = async (db: Db, maxAgeSeconds: number): Promise<void> => {
  await db.query(
    `DELETE FROM notifier.read_results WHERE created_at < now() - make_interval(secs => $1::double precision)`,
    [maxAgeSeconds],
  );
};

/** Applies a UserBlocked (`blocked`) or UserUnblocked of `userId` against `blockedUserId`. */
export const setBlock = async (db: Db, userId: string, blockedUserId: string, blocked: boolean) => {
  await db.query(
    blocked
      ? `INSERT INTO notifier.blocks (user_id, blocked_user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`
      : `DELETE FROM notifier.blocks WHERE user_id = $1 AND blocked_user_id = $2`,
    [userId, blockedUserId],
  );
};

/**
 * The records whose recipient has not blocked their actor (one indexed read for the whole list).
 * Blocks hold per user, not per conversation: messages, mentions, replies, threads and reactions alike.
 */
export const withoutBlocked = async (
  db: Db,
  records: readonly NotificationRecord[],
): Promise<readonly NotificationRecord[]> => {
  if (records.length === 0) return records;
  const { rows } = await db.query<{ user_id: string; blocked_user_id: string }>(
    `SELECT DISTINCT b.user_id, b.blocked_user_id
       FROM unnest($1::text[], $2::text[]) AS p(recipient_id, actor_id)
       JOIN notifier.blocks b ON b.user_id = p.recipient_id AND b.blocked_user_id = p.actor_id`,
    [records.map((r) => r.recipientId), records.map((r) => r.actorId)],
  );
  if (rows.length === 0) return records;
  const blocked = new Set(rows.map((r) => `${r.user_id}\n${r.blocked_user_id}`));
  return records.filter((r) => !blocked.has(`${r.recipientId}\n${r.actorId}`));
};
