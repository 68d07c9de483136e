import type { TemplatedApp } from 'uWebSockets.js';
import { type NatsSubjects, type RawEnvelope, RESUME_MAX_EVENTS, WS_CLOSE } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { NatsConnection } from 'nats';
import { eventFrame } from '../client/frames.js';
import { membersAtStart } from '../membership/tail.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { type CatchUp, ConversationFeed, type FeedHost } from './feed.js';
import { monotonicMs, type Socket } from './types.js';
import { type BlockNews, LocalUser, type MembershipNews, type WaitingSocket } from './user.js';

export { LocalUser } from './user.js';

/** A user's membership of one conversation: the seq of the event that made it. */
export type Membership = { conversationId: string; seq: number };

/** A block between a user and `otherUserId`: the user blocks the other (`blocking`) or is blocked. */
export type Block = { otherUserId: string; blocking: boolean };

/** Where the gateway learns its users' conversations (and blocks) at connect time: many users per read. */
export type MembershipSource = {
  /** The memberships of each of `userIds` as of `position`, a log position read after they were asked for. */
  membershipsOf(userIds: readonly string[]): Promise<{
    position: string;
    memberships: ReadonlyMap<string, readonly Membership[]>;
    /** The blocks each user is in, either way, as of `position` (users with none are absent). */
    blocks?: ReadonlyMap<string, readonly Block[]>;
  }>;
};

/** Presence transitions of local users (first local socket opened / last one closed). */
export type PresenceSink = {
  userOnline(userId: string, conversationIds: readonly string[]): void;
  userOffline(userId: string, conversationIds: readonly string[]): void;
};

export type HubOptions = {
  app: TemplatedApp;
  store: EventStore;
  nats: NatsConnection;
  subjects: NatsSubjects;
  membership: MembershipSource;
  metrics: GatewayMetrics;
  logger: Logger;
  /** More sockets of one user than this: the oldest is closed with 4409. */
  maxSocketsPerUser: number;
  /** How long a new socket's events are held for a `resume` that may come as its first frame. */
  resumeGraceMs?: number;
  /**
   * How long a feed waits at least for events a hint named to come by NATS before it reads the store
   * (default 50; 0 reads at once); longer while the live path is slow (`Hub.hintGraceMs`).
   */
  hintGraceMs?: number;
};

const decoder = new TextDecoder();
const UNREAD_PREFIX = '{"type":"unread",';
const NOTIFICATION_PREFIX = '{"type":"notification",';
/** Frames a socket may send before its hello; more is a flood (1008). */
const MAX_EARLY_FRAMES = 64;
/** Users whose conversations one read asks for, and how many such reads run at once. */
const MAX_LOAD_BATCH = 1000;
const MAX_LOADS_RUNNING = 2;
/**
 * Reads start at most this often: a connect burst's upgrades then share a read (three statements)
 * per this much time instead of one per turn of the event loop, which carried only a few of them
 * (in B1's burst, one read per ~8 connects). An isolated connect is read at once.
 */
const LOAD_GATHER_MS = 20;
/** The longest a hint waits for NATS, however far the live path falls behind (unless configured longer). */
const MAX_HINT_GRACE_MS = 2000;
/** Weight of each sample in the moving average of how far NATS trails the heads. */
const HEAD_LAG_WEIGHT = 0.2;
/** Time constant of that average's decay towards 0 between samples (a burst is forgotten in seconds). */
const HEAD_LAG_DECAY_MS = 3000;

/** The users whose conversations one read of the membership source loads (a connect burst's worth). */
class MembershipLoad {
  readonly users: LocalUser[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (err: unknown) => void;
  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.done.catch(() => {});
  }
}

type Target = { feed: ConversationFeed; from: number };
/** `upTo`: the seq the client has (what it named, or the last event sent); `sent`: the last event sent. */
type Replayed = { feed: ConversationFeed; upTo: number; sent: number };

/**
 * The gateway's delivery core: which local users are in which conversation, one feed (NATS
 * subscription + uWS topic) per conversation with local members, and the per-socket catch-up that
 * makes `resume` gap- and duplicate-free against live delivery.
 *
 * Membership is kept per conversation (`feed.members`: userId → seq of the event that made the member)
 * and changes only in the conversation stream's order: every change carries its seq and log position,
 * and one at or below what is already known for that user and conversation is stale (a relay
 * redelivering after a restart, a hint racing its feed) and changes nothing.
 */
