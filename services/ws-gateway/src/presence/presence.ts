import {
  isOnline,
  type NatsSubjects,
  PRESENCE_HEARTBEAT_MS,
  PRESENCE_STALE_MS,
  type PresenceAnnouncement,
  type PresenceMessage,
  parsePresenceRecord,
  presenceGatewayKey,
  presenceSubject,
  presenceUserKey,
} from '@chat/events';
import type { Logger } from '@chat/platform';
import { RETRY, sleep, withRetry } from '@chat/retry';
import type { KV, NatsConnection, Subscription } from 'nats';
import type { MembershipSource, PresenceSink } from '../hub/hub.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import { KvRecords, RecordConflictError } from './records.js';

export type PresenceOptions = {
  nats: NatsConnection;
  subjects: NatsSubjects;
  gatewayId: string;
  membership: MembershipSource;
  logger: Logger;
  metrics: Pick<GatewayMetrics, 'presenceErrors'>;
  /** Delivers a presence frame to the local users sharing a conversation with `userId`. */
  deliver(userId: string, conversationIds: readonly string[], text: string): void;
};

/** The state a local user's record must get: the latest transition wins over one not yet written. */
type Wanted = { online: boolean; conversationIds: readonly string[]; at: string };

const decoder = new TextDecoder();
/** Record writes in flight at once: a connect burst queues here instead of flooding NATS. */
const MAX_WRITES = 128;
/** Changes per announcement message (each a few hundred bytes at most). */
const ANNOUNCE_BATCH = 500;
/** How long a graceful stop waits for the last records (offline) to be written. */
const STOP_WAIT_MS = 5_000;

const isCasConflict = (err: unknown): boolean => err instanceof RecordConflictError;

/**
 * Cluster-wide presence (DESIGN.md "Live delivery"): a JetStream KV record per user listing the
 * gateways that hold its sockets, updated with compare-and-set only on local first-open/last-close,
 * plus a heartbeat per gateway. The gateway whose update turns a user online (or offline) announces
 * it on `<prefix>.presence`; every gateway turns that into frames for its local co-members. A crashed
 * gateway stops heartbeating: after PRESENCE_STALE_MS the other gateways claim its key, remove it
 * from the records and announce who went offline (≤ 30 s with the default timings).
 *
 * A connect burst must not cost a round trip per user per step: transitions are queued per user (the
 * latest wins), written with bounded concurrency, other gateways' heartbeats come from the periodic
 * scan rather than a read per write, and the transitions of a moment go out as one announcement. A
 * failed write or lookup (NATS or Postgres down) is logged, counted and retried with the dependency
 * policy until it succeeds or the gateway stops; nothing here may reject unhandled.
 */
export class ClusterPresence implements PresenceSink {
  #kv: KV | undefined;
  /** User records: read and compare-and-set per connect, so through the lean client. */
  #records: KvRecords | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #heartbeats = new Map<string, number>();
  readonly #wanted = new Map<string, Wanted>();
  readonly #writing = new Set<string>();
  #announcements: PresenceMessage[] = [];
  #announceScheduled = false;
  #pumpScheduled = false;
  #scanning = false;
  #idle: (() => void) | undefined;
  readonly #stopping = new AbortController();
  readonly #logger: Logger;

  constructor(private readonly o: PresenceOptions) {
    this.#logger = o.logger.child({ component: 'presence' });
  }

