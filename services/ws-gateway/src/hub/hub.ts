import type { TemplatedApp } from 'uWebSockets.js';
import { type NatsSubjects, type RawEnvelope, type ServerFrame, WS_CLOSE } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { NatsConnection } from 'nats';
import { frame } from '../client/frames.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { type CatchUp, ConversationFeed, type FeedHost } from './feed.js';
import type { Socket } from './types.js';

/** Where the gateway learns a user's conversations at connect time (the read model). */
export type MembershipSource = { conversationIdsOfUser(userId: string): Promise<string[]> };

/** Presence transitions of local users (first local socket opened / last one closed). */
export type PresenceSink = {
  userOnline(userId: string, conversationIds: string[]): void;
  userOffline(userId: string, conversationIds: string[]): void;
};

type UserEntry = {
  userId: string;
  sockets: Set<Socket>;
  conversations: Set<string>;
  /** Upgrades verified but not yet opened: the entry must outlive them. */
  upgrading: number;
  loaded: Promise<void>;
  /** User-subject messages that arrived while the conversation list was loading. */
  backlog: string[] | undefined;
};

export type HubOptions = {
  app: TemplatedApp;
  store: EventStore;
  nats: NatsConnection;
  subjects: NatsSubjects;
  membership: MembershipSource;
  metrics: GatewayMetrics;
  logger: Logger;
  maxBackpressure: number;
  /** How long a new socket's events are held for a `resume` that may come as its first frame. */
  resumeGraceMs?: number;
};

const decoder = new TextDecoder();
const UNREAD_PREFIX = '{"type":"unread",';
const NOTIFICATION_PREFIX = '{"type":"notification",';
const RESUME_MAX = 500;

/**
 * The gateway's delivery core: which local users are in which conversation, one feed (NATS
 * subscription + uWS topic) per conversation with local members, and the per-socket catch-up that
 * makes `resume` gap- and duplicate-free against live delivery.
 */
export class Hub implements FeedHost {
  readonly users = new Map<string, UserEntry>();
  readonly feeds = new Map<string, ConversationFeed>();
  readonly store: EventStore;
  readonly nats: NatsConnection;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  presence: PresenceSink | undefined;
  readonly #app: TemplatedApp;
  readonly #subjects: NatsSubjects;
  readonly #membership: MembershipSource;
  readonly #catchUps = new Map<Socket, Map<string, CatchUp>>();
  readonly #resumes = new Map<Socket, Promise<void>>();
  readonly #pendingSockets = new Set<Socket>();
  readonly #graceMs: number;

