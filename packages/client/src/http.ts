import {
  type AdminShapes,
  type ApiError,
  type AssignableRole,
  adminShapes,
  apiErrorBodySchema,
  type CommandShapes,
  commandShapes,
  type DevShapes,
  devShapes,
  type ModerationCommandShapes,
  type ModerationQueryShapes,
  moderationCommandShapes,
  moderationQueryShapes,
  type NotificationLevel,
  type QueryShapes,
  queryShapes,
  type ResultOf,
  type RouteShape,
  type SearchShapes,
  type SuccessStatus,
  searchShapes,
  type ThreadShapes,
  threadShapes,
} from '@chat/events';
import type { z } from 'zod';
import { ChatCommandError, type TokenSource } from './client.js';
import { randomUuid } from './uuid.js';

/** The path parameters of a route, by name. */
export type ParamsOf<S extends RouteShape> = z.input<S['params']>;
/** A request body as the caller writes it (before the server trims and normalises). */
export type BodyOf<S extends RouteShape> = S['body'] extends z.ZodType ? z.input<S['body']> : never;
/**
 * A query string in the types the server reads it as (numbers, booleans, lists), every part optional:
 * the SDK writes them out (`limit: 20` → `limit=20`, `userIds: [a, b]` → `userIds=a,b`).
 */
export type QueryOf<S extends RouteShape> = S['querystring'] extends z.ZodType
  ? Partial<z.output<S['querystring']>>
  : never;

type QueryValue = string | number | boolean | readonly string[] | undefined;

/** A success answer: its status, its body and whether the read model answered stale (`minPosition`). */
export type ApiResponse<S extends RouteShape> = {
  status: SuccessStatus<S>;
  result: ResultOf<S>;
  /** `X-Read-Model-Stale: true`: the read model had not reached `minPosition` within 2 s. */
  stale: boolean;
};

