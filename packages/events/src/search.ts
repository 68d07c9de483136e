import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import {
  codePointLength,
  instantSchema,
  MAX_SEQ,
  seqSchema,
  userIdSchema,
  uuidOutputSchema,
  uuidSchema,
} from './ids.js';
import { intParam, minPosition } from './queries.js';
import type { RouteShape } from './routes.js';
import { textSchema } from './text.js';

// Search (issue 16, part 2): full-text search over the messages the caller can read.

export const SEARCH_QUERY_MAX = 200;

/** Where a search page ends: the last item's rank, conversation and seq (ranked order, then newest). */
export type SearchCursor = { rank: number; conversationId: string; seq: number };

const LOWER_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const toBase64Url = (text: string): string => {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
};

/** base64url of the JSON `[rank, conversationId, seq]`. Opaque to clients. */
export const encodeSearchCursor = (c: SearchCursor): string =>
  toBase64Url(JSON.stringify([c.rank, c.conversationId, c.seq]));

/** The cursor's content, or null when the server did not make it (so it never reaches a query). */
export const decodeSearchCursor = (raw: string): SearchCursor | null => {
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(raw) || raw.length % 4 === 1) return null;
  try {
    const value: unknown = JSON.parse(atob(raw.replace(/-/g, '+').replace(/_/g, '/')));
    if (!Array.isArray(value) || value.length !== 3) return null;
    const [rank, conversationId, seq] = value as unknown[];
    if (typeof rank !== 'number' || !Number.isFinite(rank) || rank < 0 || rank > 1e30) return null;
    if (typeof conversationId !== 'string' || !LOWER_UUID_RE.test(conversationId)) return null;
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) return null;
    return { rank, conversationId, seq };
  } catch {
    return null;
  }
};

export const searchQuery = z.strictObject({
  /** Web-search syntax (`websearch_to_tsquery`): words, "quoted phrases", `or`, `-excluded`. */
  q: textSchema
    .transform((s) => s.trim())
    .refine((s) => s.length > 0, 'must not be empty or only whitespace')
    .refine((s) => codePointLength(s) <= SEARCH_QUERY_MAX, `must be at most ${SEARCH_QUERY_MAX} characters`),
  conversationId: uuidSchema.optional(),
  /** Only messages this user sent. */
  from: userIdSchema.optional(),
  limit: intParam(1, 50).default(20),
  cursor: textSchema
    .refine((raw) => decodeSearchCursor(raw) !== null, 'not a cursor returned by the server')
    .optional(),
  minPosition,
});

/** Opens and closes a match in a snippet; every other character of a snippet is HTML-escaped text. */
export const SNIPPET_MARK_OPEN = '<mark>';
export const SNIPPET_MARK_CLOSE = '</mark>';

export const searchHitSchema = z.object({
  messageId: uuidOutputSchema,
  conversationId: uuidOutputSchema,
  seq: seqSchema,
  senderId: userIdSchema,
  sentAt: instantSchema,
  threadRootId: uuidOutputSchema.nullable(),
  /**
   * An excerpt of the body around the matches, safe to insert as HTML: `&<>"'` are escaped as entities
   * and each match is wrapped in `<mark>`…`</mark>` (the only markup a snippet contains).
   */
  snippet: z.string(),
  /** `ts_rank` of the body for the query: higher ranks first. */
  rank: z.number().min(0),
});
export type SearchHit = z.output<typeof searchHitSchema>;

export const searchPageSchema = z.object({
  items: z.array(searchHitSchema),
  nextCursor: z.string().nullable(),
});
export type SearchPage = z.output<typeof searchPageSchema>;

const errors: readonly ErrorCode[] = ['validation_failed', 'unauthorized', 'rate_limited', 'unavailable'];

export const searchShapes = {
  search: {
    name: 'search',
    method: 'GET',
    path: '/v1/search',
    summary:
      'Full-text search over the messages of your conversations (their whole history; deleted messages never match), best match first, with highlighted snippets. A conversation you are not a member of finds nothing. With minPosition, waits up to 2 s for the read model to reach it; then answers with X-Read-Model-Stale: true.',
    tags: ['queries'],
    params: z.strictObject({}),
    querystring: searchQuery,
    responses: { 200: searchPageSchema.describe('a page of matching messages') },
    errors,
  },
} as const satisfies Record<string, RouteShape>;
export type SearchShapes = typeof searchShapes;
