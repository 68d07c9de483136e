import {
  isOnline,
  type NatsSubjects,
  PRESENCE_HEARTBEAT_MS,
  PRESENCE_STALE_MS,
  type PresenceMessage,
  type PresenceRecord,
  parsePresenceRecord,
  presenceGatewayKey,
  presenceSubject,
  presenceUserKey,
} from '@chat/events';
import type { Logger } from '@chat/platform';
import type { KV, NatsConnection, Subscription } from 'nats';
import type { MembershipSource, PresenceSink } from '../hub/hub.js';

export type PresenceOptions = {
  nats: NatsConnection;
  subjects: NatsSubjects;
  gatewayId: string;
  membership: MembershipSource;
  logger: Logger;
  /** Delivers a presence frame to the local users sharing a conversation with `userId`. */
  deliver(userId: string, conversationIds: readonly string[], text: string): void;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Cluster-wide presence (DESIGN.md "Live delivery"): a JetStream KV record per user listing the
 * gateways that hold its sockets, updated with compare-and-set only on local first-open/last-close,
 * plus a heartbeat per gateway. The gateway whose update turns a user online (or offline) announces
 * it on `<prefix>.presence`; every gateway turns that into frames for its local co-members. A crashed
 * gateway stops heartbeating: after PRESENCE_STALE_MS the other gateways claim its key, remove it
 * from the records and announce who went offline (≤ 30 s with the default timings).
 */
export class ClusterPresence implements PresenceSink {
  #kv: KV | undefined;
  #sub: Subscription | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #heartbeats = new Map<string, number>();
  readonly #chains = new Map<string, Promise<void>>();
  readonly #logger: Logger;

  constructor(private readonly o: PresenceOptions) {
    this.#logger = o.logger.child({ component: 'presence' });
  }

  async start(): Promise<void> {
    const js = this.o.nats.jetstream();
    this.#kv = await js.views.kv(this.o.subjects.presenceBucket, { history: 1 });
    await this.#heartbeat();
    this.#sub = this.o.nats.subscribe(presenceSubject(this.o.subjects.prefix), {
      callback: (err, msg) => {
        if (!err) void this.#onMessage(decoder.decode(msg.data));
      },
    });
    this.#timer = setInterval(() => {
      void this.#heartbeat().then(() => this.#reapDeadGateways());
    }, PRESENCE_HEARTBEAT_MS);
    this.#timer.unref();
  }

  userOnline(userId: string, conversationIds: readonly string[]): void {
    this.#chain(userId, async () => {
      const { before, after } = await this.#update(userId, (r) => {
        r.g[this.o.gatewayId] = 1;
      });
      if (!before && after)
        this.#announce({ userId, status: 'online', at: new Date().toISOString(), conversationIds });
    });
  }

  userOffline(userId: string, conversationIds: readonly string[]): void {
    this.#chain(userId, async () => {
      const at = new Date().toISOString();
      const { before, after } = await this.#update(userId, (r, now) => {
        delete r.g[this.o.gatewayId];
        if (!isOnline(r, (gw) => this.#heartbeatOf(gw, now), now)) r.lastSeenAt = at;
      });
      if (before && !after) this.#announce({ userId, status: 'offline', at, conversationIds });
    });
  }

  /** Waits for pending record updates, then removes this gateway's heartbeat. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await Promise.allSettled([...this.#chains.values()]);
    this.#sub?.unsubscribe();
    await this.#kv?.delete(presenceGatewayKey(this.o.gatewayId)).catch(() => {});
  }

  #chain(userId: string, work: () => Promise<void>): void {
    const next = (this.#chains.get(userId) ?? Promise.resolve())
      .then(work)
      .catch((err: unknown) => this.#logger.warn({ err, userId }, 'presence update failed'));
    this.#chains.set(userId, next);
    void next.then(() => {
      if (this.#chains.get(userId) === next) this.#chains.delete(userId);
    });
  }

  #heartbeatOf(gatewayId: string, now: number): number | undefined {
    return gatewayId === this.o.gatewayId ? now : this.#heartbeats.get(gatewayId);
  }

  /** Compare-and-set on the user's record; says whether the user was/is online cluster-wide. */
  async #update(
    userId: string,
    change: (r: PresenceRecord, now: number) => void,
  ): Promise<{ before: boolean; after: boolean }> {
    const kv = this.#kv;
    if (!kv) return { before: false, after: false };
    const key = presenceUserKey(userId);
    for (let attempt = 0; attempt < 20; attempt++) {
      const entry = await kv.get(key);
      const exists = entry !== null && entry.operation === 'PUT';
      const record = parsePresenceRecord(exists ? entry.string() : undefined);
      await this.#refreshHeartbeats(Object.keys(record.g));
      const now = Date.now();
      const hb = (gw: string) => this.#heartbeatOf(gw, now);
      const before = isOnline(record, hb, now);
      change(record, now);
      const after = isOnline(record, hb, now);
      const value = encoder.encode(JSON.stringify(record));
      try {
        if (entry) await kv.update(key, value, entry.revision);
        else await kv.create(key, value);
        return { before, after };
      } catch (err) {
        // Another gateway changed the record between our read and write: read again.
        this.#logger.debug({ err, userId }, 'presence record changed concurrently');
      }
    }
    throw new Error(`presence record of ${userId} kept changing`);
  }

  async #refreshHeartbeats(gatewayIds: string[]): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    for (const gw of gatewayIds) {
      if (gw === this.o.gatewayId) continue;
      const e = await kv.get(presenceGatewayKey(gw));
      if (e && e.operation === 'PUT') {
        const at = Number((JSON.parse(e.string()) as { at?: number }).at ?? 0);
        this.#heartbeats.set(gw, at);
      } else {
        this.#heartbeats.delete(gw);
      }
    }
  }

  #announce(msg: PresenceMessage): void {
    this.o.nats.publish(presenceSubject(this.o.subjects.prefix), JSON.stringify(msg));
  }

  async #onMessage(text: string): Promise<void> {
    let msg: PresenceMessage;
    try {
      msg = JSON.parse(text) as PresenceMessage;
    } catch {
      return;
    }
    const conversationIds =
      msg.conversationIds ??
      (await this.o.membership.membershipsOf([msg.userId])).memberships
        .get(msg.userId)
        ?.map((m) => m.conversationId) ??
      [];
    const frame = JSON.stringify({ type: 'presence', userId: msg.userId, status: msg.status, at: msg.at });
    this.o.deliver(msg.userId, conversationIds, frame);
  }

  async #heartbeat(): Promise<void> {
    try {
      await this.#kv?.put(presenceGatewayKey(this.o.gatewayId), JSON.stringify({ at: Date.now() }));
    } catch (err) {
      this.#logger.warn({ err }, 'presence heartbeat failed');
    }
  }

  /** Claims the key of every gateway whose heartbeat went stale and takes its users offline. */
  async #reapDeadGateways(): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    try {
      const now = Date.now();
      for await (const key of await kv.keys('gw.*')) {
        const gw = key.slice(3);
        if (gw === this.o.gatewayId) continue;
        const e = await kv.get(key);
        if (e?.operation !== 'PUT') continue;
        const at = Number((JSON.parse(e.string()) as { at?: number }).at ?? 0);
        this.#heartbeats.set(gw, at);
        if (now - at < PRESENCE_STALE_MS) continue;
        try {
          await kv.delete(key, { previousSeq: e.revision });
        } catch {
          continue; // another gateway claimed it
        }
        this.#logger.warn({ gateway: gw }, 'gateway stopped heartbeating; taking its users offline');
        this.#heartbeats.delete(gw);
        await this.#removeGateway(gw);
      }
    } catch (err) {
      this.#logger.warn({ err }, 'presence reaper failed');
    }
  }

  async #removeGateway(gw: string): Promise<void> {
    const kv = this.#kv;
    if (!kv) return;
    const keys: string[] = [];
    for await (const key of await kv.keys('u.*')) keys.push(key);
    for (const key of keys) {
      const e = await kv.get(key);
      if (e?.operation !== 'PUT') continue;
      const record = parsePresenceRecord(e.string());
      if (!(gw in record.g)) continue;
      const userId = decodeUserKey(key);
      const at = new Date().toISOString();
      this.#chain(userId, async () => {
        const { before, after } = await this.#update(userId, (r, now) => {
          delete r.g[gw];
          if (!isOnline(r, (g) => this.#heartbeatOf(g, now), now)) r.lastSeenAt = at;
        });
        // The dead gateway's heartbeat is gone, so `before` already reads offline; the record still
        // listed the gateway, so the user was online as far as anyone was told.
        void before;
        if (!after) {
          this.#announce({ userId, status: 'offline', at });
        }
      });
    }
  }
}

const decodeUserKey = (key: string): string =>
  key.slice(2).replace(/=([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