/** A refused request, with the contract's code and its HTTP status (0 when no answer arrived). */
export class ChatApiError extends ChatCommandError {
  override readonly name: string = 'ChatApiError';
  readonly status: number;
  /** From `Retry-After` on `rate_limited`. */
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, error: ApiError, options?: { retryAfterSeconds?: number; cause?: unknown }) {
    super(error);
    this.status = status;
    this.retryAfterSeconds = options?.retryAfterSeconds;
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

export type ChatApiOptions = {
  /** e.g. `https://chat.example.com`; `''` (the default) calls the page's own origin in a browser. */
  baseUrl?: string;
  /** A token, or a provider asked before every request (refreshed tokens are picked up). Omit for `devToken`. */
  token?: TokenSource;
  /** Defaults to `globalThis.fetch` (browsers, Node ≥ 18). */
  fetch?: typeof fetch;
  /** Check every success answer against its route's schema (tests, SDK development). */
  validateResponses?: boolean;
};

type CommandName = keyof CommandShapes;
type S<N extends CommandName> = CommandShapes[N];
type Q<N extends keyof QueryShapes> = QueryShapes[N];
type M<N extends keyof ModerationCommandShapes> = ModerationCommandShapes[N];
type MQ<N extends keyof ModerationQueryShapes> = ModerationQueryShapes[N];

const MAX_PRESENCE_IDS = 100;
const MAX_PAGES = 10_000;

/**
 * Every HTTP route of the chat API (API.md §2) as a typed method. Argument and result types are the
 * zod schemas of @chat/events that the server validates and serializes with, so they cannot drift.
 * Failures throw `ChatApiError` with the contract's `code` and the HTTP `status`.
 */
export class ChatApi {
  readonly #baseUrl: string;
  readonly #token: TokenSource | undefined;
  readonly #fetch: typeof fetch;
  readonly #validate: boolean;
  #documented: Promise<Set<string> | undefined> | undefined;

  constructor(options: ChatApiOptions = {}) {
    this.#baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    this.#token = options.token;
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new Error('no fetch implementation: pass options.fetch');
    // Called unbound: browsers refuse `fetch` invoked as a method of another object.
    this.#fetch = (input, init) => f(input, init);
    this.#validate = options.validateResponses ?? false;
  }

  /** Calls one route by its shape: the typed core every method below goes through. */
  async request<R extends RouteShape>(
    shape: R,
    input: { params?: ParamsOf<R>; query?: QueryOf<R>; body?: BodyOf<R> } = {},
  ): Promise<ApiResponse<R>> {
    const url = this.#baseUrl + pathOf(shape.path, input.params ?? {}) + queryString(input.query);
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = await this.#currentToken();
    if (token) headers.authorization = `Bearer ${token}`;
    const hasBody = input.body !== undefined && input.body !== null;
    if (hasBody) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method: shape.method,
        headers,
        ...(hasBody ? { body: JSON.stringify(input.body) } : {}),
      });
    } catch (cause) {
      throw new ChatApiError(
        0,
        { code: 'unavailable', message: `${shape.method} ${url}: no answer` },
        { cause },
      );
    }
    const text = await response.text();
    const json: unknown = text ? safeJson(text) : undefined;
    if (!response.ok) throw errorOf(response, json);
    const schema = shape.responses[response.status];
    if (!schema) {
      const message = `unexpected status ${response.status} from ${shape.name}`;
      throw new ChatApiError(response.status, { code: 'unavailable', message });
    }
    const result = this.#validate ? schema.parse(json) : json;
    return {
      status: response.status as SuccessStatus<R>,
      result: result as ResultOf<R>,
      stale: response.headers.get('x-read-model-stale') === 'true',
    };
  }

  async #call<R extends RouteShape>(
    shape: R,
    input: { params?: ParamsOf<R>; query?: QueryOf<R>; body?: BodyOf<R> },
  ): Promise<ResultOf<R>> {
    return (await this.request(shape, input)).result;
  }

  async #currentToken(): Promise<string | undefined> {
    const source = this.#token;
    return typeof source === 'function' ? source() : source;
  }

  // Conversations (API.md §2.1)

  /** Starts a conversation; a direct one's id is derived from the pair (again: the same one, 200). */
  createConversation(body: BodyOf<S<'createConversation'>>): Promise<ResultOf<S<'createConversation'>>> {
    return this.#call(commandShapes.createConversation, { body });
  }

  addMember(conversationId: string, userId: string): Promise<ResultOf<S<'addMember'>>> {
    return this.#call(commandShapes.addMember, { params: { conversationId }, body: { userId } });
  }

  removeMember(conversationId: string, userId: string): Promise<ResultOf<S<'removeMember'>>> {
    return this.#call(commandShapes.removeMember, { params: { conversationId, userId } });
  }

  // Messages (§2.2, §2.2.1)

  /** Sends a message; `messageId` (the idempotency key) is generated when not given. Retry with the same one. */
  sendMessage(
    conversationId: string,
    message: Omit<BodyOf<S<'sendMessage'>>, 'messageId'> & { messageId?: string },
  ): Promise<ResultOf<S<'sendMessage'>>> {
    const body = { ...message, messageId: message.messageId ?? randomUuid() };
    return this.#call(commandShapes.sendMessage, { params: { conversationId }, body });
  }

  editMessage(conversationId: string, messageId: string, body: string): Promise<ResultOf<S<'editMessage'>>> {
    return this.#call(commandShapes.editMessage, { params: { conversationId, messageId }, body: { body } });
  }

  deleteMessage(conversationId: string, messageId: string): Promise<ResultOf<S<'deleteMessage'>>> {
    return this.#call(commandShapes.deleteMessage, { params: { conversationId, messageId } });
  }

  /** Adds the caller's reaction (an emoji or a name, ≤ 32 code points, no whitespace). */
  addReaction(
    conversationId: string,
    messageId: string,
    reaction: string,
  ): Promise<ResultOf<S<'addReaction'>>> {
    return this.#call(commandShapes.addReaction, { params: { conversationId, messageId, reaction } });
  }

  removeReaction(
    conversationId: string,
    messageId: string,
    reaction: string,
  ): Promise<ResultOf<S<'removeReaction'>>> {
    return this.#call(commandShapes.removeReaction, { params: { conversationId, messageId, reaction } });
  }

  // Read state, typing, mute, notification level (§2.3)

  markRead(conversationId: string, upToSeq: number): Promise<ResultOf<S<'markRead'>>> {
    return this.#call(commandShapes.markRead, { params: { conversationId }, body: { upToSeq } });
  }

  typing(conversationId: string): Promise<ResultOf<S<'typing'>>> {
    return this.#call(commandShapes.typing, { params: { conversationId } });
  }

  /** Mutes until a time, or unmutes with `null`. */
  mute(conversationId: string, until: Date | string | null): Promise<ResultOf<S<'mute'>>> {
    const value = until instanceof Date ? until.toISOString() : until;
    return this.#call(commandShapes.mute, { params: { conversationId }, body: { until: value } });
  }

  /** The caller's notification level in a conversation. */
  setNotificationLevel(
    conversationId: string,
    level: NotificationLevel,
  ): Promise<ResultOf<S<'setNotificationLevel'>>> {
    return this.#call(commandShapes.setNotificationLevel, { params: { conversationId }, body: { level } });
  }

  // Queries (§2.4)

  listConversations(query: QueryOf<Q<'listConversations'>> = {}): Promise<ResultOf<Q<'listConversations'>>> {
    return this.#call(queryShapes.listConversations, { query });
  }

  /** Every conversation of the caller, following `nextCursor` through all pages. */
  async allConversations(
    query: Omit<QueryOf<Q<'listConversations'>>, 'cursor'> = {},
  ): Promise<ResultOf<Q<'listConversations'>>['items']> {
    const items: ResultOf<Q<'listConversations'>>['items'] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const result = await this.listConversations({ limit: 100, ...query, ...(cursor ? { cursor } : {}) });
      items.push(...result.items);
      if (result.nextCursor === null) return items;
      cursor = result.nextCursor;
    }
    throw new Error(`more than ${MAX_PAGES} pages of conversations`);
  }

  getConversation(
    conversationId: string,
    query: QueryOf<Q<'getConversation'>> = {},
  ): Promise<ResultOf<Q<'getConversation'>>> {
    return this.#call(queryShapes.getConversation, { params: { conversationId }, query });
  }

  /** A page of messages in ascending seq: the newest, or `before`/`after` a seq. */
  listMessages(
    conversationId: string,
    query: QueryOf<Q<'listMessages'>> = {},
  ): Promise<ResultOf<Q<'listMessages'>>> {
    return this.#call(queryShapes.listMessages, { params: { conversationId }, query });
  }

  /** The root message and a page of its thread's replies in ascending seq: the newest, or `before`/`after` a seq. */
  listThreadMessages(
    conversationId: string,
    rootId: string,
    query: QueryOf<ThreadShapes['listThreadMessages']> = {},
  ): Promise<ResultOf<ThreadShapes['listThreadMessages']>> {
    return this.#call(threadShapes.listThreadMessages, { params: { conversationId, rootId }, query });
  }

  /**
   * Full-text search over the caller's conversations, best match first. Snippets are HTML-safe: text is
   * escaped and matches are wrapped in `<mark>`…`</mark>`. Pass `nextCursor` back as `cursor` for more.
   */
  search(
    q: string,
    query: Omit<QueryOf<SearchShapes['search']>, 'q'> = {},
  ): Promise<ResultOf<SearchShapes['search']>> {
    return this.#call(searchShapes.search, { query: { ...query, q } });
  }

  unread(query: QueryOf<Q<'unread'>> = {}): Promise<ResultOf<Q<'unread'>>> {
    return this.#call(queryShapes.unread, { query });
  }

  listNotifications(query: QueryOf<Q<'listNotifications'>> = {}): Promise<ResultOf<Q<'listNotifications'>>> {
    return this.#call(queryShapes.listNotifications, { query });
  }

  /** Marks the listed notifications read, or all of them. */
  readNotifications(
    which: BodyOf<S<'readNotifications'>> | 'all',
  ): Promise<ResultOf<S<'readNotifications'>>> {
    return this.#call(commandShapes.readNotifications, { body: which === 'all' ? { all: true } : which });
  }

  /** Online status of users who share a conversation with the caller; any number of ids (100 per request). */
  async presence(
    userIds: readonly string[],
    query: Omit<QueryOf<Q<'presence'>>, 'userIds'> = {},
  ): Promise<ResultOf<Q<'presence'>>> {
    const users: ResultOf<Q<'presence'>>['users'] = [];
    for (let i = 0; i < userIds.length; i += MAX_PRESENCE_IDS) {
      const chunk = userIds.slice(i, i + MAX_PRESENCE_IDS);
      const page = await this.#call(queryShapes.presence, { query: { ...query, userIds: chunk } });
      users.push(...page.users);
    }
    return { users };
  }

  // Admin (§2.5)

  /** Raw events of one stream (token with role `admin`). */
  adminStream(streamId: string, query: QueryOf<Q<'adminStream'>> = {}): Promise<ResultOf<Q<'adminStream'>>> {
    return this.#call(queryShapes.adminStream, { params: { streamId }, query });
  }

  /**
   * A page of the global event log in log order (token with role `admin` or `analyst`): pass
   * `nextPosition` back as `from` for the next page. The NDJSON stream of the same route is not wrapped.
   */
  exportEvents(query: QueryOf<Q<'exportEvents'>> = {}): Promise<ResultOf<Q<'exportEvents'>>> {
    return this.#call(queryShapes.exportEvents, { query });
  }

  // Moderation and blocking (issue 16)

  /** Makes a member an admin or a member again (the owner only). */
  setMemberRole(
    conversationId: string,
    userId: string,
    role: AssignableRole,
  ): Promise<ResultOf<M<'setMemberRole'>>> {
    return this.#call(moderationCommandShapes.setMemberRole, {
      params: { conversationId, userId },
      body: { role },
    });
  }

  /** Bans a user from a group (owner or admin): removed if a member, kept out until unbanned. */
  banMember(conversationId: string, userId: string): Promise<ResultOf<M<'banMember'>>> {
    return this.#call(moderationCommandShapes.banMember, { params: { conversationId, userId } });
  }

  unbanMember(conversationId: string, userId: string): Promise<ResultOf<M<'unbanMember'>>> {
    return this.#call(moderationCommandShapes.unbanMember, { params: { conversationId, userId } });
  }

  /** Reports a message to the moderators (members only; one report per message and reporter). */
  reportMessage(
    conversationId: string,
    messageId: string,
    reason: string,
  ): Promise<ResultOf<M<'reportMessage'>>> {
    return this.#call(moderationCommandShapes.reportMessage, {
      params: { conversationId, messageId },
      body: { reason },
    });
  }

  /** Roles of a conversation's members and, for its owner and admins, its bans. */
  getModeration(
    conversationId: string,
    query: QueryOf<MQ<'getModeration'>> = {},
  ): Promise<ResultOf<MQ<'getModeration'>>> {
    return this.#call(moderationQueryShapes.getModeration, { params: { conversationId }, query });
  }

  /** The moderation queue (token with role `admin`): one status, newest first. */
  listReports(query: QueryOf<MQ<'listReports'>> = {}): Promise<ResultOf<MQ<'listReports'>>> {
    return this.#call(moderationQueryShapes.listReports, { query });
  }

  /** Resolves a report (role `admin`): `removed` also deletes the message. */
  resolveReport(reportId: string, body: BodyOf<M<'resolveReport'>>): Promise<ResultOf<M<'resolveReport'>>> {
    return this.#call(moderationCommandShapes.resolveReport, { params: { reportId }, body });
  }

  /** Blocks a user: no direct conversation from them, no presence across the block. */
  blockUser(userId: string): Promise<ResultOf<M<'blockUser'>>> {
    return this.#call(moderationCommandShapes.blockUser, { params: { userId } });
  }

  unblockUser(userId: string): Promise<ResultOf<M<'unblockUser'>>> {
    return this.#call(moderationCommandShapes.unblockUser, { params: { userId } });
  }

  /** The users the caller blocks; a client hides their messages in groups with `BlockList`. */
  listBlocks(query: QueryOf<MQ<'listBlocks'>> = {}): Promise<ResultOf<MQ<'listBlocks'>>> {
    return this.#call(moderationQueryShapes.listBlocks, { query });
  }

  /**
   * Erases a user's personal data (token with role `admin`; README "Erasure"): every text they wrote
   * reads as null with `erased: true` from then on. A repeat answers the first erasure.
   */
  eraseUser(userId: string): Promise<ResultOf<AdminShapes['eraseUser']>> {
    return this.#call(adminShapes.eraseUser, { params: { userId } });
  }

  // Development

  /** DEVELOPMENT ONLY: a token for any user id (the route does not exist in production: 404). */
  devToken(userId: string): Promise<ResultOf<DevShapes['devToken']>> {
    return this.#call(devShapes.devToken, { body: { userId } });
  }

  /**
   * Whether the server serves a route, read from its OpenAPI document (`GET /docs/json`, fetched once);
   * `undefined` when the server publishes none.
   */
  async hasRoute(shape: Pick<RouteShape, 'method' | 'path'>): Promise<boolean | undefined> {
    this.#documented ??= this.#documentedRoutes();
    const routes = await this.#documented;
    return routes?.has(`${shape.method} ${openApiPath(shape.path)}`);
  }

  async #documentedRoutes(): Promise<Set<string> | undefined> {
    try {
      const response = await this.#fetch(`${this.#baseUrl}/docs/json`, {
        headers: { accept: 'application/json' },
      });
      if (!response.ok) return undefined;
      const doc = (await response.json()) as { paths?: Record<string, Record<string, unknown>> };
      const routes = new Set<string>();
      for (const [path, operations] of Object.entries(doc.paths ?? {}))
        for (const method of Object.keys(operations)) routes.add(`${method.toUpperCase()} ${path}`);
      return routes;
    } catch {
      return undefined;
    }
  }
}