  constructor(options: HubOptions) {
    this.#app = options.app;
    this.store = options.store;
    this.nats = options.nats;
    this.#subjects = options.subjects;
    this.#membership = options.membership;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.#graceMs = options.resumeGraceMs ?? 500;
    // One wildcard subscription for every user channel instead of one per local user: a nats.js
    // subscription costs ~1.2 KiB of heap, over half the per-socket memory budget. The price is that
    // every gateway sees every user's messages and drops those of users it does not hold.
    this.nats.subscribe(this.#subjects.allUsers, {
      callback: (err, msg) => {
        if (err) return;
        const user = this.users.get(userIdOfSubject(msg.subject));
        if (!user) return;
        const text = decoder.decode(msg.data);
        if (user.backlog) user.backlog.push(text);
        else this.#onUserMessage(user, text);
      },
    });
  }

  publish(topic: string, text: string): void {
    const n = this.#app.numSubscribers(topic);
    if (n === 0) return;
    this.#app.publish(topic, text);
    this.metrics.deliveries.inc(n);
  }

  // --- users -------------------------------------------------------------------------------------

  /** Called after the token is verified and before the upgrade answers: loads the user's conversations. */
  async attachUser(userId: string): Promise<void> {
    let user = this.users.get(userId);
    if (!user) {
      const created: UserEntry = {
        userId,
        sockets: new Set(),
        conversations: new Set(),
        upgrading: 0,
        loaded: Promise.resolve(),
        backlog: [],
      };
      created.loaded = this.#loadUser(created);
      this.users.set(userId, created);
      user = created;
    }
    user.upgrading++;
    try {
      await user.loaded;
    } catch (err) {
      this.releaseUpgrade(userId);
      throw err;
    }
  }

  async #loadUser(user: UserEntry): Promise<void> {
    // The entry exists before the list is read, so a membership change racing the read is kept in
    // the backlog rather than lost.
    try {
      const ids = await this.#membership.conversationIdsOfUser(user.userId);
      for (const id of ids) {
        const feed = this.#feed(id);
        feed.users.add(user.userId);
        user.conversations.add(id);
      }
    } catch (err) {
      this.users.delete(user.userId);
      throw err;
    }
    const backlog = user.backlog ?? [];
    user.backlog = undefined;
    for (const text of backlog) this.#onUserMessage(user, text);
  }

  releaseUpgrade(userId: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    user.upgrading--;
    this.#maybeDetach(user);
  }

  #maybeDetach(user: UserEntry): void {
    if (user.sockets.size > 0 || user.upgrading > 0) return;
    this.users.delete(user.userId);
    const conversations = [...user.conversations];
    for (const id of conversations) this.#removeFromFeed(id, user.userId);
    this.presence?.userOffline(user.userId, conversations);
  }

  #feed(conversationId: string, baseline?: number): ConversationFeed {
    let feed = this.feeds.get(conversationId);
    if (!feed) {
      feed = new ConversationFeed(
        conversationId,
        this,
        this.#subjects.conversation(conversationId),
        baseline,
      );
      this.feeds.set(conversationId, feed);
      this.metrics.feeds.set(this.feeds.size);
    }
    return feed;
  }

  #removeFromFeed(conversationId: string, userId: string): void {
    const feed = this.feeds.get(conversationId);
    if (!feed) return;
    feed.users.delete(userId);
    if (feed.users.size === 0) {
      feed.dispose();
      this.feeds.delete(conversationId);
      this.metrics.feeds.set(this.feeds.size);
    }
  }

  #onUserMessage(user: UserEntry, text: string): void {
    // Unread and notification messages already have the frame's shape (messaging.ts) and are most of
    // this channel's traffic (one of each per recipient of every message): forward them unparsed. Their
    // producers serialise `type` first; anything else is parsed and checked below.
    if (text.startsWith(UNREAD_PREFIX) || text.startsWith(NOTIFICATION_PREFIX)) {
      this.publish(`u:${user.userId}`, text);
      return;
    }
    let msg: { type?: unknown; event?: RawEnvelope };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'unread' || msg.type === 'notification') {
      this.publish(`u:${user.userId}`, text);
      return;
    }
    if (msg.type !== 'membership' || !msg.event) return;
    const event = msg.event;
    const conversationId = String(event.data.conversationId);
    const seq = event.revision;
    const existing = this.feeds.get(conversationId);
    const joins = event.type !== 'MemberLeft';
    if (existing) {
      if (joins && existing.lastSeq >= seq && !user.conversations.has(conversationId)) {
        // The feed published the join before this user had a socket here: replay it to them.
        this.memberJoined(existing, user.userId);
        for (const ws of user.sockets) this.#startCatchUp(ws, existing, seq - 1);
      } else {
        existing.ensureUpTo(seq);
      }
    } else if (joins) {
      // No local member yet: follow the conversation from the event that made this user a member;
      // the feed reads from there and adds the user's sockets when the join goes out.
      this.#feed(conversationId, seq - 1);
    }
  }

  // --- membership as the feeds publish it ---------------------------------------------------------

  memberJoined(feed: ConversationFeed, userId: string): void {
    const user = this.users.get(userId);
    if (!user || feed.users.has(userId)) return;
    feed.users.add(userId);
    user.conversations.add(feed.conversationId);
    for (const ws of user.sockets) {
      if (ws.getUserData().live) ws.subscribe(feed.topic);
      else this.#holdFor(ws, feed);
    }
  }

  memberLeft(feed: ConversationFeed, userId: string): void {
    const user = this.users.get(userId);
    if (!user || !feed.users.has(userId)) return;
    user.conversations.delete(feed.conversationId);
    for (const ws of user.sockets) {
      const held = feed.catchingUp.get(ws);
      if (held) {
        held.left = true;
        feed.catchingUp.delete(ws);
      } else {
        ws.unsubscribe(feed.topic);
      }
    }
    this.#removeFromFeed(feed.conversationId, userId);
  }

  typing(feed: ConversationFeed, typist: string, text: string): void {
    for (const userId of feed.users) if (userId !== typist) this.publish(`u:${userId}`, text);
  }

  /** A presence change of `userId`, to local users sharing one of `conversationIds` with them. */
  presenceChanged(userId: string, conversationIds: readonly string[], text: string): void {
    const recipients = new Set<string>();
    for (const id of conversationIds) {
      const feed = this.feeds.get(id);
      if (!feed) continue;
      for (const u of feed.users) if (u !== userId) recipients.add(u);
    }
    for (const u of recipients) this.publish(`u:${u}`, text);
  }

  /** After a NATS reconnect: anything published while we were away is read from the store. */
  refillAll(): void {
    for (const feed of this.feeds.values()) feed.fill();
  }

  // --- sockets ------------------------------------------------------------------------------------

  open(ws: Socket, hello: ServerFrame): void {
    const data = ws.getUserData();
    this.metrics.connections.inc();
    const user = this.users.get(data.userId);
    if (!user) {
      ws.end(WS_CLOSE.goingAway, 'user detached');
      return;
    }
    user.upgrading--;
    user.sockets.add(ws);
    ws.subscribe(`u:${user.userId}`);
    // Until the first frame (or a short grace), this socket's conversation frames are held: a
    // reconnecting client's first frame is `resume`, and live events must not overtake its replay.
    for (const id of user.conversations) {
      const feed = this.feeds.get(id);
      if (feed) this.#holdFor(ws, feed);
    }
    this.#pendingSockets.add(ws);
    ws.send(frame(hello));
    if (user.sockets.size === 1) this.presence?.userOnline(user.userId, [...user.conversations]);
  }

  close(ws: Socket): void {
    const data = ws.getUserData();
    data.closed = true;
    this.metrics.connections.dec();
    this.#pendingSockets.delete(ws);
    const held = this.#catchUps.get(ws);
    if (held) {
      for (const c of held.values()) c.feed.catchingUp.delete(ws);
      this.#catchUps.delete(ws);
    }
    this.#resumes.delete(ws);
    const user = this.users.get(data.userId);
    if (!user) return;
    user.sockets.delete(ws);
    this.#maybeDetach(user);
  }

  /** The socket's first frame that is not a resume ends the hold: flush and go live. */
  goLive(ws: Socket): void {
    const data = ws.getUserData();
    if (data.live) return;
    data.live = true;
    this.#pendingSockets.delete(ws);
    const held = this.#catchUps.get(ws);
    if (!held) return;
    for (const id of [...held.keys()]) this.#finishCatchUp(ws, id, -1);
  }

  #holdFor(ws: Socket, feed: ConversationFeed): CatchUp {
    let perSocket = this.#catchUps.get(ws);
    if (!perSocket) {
      perSocket = new Map();
      this.#catchUps.set(ws, perSocket);
    }
    const existing = perSocket.get(feed.conversationId);
    if (existing) return existing;
    const c: CatchUp = { feed, frames: [], left: false };
    perSocket.set(feed.conversationId, c);
    feed.catchingUp.set(ws, c);
    return c;
  }

  #startCatchUp(ws: Socket, feed: ConversationFeed, fromSeq: number): void {
    ws.unsubscribe(feed.topic);
    this.#holdFor(ws, feed);
    void this.#replayInto(ws, [{ id: feed.conversationId, from: fromSeq }]).catch((err: unknown) =>
      this.logger.warn({ err }, 'join catch-up failed'),
    );
  }

  /** Sends what was held for `conversationId` (seq > `upTo`) and subscribes the socket live. */
  #finishCatchUp(ws: Socket, conversationId: string, upTo: number): void {
    const perSocket = this.#catchUps.get(ws);
    const c = perSocket?.get(conversationId);
    if (!perSocket || !c) return;
    perSocket.delete(conversationId);
    if (perSocket.size === 0) this.#catchUps.delete(ws);
    c.feed.catchingUp.delete(ws);
    if (ws.getUserData().closed) return;
    for (const f of c.frames) if (f.seq < 0 || f.seq > upTo) this.#send(ws, f.text);
    const user = this.users.get(ws.getUserData().userId);
    if (!c.left && user?.conversations.has(conversationId) && !ws.getUserData().closed) {
      ws.subscribe(c.feed.topic);
    }
  }

  #send(ws: Socket, text: string): boolean {
    const data = ws.getUserData();
    if (data.closed) return false;
    if (ws.send(text) === 2) {
      // Dropped for backpressure: the socket can no longer be gap-free; it must reconnect and resume.
      this.metrics.slowConsumerCloses.inc();
      data.closed = true;
      ws.end(WS_CLOSE.slowConsumer, 'slow consumer');
      return false;
    }
    this.metrics.deliveries.inc();
    return true;
  }

  /** `resume` (API.md §4). Resumes of one socket run one after another. */
  resume(ws: Socket, ref: string | null, positions: Record<string, number>): Promise<void> {
    const previous = this.#resumes.get(ws) ?? Promise.resolve();
    const next = previous.then(() => this.#resume(ws, ref, positions));
    this.#resumes.set(ws, next);
    return next.finally(() => {
      if (this.#resumes.get(ws) === next) this.#resumes.delete(ws);
    });
  }

  async #resume(ws: Socket, ref: string | null, positions: Record<string, number>): Promise<void> {
    const data = ws.getUserData();
    if (data.closed) return;
    const user = this.users.get(data.userId);
    if (!user) return;
    const unknown: string[] = [];
    const targets: { id: string; from: number }[] = [];
    for (const [rawId, lastSeen] of Object.entries(positions)) {
      const id = rawId.toLowerCase();
      if (!user.conversations.has(id) || targets.some((t) => t.id === id)) unknown.push(rawId);
      else targets.push({ id, from: lastSeen });
    }
    // Conversations the client did not name resume from "now": release what was held for them.
    const wasLive = data.live;
    data.live = true;
    this.#pendingSockets.delete(ws);
    const held = this.#catchUps.get(ws);
    if (held && !wasLive) {
      for (const id of [...held.keys()])
        if (!targets.some((t) => t.id === id)) this.#finishCatchUp(ws, id, -1);
    }
    const truncated = await this.#replayInto(ws, targets);
    if (data.closed) return;
    this.#send(ws, frame({ type: 'resumed', ref, truncated, unknown }));
  }

  /**
   * The race-free replay: (1) hold the socket's live frames of each conversation (unsubscribed from
   * the topic, frames collected by the feed), (2) read the missed events from the store, which by
   * then holds at least everything the feed published, (3) send the replay, then the held frames with
   * a higher seq, and only then subscribe the socket to the topic again. Steps 3 run synchronously,
   * so nothing can interleave.
   */
  async #replayInto(ws: Socket, targets: { id: string; from: number }[]): Promise<string[]> {
    const feeds = targets.map((t) => this.feeds.get(t.id));
    // A feed must know its baseline before the replay is read, or events between our read and its
    // baseline would be neither replayed nor published.
    await Promise.all(feeds.map((f) => f?.ready));
    const data = ws.getUserData();
    if (data.closed) return [];
    const active: { id: string; from: number; feed: ConversationFeed }[] = [];
    for (const [i, t] of targets.entries()) {
      const feed = feeds[i];
      if (!feed || feed.disposed) continue;
      if (!this.#catchUps.get(ws)?.has(t.id)) {
        ws.unsubscribe(feed.topic);
        this.#holdFor(ws, feed);
      }
      active.push({ ...t, feed });
    }
    let results: Awaited<ReturnType<EventStore['readStream']>>[];
    try {
      results = await Promise.all(
        active.map((t) =>
          this.store.readStream(t.feed.stream, { fromRevision: t.from + 1, maxCount: RESUME_MAX + 1 }),
        ),
      );
    } catch (err) {
      for (const t of active) this.#finishCatchUp(ws, t.id, -1);
      throw err;
    }
    if (data.closed) return [];
    const truncated: string[] = [];
    const upTo: number[] = [];
    for (const [i, t] of active.entries()) {
      const events = results[i]!;
      if (events.length > RESUME_MAX) {
        truncated.push(t.id);
        upTo.push(-1);
        continue;
      }
      let last = t.from;
      for (const e of events) {
        if (
          !this.#send(
            ws,
            `{"type":"event","conversationId":${JSON.stringify(t.id)},"seq":${e.revision},"event":${JSON.stringify(e)}}`,
          )
        )
          return truncated;
        last = e.revision;
        if (e.type === 'MemberLeft' && e.data.userId === data.userId) {
          const c = this.#catchUps.get(ws)?.get(t.id);
          if (c) c.left = true;
          break;
        }
      }
      upTo.push(last);
    }
    for (const [i, t] of active.entries()) this.#finishCatchUp(ws, t.id, upTo[i]!);
    return truncated;
  }

  // --- sweeping -------------------------------------------------------------------------------------

  /** Ends the pre-resume hold of sockets that sent nothing within the grace period. */
  sweepPending(now: number): void {
    for (const ws of this.#pendingSockets) {
      if (now - ws.getUserData().openedAt >= this.#graceMs) this.goLive(ws);
    }
  }

  /** One pass over every socket: expired tokens (4401) and slow consumers (1013). */
  sweepSockets(now: number, softBackpressure: number): void {
    for (const user of this.users.values()) {
      for (const ws of user.sockets) {
        const data = ws.getUserData();
        if (data.closed) continue;
        if (now >= data.expiresAt) {
          data.closed = true;
          ws.end(WS_CLOSE.tokenExpired, 'token expired');
        } else if (ws.getBufferedAmount() > softBackpressure) {
          data.closed = true;
          this.metrics.slowConsumerCloses.inc();
          ws.end(WS_CLOSE.slowConsumer, 'slow consumer');
        }
      }
    }
  }

  /** Graceful shutdown: every socket gets 1001 and clients reconnect elsewhere. */
  closeAll(): void {
    for (const user of [...this.users.values()]) {
      for (const ws of [...user.sockets]) {
        const data = ws.getUserData();
        if (data.closed) continue;
        data.closed = true;
        ws.end(WS_CLOSE.goingAway, 'server going away');
      }
    }
  }
}

/** `<prefix>.user.<token>` → userId (the inverse of `subjectToken`). */
const userIdOfSubject = (subject: string): string => {
  const token = subject.slice(subject.lastIndexOf('.') + 1);
  return token.includes('~')
    ? token.replace(/~([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    : token;
};