export class Hub implements FeedHost {
  readonly users = new Map<string, LocalUser>();
  readonly feeds = new Map<string, ConversationFeed>();
  readonly store: EventStore;
  readonly nats: NatsConnection;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  presence: PresenceSink | undefined;
  /** Handles a frame that arrived before its socket was opened, once it is (the server's message handler). */
  onEarlyFrame: ((ws: Socket, message: ArrayBuffer, isBinary: boolean) => void) | undefined;
  readonly #app: TemplatedApp;
  readonly #subjects: NatsSubjects;
  readonly #membership: MembershipSource;
  readonly #maxSocketsPerUser: number;
  readonly #catchUps = new Map<Socket, Map<string, CatchUp>>();
  /** Replays of one socket (resumes, join catch-ups) run one after another. */
  readonly #replays = new Map<Socket, Promise<void>>();
  readonly #pendingSockets = new Set<Socket>();
  readonly #graceMs: number;
  /** Reads waiting to start; the last one still takes users. */
  readonly #loads: MembershipLoad[] = [];
  #loadsRunning = 0;
  #loadScheduled = false;
  #lastLoadAt = Number.NEGATIVE_INFINITY;
  #gatherTimer: NodeJS.Timeout | undefined;
  readonly #minHintGraceMs: number;
  /** Moving average of how long after a head NATS brought its events (ms), as of `#headLagAt`. */
  #headLagMs = 0;
  #headLagAt = 0;