/** `/v1/conversations/:conversationId` → `/v1/conversations/{conversationId}` (OpenAPI's spelling). */
const openApiPath = (path: string): string => path.replace(/:([A-Za-z]+)/g, '{$1}');

const pathOf = (template: string, params: Record<string, unknown>): string =>
  template.replace(/:([A-Za-z]+)/g, (_, name: string) => {
    const value = params[name];
    if (value === undefined || value === null) throw new Error(`missing path parameter ${name}`);
    return encodeURIComponent(String(value));
  });

const queryString = (query: object | undefined): string => {
  if (!query) return '';
  const parts: string[] = [];
  for (const [key, raw] of Object.entries(query) as [string, QueryValue][]) {
    if (raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(',') : String(raw);
    parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  }
  return parts.length ? `?${parts.join('&')}` : '';
};

const safeJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

const errorOf = (response: Response, json: unknown): ChatApiError => {
  const parsed = apiErrorBodySchema.safeParse(json);
  const retryAfter = Number(response.headers.get('retry-after'));
  const options = Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {};
  if (parsed.success) return new ChatApiError(response.status, parsed.data.error, options);
  // Not the API's error body (a proxy in between, say): keep the status, name it by the catalogue.
  const code =
    response.status === 404 ? 'not_found' : response.status >= 500 ? 'unavailable' : 'validation_failed';
  return new ChatApiError(response.status, { code, message: `HTTP ${response.status}` }, options);
};
