import {
  type ChatApi,
  ChatClient,
  type ConnectionState,
  type NotificationLevel,
  UnreadTracker,
} from '@chat/client';
import type {
  Conversation,
  ConversationEnvelope,
  Notification,
  PresenceStatus,
  SearchHit,
  ServerFrameOf,
} from '@chat/events';
import { defaultNotificationLevel, preview } from '@chat/events';
import { Thread } from './thread.js';

const TYPING_SHOWN_MS = 5000;
const MESSAGE_PAGE = 50;
const NOTIFICATION_PAGE = 50;
const REPLY_PAGE = 50;
const SEARCH_PAGE = 20;

/** The thread shown beside (or, on a phone, instead of) its conversation. */
export type OpenThread = { conversationId: string; rootId: string };

const threadKey = (conversationId: string, rootId: string) => `${conversationId}/${rootId}`;

export type Banner = { kind: 'connecting' | 'reconnecting' | 'reconnected'; since: number } | null;

/**
 * Everything the page shows, kept from the HTTP API and the live socket. Components read it and call
 * its actions; every change bumps `version` and notifies subscribers (one re-render per change).
 */
export class ChatStore {
  readonly me: string;
  readonly api: ChatApi;
  readonly client: ChatClient;
  readonly unread: UnreadTracker;
  version = 0;
  conversations = new Map<string, Conversation>();
  selected: string | null = null;
  readonly threads = new Map<string, Thread>();
  /**
   * The threads opened since the page loaded (`conversationId/rootId` → the root and its replies in seq
   * order), kept up to date by live events. The main timeline (`threads`) holds no thread replies: it
   * counts them on their root.
   */
  readonly replyThreads = new Map<string, Thread>();
  openThread: OpenThread | null = null;
  /** conversationId → userId → until (ms). */
  readonly typing = new Map<string, Map<string, number>>();
  readonly presence = new Map<string, PresenceStatus>();
  /** conversationId → userId → read watermark, from receipts and sends seen since the page loaded. */
  readonly receipts = new Map<string, Map<string, number>>();
  notifications: Notification[] = [];
  notificationsCursor: string | null = null;
  connection: ConnectionState = 'idle';
  banner: Banner = null;
  /** A failure to show the person (cleared by the next action). */
  error: string | null = null;
  readonly #listeners = new Set<() => void>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #wasOpen = false;

  constructor(options: {
    me: string;
    api: ChatApi;
    gatewayUrl: string;
    token: () => Promise<string>;
    /** Last seen seq per conversation: the socket resumes from the read model's state. */
    positions: Record<string, number>;
  }) {
    this.me = options.me;
    this.api = options.api;
    this.client = new ChatClient({
      url: options.gatewayUrl,
      token: options.token,
      positions: options.positions,
      reconnect: { baseDelayMs: 250, maxDelayMs: 5000 },
    });
    this.unread = new UnreadTracker(this.client, this.api);
    this.#wire();
  }

