import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import { MAX_SEQ, uuidSchema } from './ids.js';
import { intParam, messageSchema, minPosition, QUERY_ERRORS } from './queries.js';
import type { RouteShape } from './routes.js';

// Threads (issue 16, part 1): a reply with `threadRootId` belongs to the thread of that root message;
// the thread is paged like the conversation's history.

export const threadParams = z.strictObject({ conversationId: uuidSchema, rootId: uuidSchema });

/** The same paging as GET …/messages: `before` backwards, `after` forwards, neither the newest page. */
export const listThreadMessagesQuery = z
  .strictObject({
    before: intParam(0, MAX_SEQ).optional(),
    after: intParam(0, MAX_SEQ).optional(),
    limit: intParam(1, 200).default(50),
    minPosition,
  })
  .refine((q) => q.before === undefined || q.after === undefined, {
    message: 'use either before or after, not both',
    path: ['before'],
  });

export const threadPageSchema = z.object({
  /** The root message, with its thread counters (a tombstone once deleted: its replies stay). */
  root: messageSchema,
  /** A page of the thread's replies in ascending seq. */
  items: z.array(messageSchema),
  /** More replies exist beyond this page in its paging direction. */
  hasMore: z.boolean(),
});
export type ThreadPage = z.output<typeof threadPageSchema>;

const errors: readonly ErrorCode[] = [...QUERY_ERRORS, 'not_found'];

export const threadShapes = {
  listThreadMessages: {
    name: 'listThreadMessages',
    method: 'GET',
    path: '/v1/conversations/:conversationId/threads/:rootId/messages',
    summary:
      'The root message and a page of its thread’s replies in ascending seq (before/after paging as in listMessages). With minPosition, waits up to 2 s for the read model to reach it; then answers with X-Read-Model-Stale: true.',
    tags: ['queries'],
    params: threadParams,
    querystring: listThreadMessagesQuery,
    responses: { 200: threadPageSchema.describe('the root and a page of replies') },
    errors,
  },
} as const satisfies Record<string, RouteShape>;
export type ThreadShapes = typeof threadShapes;
