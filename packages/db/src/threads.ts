import type { ThreadPage } from '@chat/events';
import type { ReadModelDb } from './database.js';
import { MESSAGE_ROW_COLUMNS, messagesOf, pageOf } from './messages.js';

/**
 * The root message and one page of its thread's replies (paged as `listMessages`), or null when
 * `rootId` names no message of the conversation, or names a reply (threads do not nest).
 */
export const listThreadMessages = async (
  db: ReadModelDb,
  conversationId: string,
  rootId: string,
  options: { before?: number | undefined; after?: number | undefined; limit: number },
): Promise<ThreadPage | null> => {
  const rootRow = await db
    .selectFrom('messages')
    .select(MESSAGE_ROW_COLUMNS)
    .where('conversation_id', '=', conversationId)
    .where('message_id', '=', rootId)
    .executeTakeFirst();
  if (!rootRow || rootRow.thread_root_id !== null) return null;
  const [root] = await messagesOf(db, conversationId, [rootRow]);
  if (!root) return null;
  const query = db
    .selectFrom('messages')
    .select(MESSAGE_ROW_COLUMNS)
    .where('conversation_id', '=', conversationId)
    .where('thread_root_id', '=', rootId);
  const page = await pageOf(db, conversationId, query, options);
  return { root, ...page };
};