  async start(): Promise<void> {
    const js = this.o.nats.jetstream();
    this.#kv = await js.views.kv(this.o.subjects.presenceBucket, { history: 1 });
    this.#records = new KvRecords(this.o.nats, this.o.subjects.presenceBucket);
    this.#records.start();
    await this.#heartbeat();
    await this.#scanGateways();
    this.#sub = this.o.nats.subscribe(presenceSubject(this.o.subjects.prefix), {
      callback: (err, msg) => {
        if (!err) void this.#onMessage(decoder.decode(msg.data));
      },
    });
    this.#timer = setInterval(() => {
      void this.#heartbeat().then(() => this.#scanGateways());
    }, PRESENCE_HEARTBEAT_MS);
    this.#timer.unref();
  }

  userOnline(userId: string, conversationIds: readonly string[]): void {
    this.#want(userId, { online: true, conversationIds, at: new Date().toISOString() });
  }

  userOffline(userId: string, conversationIds: readonly string[]): void {
    this.#want(userId, { online: false, conversationIds, at: new Date().toISOString() });
  }

  /** Writes the records still wanted (the users of a closing gateway go offline), then stops. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#wanted.size > 0 || this.#writing.size > 0) {
      await Promise.race([new Promise<void>((resolve) => (this.#idle = resolve)), sleep(STOP_WAIT_MS)]);
    }
    this.#stopping.abort();
    const unwritten = this.#wanted.size + this.#writing.size;
    if (unwritten > 0) {
      this.o.metrics.presenceErrors.inc(unwritten);
      this.#logger.warn({ unwritten }, 'stopped before every presence record was written');
    }
    this.#flushAnnouncements();
    this.#sub?.unsubscribe();
    this.#records?.stop();
    await this.#kv?.delete(presenceGatewayKey(this.o.gatewayId)).catch(() => {});
  }

  #want(userId: string, wanted: Wanted): void {
    this.#wanted.set(userId, wanted);
    // Never write from the caller's stack: userOnline/userOffline run inside uWS's open and close
    // handlers, and I/O started there (its nextTick callbacks run when the handler returns, still
    // inside uWS) made uWS drop sockets it was upgrading. The next turn takes the moment's changes.
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    for (const [userId, wanted] of this.#wanted) {
      if (this.#writing.size >= MAX_WRITES || this.#stopping.signal.aborted) return;
      if (this.#writing.has(userId)) continue; // its newer state is written after the current write
      this.#wanted.delete(userId);
      this.#writing.add(userId);
      void this.#write(userId, wanted).finally(() => {
        this.#writing.delete(userId);
        this.#pump();
        if (this.#wanted.size === 0 && this.#writing.size === 0) this.#idle?.();
      });
    }
  }

  async #write(userId: string, wanted: Wanted): Promise<void> {
    try {
      // The common case is one read and one write; the retry machinery only runs after a failure.
      const { before, after } = await this.#update(userId, wanted).catch((err: unknown) =>
        this.#retryUpdate(userId, wanted, err),
      );
      if (before !== after) {
        this.#announce({
          userId,
          status: after ? 'online' : 'offline',
          at: wanted.at,
          conversationIds: wanted.conversationIds,
        });
      }
    } catch (err) {
      // Stopping ends the writes still in flight: stop() logs them once, not one stack per user.
      if (!this.#stopping.signal.aborted) this.#failed(err, { userId, gaveUp: true });
    }
  }

  /** After a failed update: CAS conflicts again at once (RETRY.conflict), anything else with RETRY.dependency. */
  #retryUpdate(userId: string, wanted: Wanted, first: unknown): Promise<{ before: boolean; after: boolean }> {
    if (!isCasConflict(first)) this.#failed(first, { userId, failedAttempts: 1 });
    const update = () =>
      withRetry(RETRY.conflict, () => this.#update(userId, wanted), { retryable: isCasConflict });
    return withRetry(RETRY.dependency, update, {
      signal: this.#stopping.signal,
      onRetry: (err, failedAttempts, delayMs) =>
        this.#failed(err, { userId, failedAttempts: failedAttempts + 1, delayMs }),
    });
  }

  #failed(err: unknown, context: Record<string, unknown>): void {
    this.o.metrics.presenceErrors.inc();
    this.#logger.warn({ err, ...context }, 'presence update failed');
  }

  #heartbeatOf(gatewayId: string, now: number): number | undefined {
    return gatewayId === this.o.gatewayId ? now : this.#heartbeats.get(gatewayId);
  }

  /**
   * Compare-and-set of the user's record: this gateway listed or not, `lastSeenAt` when the user is
   * offline everywhere. Says whether the user was/is online cluster-wide.
   */
  async #update(userId: string, wanted: Wanted): Promise<{ before: boolean; after: boolean }> {
    const records = this.#records;
    if (!records) return { before: false, after: false };
    const key = presenceUserKey(userId);
    const stored = await records.get(key);
    const record = parsePresenceRecord(stored.value);
    const learning = this.#learnGateways(record.g);
    if (learning) await learning;
    const now = Date.now();
    const before = isOnline(record, (gw) => this.#heartbeatOf(gw, now), now);
    if (wanted.online) record.g[this.o.gatewayId] = 1;
    else delete record.g[this.o.gatewayId];
    const after = wanted.online || isOnline(record, (gw) => this.#heartbeatOf(gw, now), now);
    if (!after) record.lastSeenAt = wanted.at;
    // Throws RecordConflictError when another gateway wrote the record since it was read.
    await records.write(key, JSON.stringify(record), stored.revision);
    return { before, after };
  }

  /** Heartbeats of listed gateways this one has not seen yet; the others come from the periodic scan. */
  #learnGateways(listed: Record<string, number>): Promise<void> | undefined {
    let unseen: string[] | undefined;
    for (const gw in listed) {
      if (gw === this.o.gatewayId || this.#heartbeats.has(gw)) continue;
      unseen ??= [];
      unseen.push(gw);
    }
    return unseen && this.#readHeartbeats(unseen);
  }

  async #readHeartbeats(gatewayIds: readonly string[]): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    for (const gw of gatewayIds) {
      const e = await kv.get(presenceGatewayKey(gw));
      this.#heartbeats.set(gw, e?.operation === 'PUT' ? heartbeatAt(e.string()) : 0);
    }
  }

  #announce(msg: PresenceMessage): void {
    this.#announcements.push(msg);
    if (this.#announceScheduled) return;
    this.#announceScheduled = true;
    setImmediate(() => this.#flushAnnouncements());
  }

  #flushAnnouncements(): void {
    this.#announceScheduled = false;
    const changes = this.#announcements;
    this.#announcements = [];
    for (let i = 0; i < changes.length; i += ANNOUNCE_BATCH) {
      const announcement: PresenceAnnouncement = { changes: changes.slice(i, i + ANNOUNCE_BATCH) };
      try {
        this.o.nats.publish(presenceSubject(this.o.subjects.prefix), JSON.stringify(announcement));
      } catch (err) {
        // Presence frames are ephemeral; the records (what GET /v1/presence reads) are written.
        this.#failed(err, { announced: announcement.changes.length });
      }
    }
  }

  async #onMessage(text: string): Promise<void> {
    try {
      const parsed = JSON.parse(text) as Partial<PresenceAnnouncement> & Partial<PresenceMessage>;
      const changes = Array.isArray(parsed.changes) ? parsed.changes : [parsed as PresenceMessage];
      const unknown = changes.filter((c) => !c.conversationIds).map((c) => c.userId);
      // Changes from the reaper name no conversations: look them up, all in one read.
      const looked =
        unknown.length === 0
          ? undefined
          : await withRetry(RETRY.dependency, () => this.o.membership.membershipsOf(unknown), {
              signal: this.#stopping.signal,
              onRetry: (err, failedAttempts, delayMs) =>
                this.#failed(err, { lookup: unknown.length, failedAttempts, delayMs }),
            });
      for (const c of changes) {
        if (typeof c.userId !== 'string') continue;
        const conversationIds =
          c.conversationIds ?? looked?.memberships.get(c.userId)?.map((m) => m.conversationId) ?? [];
        // No conversation, no co-member to tell (a burst of new users): no frame to build.
        if (conversationIds.length === 0) continue;
        const frame = JSON.stringify({ type: 'presence', userId: c.userId, status: c.status, at: c.at });
        this.o.deliver(c.userId, conversationIds, frame);
      }
    } catch (err) {
      if (!this.#stopping.signal.aborted) this.#failed(err, { message: text.slice(0, 200) });
    }
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.#kv?.put(presenceGatewayKey(this.o.gatewayId), JSON.stringify({ at: Date.now() }));
    } catch (err) {
      this.#failed(err, { heartbeat: this.o.gatewayId });
    }
  }

  /**
   * Reads every gateway's heartbeat (the cache the record updates use), and claims the key of every
   * gateway whose heartbeat went stale, taking its users offline.
   */
  async #scanGateways(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#scanning) return;
    this.#scanning = true;
    try {
      const now = Date.now();
      for await (const key of await kv.keys('gw.*')) {
        const gw = key.slice(3);
        if (gw === this.o.gatewayId) continue;
        const e = await kv.get(key);
        if (e?.operation !== 'PUT') continue;
        const at = heartbeatAt(e.string());
        this.#heartbeats.set(gw, at);
        if (now - at < PRESENCE_STALE_MS) continue;
        try {
          await kv.delete(key, { previousSeq: e.revision });
        } catch {
          continue; // another gateway claimed it
        }
        this.#logger.warn({ gateway: gw }, 'gateway stopped heartbeating; taking its users offline');
        this.#heartbeats.set(gw, 0);
        await this.#removeGateway(gw);
      }
    } catch (err) {
      this.#failed(err, { scan: 'gateways' });
    } finally {
      this.#scanning = false;
    }
  }

  async #removeGateway(gw: string): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    const keys: string[] = [];
    for await (const key of await kv.keys('u.*')) keys.push(key);
    // Many users per dead gateway: their records are rewritten MAX_WRITES at a time.
    for (let i = 0; i < keys.length; i += MAX_WRITES) {
      await Promise.all(keys.slice(i, i + MAX_WRITES).map((key) => this.#takeOffline(key, gw)));
    }
  }

  async #takeOffline(key: string, gw: string): Promise<void> {
    const records = this.#records as KvRecords;
    try {
      const stored = await records.get(key);
      if (stored.value === undefined || !(gw in parsePresenceRecord(stored.value).g)) return;
      const userId = decodeUserKey(key);
      const at = new Date().toISOString();
      const { after } = await withRetry(RETRY.dependency, () => this.#removeFromRecord(userId, gw, at), {
        signal: this.#stopping.signal,
        onRetry: (err, failedAttempts, delayMs) => this.#failed(err, { userId, failedAttempts, delayMs }),
      });
      // The dead gateway's heartbeat is gone, so the user already read as offline to anyone asking;
      // the record still listed it, so as far as co-members were told, the user was online.
      if (!after) this.#announce({ userId, status: 'offline', at });
    } catch (err) {
      if (!this.#stopping.signal.aborted) this.#failed(err, { key, gaveUp: true });
    }
  }

  async #removeFromRecord(userId: string, gw: string, at: string): Promise<{ after: boolean }> {
    const records = this.#records as KvRecords;
    const key = presenceUserKey(userId);
    return withRetry(
      RETRY.conflict,
      async () => {
        const stored = await records.get(key);
        if (stored.value === undefined) return { after: false };
        const record = parsePresenceRecord(stored.value);
        delete record.g[gw];
        const learning = this.#learnGateways(record.g);
        if (learning) await learning;
        const now = Date.now();
        const after = isOnline(record, (g) => this.#heartbeatOf(g, now), now);
        if (!after) record.lastSeenAt = at;
        await records.write(key, JSON.stringify(record), stored.revision);
        return { after };
      },
      { retryable: isCasConflict },
    );
  }
}

const heartbeatAt = (text: string): number => {
  try {
    return Number((JSON.parse(text) as { at?: number }).at ?? 0);
  } catch {
    return 0;
  }
};

const decodeUserKey = (key: string): string =>
  key.slice(2).replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