  constructor(options: HubOptions) {
    this.#app = options.app;
    this.store = options.store;
    this.nats = options.nats;
    this.#subjects = options.subjects;
    this.#membership = options.membership;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.#maxSocketsPerUser = options.maxSocketsPerUser;
    this.#graceMs = options.resumeGraceMs ?? 500;
    this.#minHintGraceMs = options.hintGraceMs ?? 50;
    // One wildcard subscription for every user channel instead of one per local user: a nats.js
    // subscription costs ~1.2 KiB of heap, over half the per-socket memory budget. The price is that
    // every gateway sees every user's messages and drops those of users it does not hold.
    this.nats.subscribe(this.#subjects.allUsers, {
      callback: (err, msg) => {
        if (err) return;
        const user = this.users.get(userIdOfSubject(msg.subject));
        if (user) this.#onUserMessage(user, decoder.decode(msg.data));
      },
    });
    // Conversation events come from their writer, right after its commit; the relay's heads say how far
    // each conversation's stream has got, so a feed that missed an event (its writer died before it
    // published) reads it from the store a relay batch and `hintGraceMs` later.
    this.nats.subscribe(this.#subjects.heads, {
      callback: (err, msg) => {
        if (!err) this.#onHeads(decoder.decode(msg.data));
      },
    });
  }

  #onHeads(json: string): void {
    let heads: unknown;
    try {
      heads = (JSON.parse(json) as { heads?: unknown }).heads;
    } catch (err) {
      this.logger.warn({ err }, 'unreadable heads message');
      return;
    }
    if (typeof heads !== 'object' || heads === null) return;
    for (const [conversationId, seq] of Object.entries(heads)) {
      if (typeof seq === 'number') this.feeds.get(conversationId)?.ensureUpTo(seq);
    }
  }

  /**
   * How long a feed waits for events a head named before it reads them from the store: twice how far
   * NATS has lately trailed the heads (a moving average, on this process's monotonic clock), at least
   * the configured grace, at most 2 s. Under saturation the writer's publishes fall far behind the
   * relay's heads, and a fixed grace had the gateways read Postgres, when it is busiest, for what NATS
   * then brought as duplicates. A read counts as a sample of the wait it ended, so the grace grows
   * until the events come in time; it decays back within seconds once they do (0: read at once).
   */
  get hintGraceMs(): number {
    if (this.#minHintGraceMs <= 0) return 0;
    const cap = Math.max(MAX_HINT_GRACE_MS, this.#minHintGraceMs);
    return Math.min(cap, Math.max(this.#minHintGraceMs, 2 * this.#headLag(performance.now())));
  }

  observeHeadLag(ms: number): void {
    const now = performance.now();
    const lag = this.#headLag(now);
    this.#headLagMs = lag + HEAD_LAG_WEIGHT * (Math.min(Math.max(ms, 0), MAX_HINT_GRACE_MS) - lag);
    this.#headLagAt = now;
  }

  #headLag(now: number): number {
    return this.#headLagMs * Math.exp(-(now - this.#headLagAt) / HEAD_LAG_DECAY_MS);
  }

  publish(topic: string, text: string): void {
    const n = this.#app.numSubscribers(topic);
    if (n === 0) return;
    this.#app.publish(topic, text);
    this.metrics.deliveries.inc(n);
  }

  // --- users -------------------------------------------------------------------------------------

  /**
   * Called once the token is verified, before the upgrade is answered. A user new to this gateway is
   * registered at once (membership news from now on is kept) and its conversations are read together
   * with those of the other connects of the moment; `whenLoaded` says when the upgrade may proceed.
   */
  attachUser(userId: string): LocalUser {
    let user = this.users.get(userId);
    if (!user) {
      user = new LocalUser(userId);
      this.users.set(userId, user);
      user.load = this.#enqueueLoad(user);
    }
    user.upgrading++;
    return user;
  }

  /** Undefined when the user's conversations are known; else the read to wait for (rejects on failure). */
  whenLoaded(user: LocalUser): Promise<void> | undefined {
    return user.load?.done;
  }

  /** An upgrade that will not open a socket after all (client gone, server draining). */
  releaseUpgrade(user: LocalUser): void {
    user.upgrading--;
    this.#maybeDetach(user);
  }

  #enqueueLoad(user: LocalUser): MembershipLoad {
    let load = this.#loads.at(-1);
    if (!load || load.users.length >= MAX_LOAD_BATCH) {
      load = new MembershipLoad();
      this.#loads.push(load);
    }
    load.users.push(user);
    if (!this.#loadScheduled) {
      // The rest of this turn of the event loop (a burst of upgrades arrives together) joins the read.
      this.#loadScheduled = true;
      setImmediate(() => {
        this.#loadScheduled = false;
        this.#startLoads();
      });
    }
    return load;
  }

  #startLoads(): void {
    while (this.#loadsRunning < MAX_LOADS_RUNNING && this.#loads.length > 0) {
      const wait = this.#lastLoadAt + LOAD_GATHER_MS - performance.now();
      if (wait > 0) {
        this.#gatherTimer ??= setTimeout(() => {
          this.#gatherTimer = undefined;
          this.#startLoads();
        }, wait);
        return;
      }
      this.#lastLoadAt = performance.now();
      const load = this.#loads.shift() as MembershipLoad;
      this.#loadsRunning++;
      void this.#runLoad(load).finally(() => {
        this.#loadsRunning--;
        this.#startLoads();
      });
    }
  }

  async #runLoad(load: MembershipLoad): Promise<void> {
    const users = load.users.filter((u) => this.users.get(u.userId) === u);
    if (users.length === 0) return load.resolve();
    let snapshot: Awaited<ReturnType<MembershipSource['membershipsOf']>>;
    try {
      snapshot = await this.#membership.membershipsOf(users.map((u) => u.userId));
    } catch (err) {
      for (const u of users) {
        if (this.users.get(u.userId) === u) this.users.delete(u.userId);
        // Their close handlers take them off the list and release their upgrades.
        for (const w of [...(u.waiting ?? [])]) {
          this.logger.error({ err, userId: u.userId }, 'could not load the conversations of a new socket');
          w.ws.getUserData().closed = true;
          w.ws.end(WS_CLOSE.internalError, 'could not load conversations');
        }
      }
      return load.reject(err);
    }
    for (const u of users) {
      if (this.users.get(u.userId) === u) {
        const blocks = snapshot.blocks?.get(u.userId);
        this.#loaded(u, snapshot.position, snapshot.memberships.get(u.userId) ?? [], blocks);
      }
    }
    load.resolve();
  }

  #loaded(
    user: LocalUser,
    position: string,
    memberships: readonly Membership[],
    blocks: readonly Block[] = [],
  ): void {
    user.loadedAt = position;
    user.load = undefined;
    for (const b of blocks) user.setBlock(b.otherUserId, b.blocking, true);
    for (const m of memberships) this.#join(user, this.#feed(m.conversationId), m.seq, false);
    const backlog = user.backlog ?? [];
    user.backlog = undefined;
    for (const news of backlog) {
      if ('otherUserId' in news) this.#blockNews(user, news);
      else this.#membershipNews(user, news);
    }
    const waiting = user.waiting;
    user.waiting = undefined;
    for (const w of waiting ?? []) {
      const data = w.ws.getUserData();
      if (data.closed) continue;
      data.openedAt = monotonicMs();
      this.open(w.ws, w.hello);
      for (const f of w.early ?? []) this.onEarlyFrame?.(w.ws, f.message, f.isBinary);
    }
  }

  /** A block or unblock involving `user` (a control message on its subject): applied if newer than the load. */
  #blockNews(user: LocalUser, news: BlockNews): void {
    if (user.backlog) user.backlog.push(news);
    else if (news.position > user.loadedAt) user.setBlock(news.otherUserId, news.blocking, news.blocked);
  }

  #maybeDetach(user: LocalUser): void {
    if (user.sockets.length > 0 || user.upgrading > 0) return;
    if (this.users.get(user.userId) === user) this.users.delete(user.userId);
    const conversations = user.conversations;
    for (const id of conversations) {
      const feed = this.feeds.get(id);
      if (feed) this.#removeFromFeed(feed, user.userId);
    }
    if (user.online) {
      user.online = false;
      this.presence?.userOffline(user.userId, conversations);
    }
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

  #removeFromFeed(feed: ConversationFeed, userId: string): void {
    feed.members.delete(userId);
    if (feed.members.size > 0) return;
    // Inside a run of events (a fill's page, held events), not before it ends: the run may hold the same
    // user's next MemberJoined, and then goes on, from where it is, for them. Ended at once, the join
    // would start a new feed at the stream's end as read then, and what was stored between would be
    // nobody's. Outside a run at once, so that membership news coming next finds no feed and starts one
    // from its own seq.
    if (feed.emittingRun) queueMicrotask(() => this.#endFeedIfEmpty(feed));
    else this.#endFeedIfEmpty(feed);
  }

  #endFeedIfEmpty(feed: ConversationFeed): void {
    if (feed.members.size > 0 || feed.disposed || this.feeds.get(feed.conversationId) !== feed) return;
    feed.dispose();
    this.feeds.delete(feed.conversationId);
    this.metrics.feeds.set(this.feeds.size);
  }

  #onUserMessage(user: LocalUser, text: string): void {
    // Unread and notification messages already have the frame's shape and are most of this channel's
    // traffic: forward them unparsed. Their producers serialise `type` first; anything else is parsed.
    if (text.startsWith(UNREAD_PREFIX) || text.startsWith(NOTIFICATION_PREFIX)) {
      this.#publishToUser(user, text);
      return;
    }
    let msg: { type?: unknown; event?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'unread' || msg.type === 'notification') {
      this.#publishToUser(user, text);
      return;
    }
    if (msg.type === 'block') {
      // Kept by the gateway (presence), never forwarded: no socket learns of a block from it.
      const news = blockHint(msg.event, user.userId);
      if (news) this.#blockNews(user, news);
      return;
    }
    if (msg.type !== 'membership') return;
    const news = membershipHint(msg.event, user.userId);
    if (news) this.#membershipNews(user, news);
  }

  // --- membership, in each conversation stream's order --------------------------------------------

  memberJoined(feed: ConversationFeed, userId: string, seq: number, position: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    this.#membershipNews(user, {
      conversationId: feed.conversationId,
      seq,
      position,
      joined: true,
      fromFeed: true,
    });
  }

  memberLeft(feed: ConversationFeed, userId: string, seq: number, position: string): void {
    const user = this.users.get(userId);
    if (!user) return;
    this.#membershipNews(user, {
      conversationId: feed.conversationId,
      seq,
      position,
      joined: false,
      fromFeed: true,
    });
  }

  /**
   * One membership event of `user`, from the conversation's feed (emitted in seq order) or as a hint on
   * the user subject (how a gateway without the conversation learns of a join). Applied only if newer
   * than what is known of the user in that conversation.
   */
  #membershipNews(user: LocalUser, news: MembershipNews): void {
    if (user.backlog) {
      user.backlog.push(news);
      return;
    }
    // At or before the position the user's conversations were read at: already in them.
    if (news.position <= user.loadedAt) return;
    const { conversationId, seq } = news;
    let feed = this.feeds.get(conversationId);
    const known = feed?.members.get(user.userId) ?? user.leftAt(conversationId) ?? -1;
    if (seq <= known) return;
    if (!news.fromFeed) {
      if (!feed) {
        // No local member: follow the conversation from this event on; its feed applies the join when
        // it emits it (and the user's sockets get the MemberJoined as their first frame of it).
        if (news.joined) this.#feed(conversationId, seq - 1);
        else user.rememberLeft(conversationId, seq);
        return;
      }
      if (!feed.live) {
        // The feed's starting point is not known yet: decide once it is.
        feed.ready.then(() => {
          if (!feed?.disposed && this.users.get(user.userId) === user) this.#membershipNews(user, news);
        });
        return;
      }
      if (seq > feed.lastSeq) {
        // The feed has not reached it: it applies it in order when it does.
        feed.ensureUpTo(seq);
        return;
      }
      // The feed started past this event, without the user: apply it here, with a replay from it.
    }
    feed ??= this.#feed(conversationId);
    if (news.joined) this.#join(user, feed, seq, !news.fromFeed);
    else this.#leave(user, feed, seq);
  }

  #join(user: LocalUser, feed: ConversationFeed, seq: number, replayFromJoin: boolean): void {
    const wasMember = feed.members.has(user.userId);
    feed.members.set(user.userId, seq);
    if (wasMember) return;
    user.joined(feed.conversationId);
    for (const ws of user.sockets) {
      if (replayFromJoin) this.#startCatchUp(ws, feed, seq - 1);
      else if (ws.getUserData().live) ws.subscribe(feed.topic);
      else this.#holdFor(ws, feed);
    }
  }

  #leave(user: LocalUser, feed: ConversationFeed, seq: number): void {
    user.rememberLeft(feed.conversationId, seq);
    if (!feed.members.has(user.userId)) return;
    user.leftConversation(feed.conversationId);
    for (const ws of user.sockets) {
      const held = feed.catchingUp.get(ws);
      if (held) {
        held.left = true;
        // Held ahead of the feed: it will not catch up now; what is held past its watermark goes out.
        if (held.until >= 0 && !held.replaying) this.#finishCatchUp(ws, feed.conversationId, -1);
        else if (!held.replaying) feed.catchingUp.delete(ws);
      } else {
        ws.unsubscribe(feed.topic);
      }
    }
    this.#removeFromFeed(feed, user.userId);
  }

  caughtUp(feed: ConversationFeed, ws: Socket): void {
    this.#finishCatchUp(ws, feed.conversationId, -1);
  }

  typing(feed: ConversationFeed, typist: string, text: string): void {
    for (const userId of feed.members.keys()) {
      const user = userId === typist ? undefined : this.users.get(userId);
      if (user) this.#publishToUser(user, text);
    }
  }

  /**
   * A presence change of `userId`, to local users sharing one of `conversationIds` with them, except
   * those in a block with them, either way (each local user holds its blocks in both directions).
   */
  presenceChanged(userId: string, conversationIds: readonly string[], text: string): void {
    // A connect burst announces every user: one conversation (the common case) needs no dedupe set.
    if (conversationIds.length === 1) {
      const feed = this.feeds.get(conversationIds[0] as string);
      if (feed) for (const u of feed.members.keys()) if (u !== userId) this.#presenceTo(u, userId, text);
      return;
    }
    const recipients = new Set<string>();
    for (const id of conversationIds) {
      const feed = this.feeds.get(id);
      if (!feed) continue;
      for (const u of feed.members.keys()) if (u !== userId) recipients.add(u);
    }
    for (const u of recipients) this.#presenceTo(u, userId, text);
  }

  #presenceTo(recipient: string, userId: string, text: string): void {
    const user = this.users.get(recipient);
    if (user && !user.inBlockWith(userId)) this.#publishToUser(user, text);
  }

  /**
   * A frame for every socket of a local user (each is on its `u:` topic from its open on): a user
   * without open sockets costs no call into uWS, which matters for a connect burst's presence frames.
   */
  #publishToUser(user: LocalUser, text: string): void {
    const n = user.sockets.length;
    if (n === 0) return;
    this.#app.publish(`u:${user.userId}`, text);
    this.metrics.deliveries.inc(n);
  }

  /** After a NATS reconnect: anything published while we were away is read from the store. */
  refillAll(): void {
    for (const feed of this.feeds.values()) feed.fill();
  }

  // --- sockets ------------------------------------------------------------------------------------

  /**
   * uWS's open handler. A socket whose user's conversations are known opens at once; one upgraded while
   * they are still being read (its user's first connect here) waits for the read, without hello or
   * frames, and opens when it ends (it is closed with 1011 if the read fails).
   */
  admit(ws: Socket, hello: string): void {
    const user = ws.getUserData().user;
    if (!user.load) {
      this.open(ws, hello);
      return;
    }
    const waiting: WaitingSocket = { ws, hello, early: undefined };
    if (user.waiting) user.waiting.push(waiting);
    else user.waiting = [waiting];
  }

  /**
   * A frame of a socket that is still waiting to be opened is kept (a copy: uWS reuses the buffer) and
   * handled after its hello. False when the socket is open; a socket sending too many is closed (1008).
   */
  holdEarlyFrame(ws: Socket, message: ArrayBuffer, isBinary: boolean): boolean {
    const waiting = ws.getUserData().user.waiting?.find((w) => w.ws === ws);
    if (!waiting) return false;
    waiting.early ??= [];
    if (waiting.early.length >= MAX_EARLY_FRAMES) {
      ws.getUserData().closed = true;
      ws.end(WS_CLOSE.policyViolation, 'flooding');
    } else {
      waiting.early.push({ message: message.slice(0), isBinary });
    }
    return true;
  }

  open(ws: Socket, hello: string): void {
    const data = ws.getUserData();
    const user = data.user;
    this.metrics.connections.inc();
    user.upgrading--;
    if (this.users.get(user.userId) !== user) {
      data.closed = true;
      ws.end(WS_CLOSE.goingAway, 'user detached');
      return;
    }
    user.addSocket(ws);
    if (user.sockets.length > this.#maxSocketsPerUser) {
      // A device the user no longer uses is the likeliest to be the oldest: it makes room.
      const oldest = user.sockets[0] as Socket;
      oldest.getUserData().closed = true;
      oldest.end(WS_CLOSE.tooManySockets, 'too many sockets for this user');
    }
    ws.subscribe(`u:${user.userId}`);
    // Until the first frame (or a short grace), this socket's conversation frames are held: a
    // reconnecting client's first frame is `resume`, and live events must not overtake its replay.
    for (const id of user.conversations) {
      const feed = this.feeds.get(id);
      if (feed) this.#holdFor(ws, feed);
    }
    this.#pendingSockets.add(ws);
    ws.send(hello);
    if (!user.online) {
      user.online = true;
      // The sink keeps the list: a copy, unless it is the shared empty one.
      const conversations = user.conversations.length === 0 ? user.conversations : [...user.conversations];
      this.presence?.userOnline(user.userId, conversations);
    }
  }

  close(ws: Socket): void {
    const data = ws.getUserData();
    data.closed = true;
    const user = data.user;
    const waiting = user.waiting?.findIndex((w) => w.ws === ws) ?? -1;
    if (waiting >= 0) {
      // Never opened: its upgrade is released instead.
      (user.waiting as WaitingSocket[]).splice(waiting, 1);
      this.releaseUpgrade(user);
      return;
    }
    this.metrics.connections.dec();
    this.#pendingSockets.delete(ws);
    const held = this.#catchUps.get(ws);
    if (held) {
      for (const c of held.values()) c.feed.catchingUp.delete(ws);
      this.#catchUps.delete(ws);
    }
    this.#replays.delete(ws);
    if (user.removeSocket(ws)) this.#maybeDetach(user);
  }

  /** The socket's first frame that is not a resume ends the hold: flush and go live. */
  goLive(ws: Socket): void {
    const data = ws.getUserData();
    if (data.live) return;
    data.live = true;
    this.#pendingSockets.delete(ws);
    this.#releaseHolds(ws);
  }

  /** Ends the holds of the socket that no replay is working on (those end when their replay does). */
  #releaseHolds(ws: Socket, except?: ReadonlySet<string>): void {
    const held = this.#catchUps.get(ws);
    if (!held) return;
    for (const [id, c] of [...held]) if (!c.replaying && !except?.has(id)) this.#finishCatchUp(ws, id, -1);
  }

  #holdFor(ws: Socket, feed: ConversationFeed): CatchUp {
    let perSocket = this.#catchUps.get(ws);
    if (!perSocket) {
      perSocket = new Map();
      this.#catchUps.set(ws, perSocket);
    }
    const existing = perSocket.get(feed.conversationId);
    if (existing) return existing;
    const c: CatchUp = { feed, frames: [], left: false, replaying: false, until: -1 };
    perSocket.set(feed.conversationId, c);
    feed.catchingUp.set(ws, c);
    return c;
  }

  /** The user joined a conversation whose feed already passed the join: replay it to this socket. */
  #startCatchUp(ws: Socket, feed: ConversationFeed, fromSeq: number): void {
    this.#hold(ws, feed);
    this.#serially(ws, async () => {
      const replayed = await this.#replay(ws, [{ feed, from: fromSeq }]);
      for (const d of replayed.done) this.#finishCatchUp(ws, d.feed.conversationId, d.upTo, d.sent);
      if (replayed.failed) throw replayed.failed;
    }).catch((err: unknown) => this.logger.warn({ err }, 'join catch-up failed'));
  }

  /**
   * Sends what was held for `conversationId` (seq > `upTo`) and subscribes the socket live — unless the
   * replay sent events from the store that the feed has not published yet (`sent` past the feed's
   * `lastSeq`: its relay lags behind the store): then the socket stays held until the feed publishes
   * them (`caughtUp`), and what the feed publishes up to there is not sent to it again. Only events
   * really sent count: a client naming a seq past the stream's end is up to date (API.md §4), and live
   * events after the end go to it as to everyone.
   */
  #finishCatchUp(ws: Socket, conversationId: string, upTo: number, sent = -1): void {
    const perSocket = this.#catchUps.get(ws);
    const c = perSocket?.get(conversationId);
    if (!perSocket || !c) return;
    const until = Math.max(sent, c.until);
    const skipUpTo = Math.max(upTo, until);
    if (until > c.feed.lastSeq && !c.left && !c.feed.disposed && !ws.getUserData().closed) {
      c.replaying = false;
      c.until = until;
      c.frames = c.frames.filter((f) => f.seq < 0 || f.seq > skipUpTo);
      return;
    }
    perSocket.delete(conversationId);
    if (perSocket.size === 0) this.#catchUps.delete(ws);
    c.feed.catchingUp.delete(ws);
    const data = ws.getUserData();
    if (data.closed) return;
    for (const f of c.frames) if (f.seq < 0 || f.seq > skipUpTo) this.#send(ws, f.text);
    if (!c.left && c.feed.members.has(data.user.userId) && !data.closed) ws.subscribe(c.feed.topic);
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

  #serially(ws: Socket, work: () => Promise<void>): Promise<void> {
    const previous = this.#replays.get(ws) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(work);
    this.#replays.set(ws, next);
    return next.finally(() => {
      if (this.#replays.get(ws) === next) this.#replays.delete(ws);
    });
  }

  /** `resume` (API.md §4). Replays of one socket run one after another. */
  resume(ws: Socket, ref: string | null, positions: Record<string, number>): Promise<void> {
    // Read now: which conversations the client omitted resume from "now", not from when it is its turn.
    const data = ws.getUserData();
    const unknown: string[] = [];
    const targets: Target[] = [];
    const named = new Set<string>();
    for (const [rawId, lastSeen] of Object.entries(positions)) {
      const id = rawId.toLowerCase();
      const feed = this.feeds.get(id);
      if (!feed?.members.has(data.user.userId) || named.has(id)) {
        unknown.push(rawId);
        continue;
      }
      named.add(id);
      targets.push({ feed, from: lastSeen });
      // Held from now: live frames of a named conversation wait for its replay.
      this.#hold(ws, feed);
    }
    if (!data.live) {
      data.live = true;
      this.#pendingSockets.delete(ws);
      this.#releaseHolds(ws, named);
    }
    return this.#serially(ws, async () => {
      const replayed = await this.#replay(ws, targets);
      if (!replayed.failed && !data.closed) {
        this.#send(ws, JSON.stringify({ type: 'resumed', ref, truncated: replayed.truncated, unknown }));
      }
      // `resumed` first, then the live frames held meanwhile, in this one synchronous step.
      for (const d of replayed.done) this.#finishCatchUp(ws, d.feed.conversationId, d.upTo, d.sent);
      if (replayed.failed) throw replayed.failed;
    });
  }

  /**
   * Sends each target's missed events, one conversation at a time (at most RESUME_MAX_EVENTS + 1 events
   * in memory). The socket's live frames of every target are held meanwhile (off the topic, collected
   * by the feed); the caller then sends those with a higher seq than `upTo` and puts the socket back on
   * the topic, synchronously, so nothing comes between. Once the feed knows its starting point, the
   * store holds at least everything the feed published. `done` lists every target, those not replayed
   * (failed, closed, truncated) with `upTo` -1: their held frames then go out as they are.
   */
  async #replay(
    ws: Socket,
    targets: readonly Target[],
  ): Promise<{ done: Replayed[]; truncated: string[]; failed: unknown }> {
    const data = ws.getUserData();
    const done: Replayed[] = targets.map((t) => ({ feed: t.feed, upTo: -1, sent: -1 }));
    const truncated: string[] = [];
    // A replay queued behind another may start after the socket closed: uWS throws on a closed socket.
    if (!data.closed) for (const t of targets) this.#hold(ws, t.feed);
    let failed: unknown;
    try {
      for (const [i, t] of targets.entries()) {
        await t.feed.ready;
        const c = this.#catchUps.get(ws)?.get(t.feed.conversationId);
        if (data.closed) break;
        if (!c || t.feed.disposed || c.left) continue;
        const events = await this.store.readStream(t.feed.stream, {
          fromRevision: t.from + 1,
          maxCount: RESUME_MAX_EVENTS + 1,
        });
        if (data.closed) break;
        if (events.length > RESUME_MAX_EVENTS) {
          truncated.push(t.feed.conversationId);
          continue;
        }
        let last = t.from;
        // Past the user's own leave, only their next join entitles them again; what lies between is not
        // theirs to see. The feed's membership says whether they came back at all (a later join than the
        // leave); the events say when: the first MemberJoined of theirs after it (not the latest one: a
        // user who left and came back twice in the replayed range saw the first comeback's events).
        // The range may also start inside an absence (a resume from their own MemberLeft, or from before
        // it was read): then the first membership event of theirs in it is a join, as nobody joins a
        // conversation they are in, and what comes before that join is not theirs either.
        const userId = data.user.userId;
        let out =
          events.find(
            (e) => (e.type === 'MemberJoined' || e.type === 'MemberLeft') && e.data.userId === userId,
          )?.type === 'MemberJoined';
        for (const e of events) {
          const own = e.data.userId === userId;
          if (out && !(own && e.type === 'MemberJoined')) continue;
          out = false;
          if (!this.#send(ws, eventFrame(t.feed.conversationId, e.revision, JSON.stringify(e)))) break;
          last = e.revision;
          if (own && e.type === 'MemberLeft') {
            const rejoinedAt = t.feed.members.get(userId) ?? -1;
            if (rejoinedAt <= e.revision) {
              c.left = true;
              break;
            }
            out = true;
          }
        }
        (done[i] as Replayed).upTo = last;
        if (last > t.from) (done[i] as Replayed).sent = last;
      }
    } catch (err) {
      failed = err ?? new Error('replay failed');
    }
    for (const d of done) {
      const c = this.#catchUps.get(ws)?.get(d.feed.conversationId);
      if (c) c.replaying = false;
    }
    return { done, truncated, failed };
  }

  /** Holds the socket's live frames of `feed` for a replay (off the topic while held). */
  #hold(ws: Socket, feed: ConversationFeed): void {
    if (!this.#catchUps.get(ws)?.has(feed.conversationId)) ws.unsubscribe(feed.topic);
    this.#holdFor(ws, feed).replaying = true;
  }

  // --- sweeping -------------------------------------------------------------------------------------

  /** Ends the pre-resume hold of sockets that sent nothing within the grace period (`now`: monotonicMs). */
  sweepPending(now: number): void {
    for (const ws of this.#pendingSockets) {
      if (now - ws.getUserData().openedAt >= this.#graceMs) this.goLive(ws);
    }
  }

  /** One pass over every socket: expired tokens (4401) and slow consumers (1013). */
  sweepSockets(nowSeconds: number, softBackpressure: number): void {
    for (const user of this.users.values()) {
      for (const ws of user.sockets) {
        const data = ws.getUserData();
        if (data.closed) continue;
        if (nowSeconds >= data.expiresAt) {
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
      for (const ws of [...user.sockets, ...(user.waiting ?? []).map((w) => w.ws)]) {
        const data = ws.getUserData();
        if (data.closed) continue;
        data.closed = true;
        ws.end(WS_CLOSE.goingAway, 'server going away');
      }
    }
  }
}

/** The membership news a `membership` message on `userId`'s subject carries for that user, if any. */
const membershipHint = (event: unknown, userId: string): MembershipNews | undefined => {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Partial<Pick<RawEnvelope, 'type' | 'revision' | 'position' | 'data'>>;
  const data = e.data;
  if (typeof e.revision !== 'number' || typeof e.position !== 'string' || typeof data !== 'object') return;
  if (typeof data.conversationId !== 'string') return undefined;
  const concerns =
    e.type === 'ConversationStarted' ? membersAtStart(data).includes(userId) : data.userId === userId;
  if (
    !concerns ||
    (e.type !== 'ConversationStarted' && e.type !== 'MemberJoined' && e.type !== 'MemberLeft')
  ) {
    return undefined;
  }
  return {
    conversationId: data.conversationId,
    seq: e.revision,
    position: e.position,
    joined: e.type !== 'MemberLeft',
    fromFeed: false,
  };
};

/** The block news a `block` message on `userId`'s subject carries for that user, if any. */
const blockHint = (event: unknown, userId: string): BlockNews | undefined => {
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Partial<Pick<RawEnvelope, 'type' | 'position' | 'data'>>;
  if (e.type !== 'UserBlocked' && e.type !== 'UserUnblocked') return undefined;
  if (typeof e.position !== 'string' || typeof e.data !== 'object' || e.data === null) return undefined;
  const { userId: blocker, blockedUserId } = e.data;
  if (typeof blocker !== 'string' || typeof blockedUserId !== 'string' || blocker === blockedUserId) return;
  if (blocker !== userId && blockedUserId !== userId) return undefined;
  const blocking = blocker === userId;
  return {
    position: e.position,
    otherUserId: blocking ? blockedUserId : blocker,
    blocking,
    blocked: e.type === 'UserBlocked',
  };
};

/** `<prefix>.user.<token>` → userId (the inverse of `subjectToken`). */
const userIdOfSubject = (subject: string): string => {
  const token = subject.slice(subject.lastIndexOf('.') + 1);
  return token.includes('~')
    ? token.replace(/~([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
    : token;
};