  /** Loads the list and inbox, then connects. */
  static async open(options: {
    me: string;
    api: ChatApi;
    gatewayUrl: string;
    token: () => Promise<string>;
  }): Promise<ChatStore> {
    const conversations = await options.api.allConversations();
    const positions = Object.fromEntries(conversations.map((c) => [c.conversationId, c.lastSeq]));
    const store = new ChatStore({ ...options, positions });
    for (const c of conversations) store.conversations.set(c.conversationId, c);
    store.banner = { kind: 'connecting', since: Date.now() };
    void store.client.connect().catch(() => {});
    void store.loadNotifications();
    void store.#refreshPresence();
    return store;
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.unread.close();
    this.client.close();
    for (const t of this.#timers) clearTimeout(t);
    this.#listeners.clear();
  }

  // Reading

  /** Conversations, most recent activity first (as GET /v1/conversations orders them). */
  sortedConversations(): Conversation[] {
    return [...this.conversations.values()].sort(
      (a, b) =>
        b.lastActivityAt.localeCompare(a.lastActivityAt) || b.conversationId.localeCompare(a.conversationId),
    );
  }

  /** A conversation's name for this user: its title, or the other member of a direct one. */
  nameOf(c: Conversation): string {
    if (c.title) return c.title;
    const others = c.members.filter((m) => m !== this.me);
    return others.join(', ') || this.me;
  }

  typingIn(conversationId: string): string[] {
    const now = Date.now();
    return [...(this.typing.get(conversationId) ?? [])].filter(([, until]) => until > now).map(([u]) => u);
  }

  /** Members other than the user whose watermark has reached `seq`. */
  seenBy(conversationId: string, seq: number): string[] {
    return [...(this.receipts.get(conversationId) ?? [])]
      .filter(([user, readSeq]) => user !== this.me && readSeq >= seq)
      .map(([user]) => user)
      .sort();
  }

  levelOf(c: Conversation): NotificationLevel {
    return c.notificationLevel;
  }

  unreadNotifications(): number {
    return this.notifications.filter((n) => n.readAt === null).length;
  }

  // Actions

  /** Opens a conversation; `minPosition` when it was just created (the read model may not have it yet). */
  async select(conversationId: string | null, minPosition?: string): Promise<void> {
    this.selected = conversationId;
    if (this.openThread?.conversationId !== conversationId) this.openThread = null;
    this.error = null;
    this.#changed();
    if (!conversationId) return;
    const thread = this.#thread(conversationId);
    if (!thread.loaded) await this.#attempt(() => this.#loadNewest(conversationId, minPosition));
    this.markSeen();
  }

  async loadOlder(conversationId: string): Promise<void> {
    const thread = this.#thread(conversationId);
    const before = thread.oldestSeq;
    if (!thread.hasOlder || before === undefined) return;
    await this.#attempt(async () => {
      const page = await this.api.listMessages(conversationId, {
        before,
        limit: MESSAGE_PAGE,
        includeThreads: false,
      });
      thread.addPage(page.items, page.hasMore, 'older');
      this.#changed();
    });
  }

  /** The root and loaded replies of a thread opened before, if any. */
  replyThread(conversationId: string, rootId: string): Thread | undefined {
    return this.replyThreads.get(threadKey(conversationId, rootId));
  }

  /** Opens a thread of the selected conversation (loading its newest replies the first time). */
  async showThread(conversationId: string, rootId: string): Promise<void> {
    this.openThread = { conversationId, rootId };
    this.error = null;
    this.#changed();
    const thread = entryOf(this.replyThreads, threadKey(conversationId, rootId), () => new Thread());
    if (thread.loaded) return;
    await this.#attempt(async () => {
      const page = await this.api.listThreadMessages(conversationId, rootId, { limit: REPLY_PAGE });
      // The root sorts first (replies come after it), so the pane lists the root, then its replies.
      thread.addPage([page.root, ...page.items], page.hasMore, 'newest');
    });
  }

  closeThread(): void {
    this.openThread = null;
    this.#changed();
  }

  async loadOlderReplies(conversationId: string, rootId: string): Promise<void> {
    const thread = this.replyThread(conversationId, rootId);
    const before = thread?.messages.find((m) => m.messageId !== rootId)?.seq;
    if (!thread?.hasOlder || before === undefined) return;
    await this.#attempt(async () => {
      const page = await this.api.listThreadMessages(conversationId, rootId, { before, limit: REPLY_PAGE });
      thread.addPage(page.items, page.hasMore, 'older');
    });
  }

  /** Replies in a thread; the reply arrives live like any message (and bumps its root's count). */
  async sendInThread(conversationId: string, rootId: string, body: string): Promise<void> {
    await this.#attempt(() => this.api.sendMessage(conversationId, { body, threadRootId: rootId }));
  }

  /** Full-text search over the user's conversations; null when it failed (the error is shown). */
  async search(q: string): Promise<SearchHit[] | null> {
    let hits: SearchHit[] | null = null;
    await this.#attempt(async () => {
      hits = (await this.api.search(q, { limit: SEARCH_PAGE })).items;
    });
    return hits;
  }

  /** Opens a search hit: its conversation, and its thread when it is a thread reply. */
  async openHit(hit: SearchHit): Promise<void> {
    await this.select(hit.conversationId);
    if (hit.threadRootId) await this.showThread(hit.conversationId, hit.threadRootId);
  }

  /** Marks the open conversation read up to its last event, when others' messages are unread. */
  markSeen(): void {
    const id = this.selected;
    if (!id || typeof document === 'undefined' || document.visibilityState !== 'visible') return;
    const entry = this.unread.entry(id);
    const last = this.client.lastSeq(id) ?? this.conversations.get(id)?.lastSeq;
    if (!entry || last === undefined || (entry.unreadCount === 0 && entry.readSeq >= last)) return;
    if (this.client.state !== 'open') return;
    this.client.markRead(id, last).catch(() => {});
  }

  async send(conversationId: string, body: string, replyTo?: string): Promise<void> {
    await this.#attempt(() => this.client.send({ conversationId, body, ...(replyTo ? { replyTo } : {}) }));
  }

  async edit(conversationId: string, messageId: string, body: string): Promise<void> {
    await this.#attempt(() => this.api.editMessage(conversationId, messageId, body));
  }

  async remove(conversationId: string, messageId: string): Promise<void> {
    await this.#attempt(() => this.api.deleteMessage(conversationId, messageId));
  }

  async toggleReaction(conversationId: string, messageId: string, reaction: string): Promise<void> {
    const mine = this.threads
      .get(conversationId)
      ?.get(messageId)
      ?.reactions.find((r) => r.reaction === reaction)
      ?.userIds.includes(this.me);
    await this.#attempt(async () => {
      await (mine
        ? this.api.removeReaction(conversationId, messageId, reaction)
        : this.api.addReaction(conversationId, messageId, reaction));
    });
  }

  async setLevel(conversationId: string, level: NotificationLevel): Promise<void> {
    await this.#attempt(async () => {
      const { position } = await this.api.setNotificationLevel(conversationId, level);
      await this.#refreshConversation(conversationId, position);
    });
  }

  typed(conversationId: string): void {
    this.client.typing(conversationId);
  }

  /** Creates a conversation and opens it. */
  async create(kind: 'direct' | 'group', members: string[], title?: string): Promise<boolean> {
    return this.#attempt(async () => {
      const { conversationId, position } = await this.api.createConversation({
        kind,
        members,
        ...(title ? { title } : {}),
      });
      // Shown as soon as its ConversationStarted arrives live or the read model has it, whichever first.
      void this.#refreshConversation(conversationId, position).then(() => this.#refreshPresence(position));
      await this.select(conversationId, position);
    });
  }

  async loadNotifications(more = false): Promise<void> {
    await this.#attempt(async () => {
      const cursor = more ? this.notificationsCursor : null;
      const page = await this.api.listNotifications({
        limit: NOTIFICATION_PAGE,
        ...(cursor ? { cursor } : {}),
      });
      const known = new Set(page.items.map((n) => n.notificationId));
      this.notifications = more
        ? [...this.notifications, ...page.items.filter((n) => !this.#hasNotification(n.notificationId))]
        : [...page.items, ...this.notifications.filter((n) => !known.has(n.notificationId))];
      this.notifications.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      this.notificationsCursor = page.nextCursor;
      this.#changed();
    });
  }

  async readNotifications(ids: string[] | 'all'): Promise<void> {
    await this.#attempt(async () => {
      await this.api.readNotifications(ids === 'all' ? 'all' : { notificationIds: ids });
      const now = new Date().toISOString();
      const read = ids === 'all' ? null : new Set(ids);
      this.notifications = this.notifications.map((n) =>
        n.readAt === null && (read === null || read.has(n.notificationId)) ? { ...n, readAt: now } : n,
      );
    });
  }

  dismissError(): void {
    this.error = null;
    this.#changed();
  }

  // Live frames

  #wire(): void {
    const c = this.client;
    c.on('state', (state) => this.#onState(state));
    c.on('event', (f) => this.#onEvent(f));
    c.on('receipt', (f) => {
      this.#watermark(f.conversationId, f.userId, f.readSeq);
      this.#changed();
    });
    c.on('typing', (f) => {
      if (f.userId === this.me) return;
      entryOf(this.typing, f.conversationId, () => new Map<string, number>()).set(
        f.userId,
        Date.now() + TYPING_SHOWN_MS,
      );
      this.#later(TYPING_SHOWN_MS + 50, () => this.#changed());
      this.#changed();
    });
    c.on('presence', (f) => {
      this.presence.set(f.userId, f.status);
      this.#changed();
    });
    c.on('notification', (f) => {
      if (!this.#hasNotification(f.notification.notificationId))
        this.notifications = [f.notification, ...this.notifications];
      this.#changed();
    });
    c.on('resumed', (f) => {
      // More than the server replays was missed: read those conversations again over HTTP.
      for (const id of f.truncated) {
        this.threads.delete(id);
        for (const key of [...this.replyThreads.keys()])
          if (key.startsWith(`${id}/`)) this.replyThreads.delete(key);
        const open = this.openThread;
        if (open?.conversationId === id) void this.showThread(open.conversationId, open.rootId);
        void this.#refreshConversation(id);
        if (this.selected === id) void this.select(id);
      }
      this.#changed();
    });
    this.unread.on('change', () => {
      this.#changed();
      this.markSeen();
    });
    this.unread.on('seeded', (list) => {
      for (const fresh of list) {
        const local = this.conversations.get(fresh.conversationId);
        // The read model may lag behind what the socket already delivered.
        if (!local || fresh.lastSeq >= local.lastSeq) this.conversations.set(fresh.conversationId, fresh);
      }
      const ids = new Set(list.map((x) => x.conversationId));
      for (const id of [...this.conversations.keys()]) if (!ids.has(id)) this.conversations.delete(id);
      this.#changed();
    });
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', () => this.markSeen());
  }

  #onState(state: ConnectionState): void {
    this.connection = state;
    if (state === 'reconnecting' && this.#wasOpen) this.banner = { kind: 'reconnecting', since: Date.now() };
    if (state === 'open') {
      const wasDown = this.#wasOpen && this.banner?.kind === 'reconnecting';
      this.#wasOpen = true;
      this.banner = wasDown ? { kind: 'reconnected', since: Date.now() } : null;
      if (wasDown) {
        const shown = this.banner;
        this.#later(2500, () => {
          if (this.banner === shown) this.banner = null;
          this.#changed();
        });
        // Presence changed while we were away; the inbox may have grown.
        void this.#refreshPresence();
        void this.loadNotifications();
      }
    }
    this.#changed();
  }

  #onEvent(f: ServerFrameOf<'event'>): void {
    const event = f.event;
    const id = f.conversationId;
    if (event.type === 'MessageSent' && event.data.threadRootId) {
      // A thread reply: in its thread (if opened), and only a count on its root in the main timeline.
      const rootId = event.data.threadRootId;
      this.#thread(id).noteReply(rootId, event.data);
      const thread = this.replyThread(id, rootId);
      // A reply the loaded page already held is in the root's count already.
      const known = thread?.get(event.data.messageId) !== undefined;
      thread?.apply(event);
      if (!known) thread?.noteReply(rootId, event.data);
    } else {
      this.#thread(id).apply(event);
      // Edits, deletions and reactions may concern a thread's root or replies.
      if (event.type !== 'MessageSent')
        for (const [key, thread] of this.replyThreads) if (key.startsWith(`${id}/`)) thread.apply(event);
    }
    this.#applyToConversation(id, f.seq, event);
    if (event.type === 'MessageSent') {
      // Sending moves the sender's watermark (API.md §2.2), and they have stopped typing.
      this.#watermark(id, event.data.senderId, f.seq);
      this.typing.get(id)?.delete(event.data.senderId);
    }
    this.#changed();
  }

  #applyToConversation(id: string, seq: number, event: ConversationEnvelope): void {
    const known = this.conversations.get(id);
    if (event.type === 'ConversationStarted' && !known) {
      const d = event.data;
      this.conversations.set(id, {
        conversationId: id,
        kind: d.kind,
        title: d.title,
        createdBy: d.createdBy,
        members: [...new Set([d.createdBy, ...d.members])],
        createdAt: event.occurredAt,
        lastActivityAt: event.occurredAt,
        lastSeq: seq,
        readSeq: seq,
        unreadCount: 0,
        mutedUntil: null,
        notificationLevel: defaultNotificationLevel(d.kind),
        lastMessage: null,
      });
      // Presence answers only for users who share a conversation: wait until the read model has it.
      void this.#refreshPresence(event.position);
      return;
    }
    if (!known) {
      // Joined a conversation that was already going: read its state.
      void this.#refreshConversation(id, event.position).then(() => this.#refreshPresence(event.position));
      return;
    }
    const next: Conversation = { ...known, lastSeq: Math.max(known.lastSeq, seq) };
    if (event.occurredAt.localeCompare(known.lastActivityAt) > 0) next.lastActivityAt = event.occurredAt;
    switch (event.type) {
      case 'MemberJoined':
        if (!next.members.includes(event.data.userId)) next.members = [...next.members, event.data.userId];
        break;
      case 'MemberLeft':
        if (event.data.userId === this.me) {
          this.conversations.delete(id);
          if (this.selected === id) this.selected = null;
          if (this.openThread?.conversationId === id) this.openThread = null;
          return;
        }
        next.members = next.members.filter((m) => m !== event.data.userId);
        break;
      case 'MessageSent':
        next.lastMessage = {
          messageId: event.data.messageId,
          senderId: event.data.senderId,
          preview: event.data.body === null ? null : preview(event.data.body),
          sentAt: event.data.sentAt,
          seq,
          deleted: false,
          erased: event.data.body === null,
        };
        break;
      case 'MessageEdited':
        if (next.lastMessage?.messageId === event.data.messageId)
          next.lastMessage = {
            ...next.lastMessage,
            preview: event.data.body === null ? null : preview(event.data.body),
            erased: event.data.body === null,
          };
        break;
      case 'MessageDeleted':
        if (next.lastMessage?.messageId === event.data.messageId)
          next.lastMessage = { ...next.lastMessage, preview: '', deleted: true };
        break;
      default:
        break;
    }
    this.conversations.set(id, next);
  }

  #watermark(conversationId: string, userId: string, readSeq: number): void {
    const users = entryOf(this.receipts, conversationId, () => new Map<string, number>());
    users.set(userId, Math.max(users.get(userId) ?? -1, readSeq));
  }

  // Loading

  #thread(conversationId: string): Thread {
    return entryOf(this.threads, conversationId, () => new Thread());
  }

  async #loadNewest(conversationId: string, minPosition?: string): Promise<void> {
    const page = await this.api.listMessages(conversationId, {
      limit: MESSAGE_PAGE,
      includeThreads: false,
      ...(minPosition ? { minPosition } : {}),
    });
    this.#thread(conversationId).addPage(page.items, page.hasMore, 'newest');
    this.#changed();
  }

  async #refreshConversation(conversationId: string, minPosition?: string): Promise<void> {
    try {
      const fresh = await this.api.getConversation(conversationId, minPosition ? { minPosition } : {});
      const local = this.conversations.get(conversationId);
      if (!local || fresh.lastSeq >= local.lastSeq) this.conversations.set(conversationId, fresh);
      else this.conversations.set(conversationId, { ...local, ...pickSettings(fresh) });
      this.#changed();
    } catch {
      // Gone (left, or never visible): the next seed settles the list.
    }
  }

  async #refreshPresence(minPosition?: string): Promise<void> {
    const users = new Set<string>();
    for (const c of this.conversations.values()) for (const m of c.members) if (m !== this.me) users.add(m);
    if (users.size === 0) return;
    try {
      const { users: statuses } = await this.api.presence([...users], minPosition ? { minPosition } : {});
      for (const u of statuses) this.presence.set(u.userId, u.status);
      this.#changed();
    } catch {
      // Presence is decoration: the live frames keep it right from here on.
    }
  }

  #hasNotification(id: string): boolean {
    return this.notifications.some((n) => n.notificationId === id);
  }

  /** Runs an action; a failure is shown to the person instead of thrown. */
  async #attempt(action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action();
      return true;
    } catch (err) {
      this.error = err instanceof Error ? err.message : String(err);
      return false;
    } finally {
      this.#changed();
    }
  }

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #changed(): void {
    this.version++;
    for (const l of this.#listeners) l();
  }
}

const entryOf = <K, V>(map: Map<K, V>, key: K, create: () => V): V => {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
};

/** The caller's own settings of a conversation, which a lagging copy still carries correctly. */
const pickSettings = (c: Conversation): Partial<Conversation> => {
  const { mutedUntil, readSeq } = c;
  const level = (c as { notificationLevel?: unknown }).notificationLevel;
  return { mutedUntil, readSeq, ...(level === undefined ? {} : ({ notificationLevel: level } as object)) };
};
