import {
  encodeSearchCursor,
  type SearchCursor,
  type SearchPage,
  SNIPPET_MARK_CLOSE,
  SNIPPET_MARK_OPEN,
} from '@chat/events';
import { sql } from 'kysely';
import type { ReadModelDb } from './database.js';

/** The query has no word to search for (only punctuation or operators): nothing could ever match. */
export class EmptySearchQueryError extends Error {
  override readonly name = 'EmptySearchQueryError';
}

// ts_headline marks matches with U+0001 / U+0002 (removed from the body first, so only matches carry
// them); the snippet is then HTML-escaped as a whole and the two marks become <mark> and </mark>.
const OPEN = '\u0001';
const CLOSE = '\u0002';
const HEADLINE_OPTIONS = `StartSel=${OPEN}, StopSel=${CLOSE}, MaxWords=30, MinWords=12`;

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** The headline as safe HTML: every character escaped, matches in `<mark>`. */
export const snippetHtml = (headline: string): string =>
  headline
    .replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c)
    .replaceAll(OPEN, SNIPPET_MARK_OPEN)
    .replaceAll(CLOSE, SNIPPET_MARK_CLOSE);

export type SearchOptions = {
  q: string;
  conversationId?: string | undefined;
  from?: string | undefined;
  limit: number;
  cursor?: SearchCursor | undefined;
};

/** The statement of one search page (the bench EXPLAINs it): `limit + 1` rows, headlines included. */
export const searchQuery = (db: ReadModelDb, userId: string, options: SearchOptions) => {
  const query = sql`websearch_to_tsquery('simple', ${options.q})`;
  const rank = sql<number>`ts_rank(m.search_vector, ${query})`;
  // Membership first: the caller's conversations as one array (an InitPlan), so Postgres intersects the
  // conversations' rows (primary key) with the word's rows (GIN) once, as one BitmapAnd. As a join, it
  // planned a BitmapAnd per conversation (re-reading the word's GIN entries up to 50 times) or a
  // parallel seq scan of members: p99 777 ms on 1,000,000 messages, against 1xx ms (bench/README.md).
  const readable = db
    .selectFrom('members as mb')
    .select('mb.conversation_id')
    .where('mb.user_id', '=', userId)
    .where(sql<boolean>`mb.active`);
  let matches = db
    .selectFrom('messages as m')
    .select([
      'm.conversation_id',
      'm.seq',
      'm.message_id',
      'm.sender_id',
      'm.sent_at',
      'm.thread_root_id',
      'm.body',
      rank.as('rank'),
    ])
    .where(sql<boolean>`m.conversation_id = ANY (ARRAY(${readable}))`)
    .where(sql<boolean>`m.search_vector @@ ${query}`)
    .where(sql<boolean>`NOT m.deleted`)
    .where('m.body', 'is not', null);
  if (options.conversationId !== undefined)
    matches = matches.where('m.conversation_id', '=', options.conversationId);
  if (options.from !== undefined) matches = matches.where('m.sender_id', '=', options.from);
  const after = options.cursor;
  if (after !== undefined) {
    matches = matches.where(
      sql<boolean>`(${rank}, m.conversation_id, m.seq) < (${after.rank}::real, ${after.conversationId}, ${after.seq})`,
    );
  }
  const page = matches
    .orderBy('rank', 'desc')
    .orderBy('m.conversation_id', 'desc')
    .orderBy('m.seq', 'desc')
    .limit(options.limit + 1);
  // Headlines only for the page's rows: ts_headline re-parses the body, the costliest part per row.
  return db
    .selectFrom(page.as('p'))
    .select([
      'p.conversation_id',
      'p.seq',
      'p.message_id',
      'p.sender_id',
      'p.sent_at',
      'p.thread_root_id',
      'p.rank',
      sql<string>`ts_headline('simple', translate(p.body, ${OPEN + CLOSE}, '  '), ${query}, ${HEADLINE_OPTIONS})`.as(
        'headline',
      ),
    ])
    .orderBy('p.rank', 'desc')
    .orderBy('p.conversation_id', 'desc')
    .orderBy('p.seq', 'desc');
};

/**
 * Full-text search over the messages of the conversations `userId` is a member of now (their whole
 * history; deleted and erased messages have no body, so no tokens, and are excluded besides), ranked by
 * `ts_rank`, ties newest first per conversation. Authorization is in the statement: only rows of the
 * caller's active memberships are read, so a conversation they are not in contributes no row, whatever
 * `conversationId` says.
 */
export const searchMessages = async (
  db: ReadModelDb,
  userId: string,
  options: SearchOptions,
): Promise<SearchPage> => {
  const parsed = await sql<{
    nodes: number;
  }>`SELECT numnode(websearch_to_tsquery('simple', ${options.q}))::int AS nodes`.execute(db);
  if ((parsed.rows[0]?.nodes ?? 0) === 0) throw new EmptySearchQueryError('q has no word to search for');
  const rows = await searchQuery(db, userId, options).execute();
  const items = rows.slice(0, options.limit).map((r) => ({
    messageId: r.message_id,
    conversationId: r.conversation_id,
    seq: r.seq,
    senderId: r.sender_id,
    sentAt: r.sent_at.toISOString(),
    threadRootId: r.thread_root_id,
    snippet: snippetHtml(r.headline),
    rank: Number(r.rank),
  }));
  const last = items.at(-1);
  return {
    items,
    nextCursor:
      rows.length > options.limit && last
        ? encodeSearchCursor({ rank: last.rank, conversationId: last.conversationId, seq: last.seq })
        : null,
  };
};
