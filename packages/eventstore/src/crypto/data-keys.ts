import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '@chat/platform';
import pg from 'pg';
import type { DataKeyClaim, StoredDataKey } from '../port.js';
import { PgListener } from '../postgres/listener.js';
import { DATA_KEY_LOCK_NAMESPACE } from '../postgres/schema.js';

// Per-user data keys for crypto-shredding (README "Erasure"). Each user who writes personal text gets a
// random AES-256-GCM key, stored only wrapped (encrypted) under the master key in `keys.user_data_keys`,
// outside the event log. Erasing the user deletes that row and leaves a tombstone in `keys.erased_users`:
// the ciphertexts in the log can no longer be opened by anyone, and new text by that user is refused.
// The tables are created by `migrateDataKeys` (@chat/db).

/** The channel an erasure is announced on, so every process drops the key from its cache at once. */
export const DATA_KEY_ERASED_CHANNEL = 'chat_data_key_erased';

/** The user was erased: no key is handed out for new personal text of theirs. */
export class ErasedUserError extends Error {
  override readonly name = 'ErasedUserError';
  constructor(readonly userId: string) {
    super(`user ${userId} was erased; their personal data cannot be written`);
  }
}

/** A ciphertext names a key that neither exists nor was erased: a wrong database, not an erasure. */
export class UnknownDataKeyError extends Error {
  override readonly name = 'UnknownDataKeyError';
}

export type DataKey = { kid: string; key: Buffer };

/**
 * A key to seal a user's text with now, and what the append must store or check with it (null: the
 * key is cached, fresh and known stored). See `DataKeyStore.keyForSealing`.
 */
export type SealingKey = DataKey & { claim: DataKeyClaim | null };

export interface DataKeyStore {
  /** The user's key, created on first use; throws ErasedUserError for an erased user. */
  keyForWriting(userId: string): Promise<DataKey>;
  /**
   * The key to seal `userId`'s text with in an append that carries its claim (`appendWithKeys`) instead
   * of a statement of its own: the cached key, or for a user with no fresh cached key a new one (shared
   * by their appends until one settles) to be stored with the events, or the cached one to be checked.
   * After the append, `sealed` says how it went; a refused claim is then sealed with `keyForWriting`.
   */
  keyForSealing(userId: string): Promise<SealingKey>;
  /** The append carrying these keys' claims committed (`stored`) or was refused (`refused`). */
  sealed(keys: ReadonlyMap<string, SealingKey>, outcome: 'stored' | 'refused'): void;
  /**
   * The keys of `kids`: a Buffer, or null for a key destroyed by an erasure. Throws for an unknown kid.
   * `carried`: what the read of the page found of them in its own snapshot (`subscribeToAllWithKeys`),
   * trusted for this page instead of a query; the kids it lacks are looked up as without it.
   */
  keysForReading(
    kids: Iterable<string>,
    carried?: ReadonlyMap<string, StoredDataKey>,
  ): Promise<Map<string, Buffer | null>>;
  /**
   * Destroys the user's key and records the erasure. `erasedNow` is false when the user was already
   * erased (nothing changed); `erasedAt` is the first erasure's time either way.
   */
  erase(userId: string): Promise<{ erasedNow: boolean; erasedAt: string }>;
  /**
   * The LISTEN connection the store keeps for erasures, which a Postgres event store on the same
   * database shares for its wake-ups (one listening backend per process, not two). Closed with the store.
   */
  readonly listener?: PgListener;
  close(): Promise<void>;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * IVs are random (96 bits, the GCM default), drawn from a pool refilled 4,096 IVs at a time: one call
 * into the CSPRNG per IV cost as much as the encryption itself. Every IV is a fresh, never reused slice
 * of CSPRNG output, so the random-IV bound of NIST SP 800-38D (2^32 messages per key) is unchanged.
 */
const IV_POOL_BYTES = IV_BYTES * 4096;
let ivPool = Buffer.alloc(0);
let ivOffset = 0;
const nextIv = (): Buffer => {
  if (ivOffset + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_POOL_BYTES);
    ivOffset = 0;
  }
  const iv = ivPool.subarray(ivOffset, ivOffset + IV_BYTES);
  ivOffset += IV_BYTES;
  return iv;
};

/** AES-256-GCM: iv ‖ tag ‖ ciphertext, authenticated with `aad`. A string is encrypted as its UTF-8. */
export const seal = (key: Buffer, plaintext: Buffer | string, aad: string): Buffer => {
  const iv = nextIv();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext);
  const rest = cipher.final(); // empty for GCM, a stream mode; kept for correctness
  const out = Buffer.allocUnsafe(IV_BYTES + TAG_BYTES + ct.length + rest.length);
  iv.copy(out, 0);
  cipher.getAuthTag().copy(out, IV_BYTES);
  ct.copy(out, IV_BYTES + TAG_BYTES);
  rest.copy(out, IV_BYTES + TAG_BYTES + ct.length);
  return out;
};

/** Opens what `seal` made; throws when the key, the aad or a byte is wrong. */
export const open = (key: Buffer, sealed: Buffer, aad: string): Buffer => {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  const pt = decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES));
  const rest = decipher.final(); // verifies the tag; empty for GCM
  return rest.length === 0 ? pt : Buffer.concat([pt, rest]);
};

/** A bounded least-recently-used map (Map keeps insertion order; a hit moves the entry to the end). */
class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as K);
  }
  delete(key: K): void {
    this.#map.delete(key);
  }
  clear(): void {
    this.#map.clear();
  }
}

export type PgDataKeyStoreOptions = {
  connectionString: string;
  /** The 32-byte master key (DATA_KEY_MASTER) that wraps every data key. */
  master: Buffer;
  logger?: Logger;
  /** Unwrapped keys kept in memory (least recently used dropped). Default 10,000. */
  cacheSize?: number;
  /**
   * How long a cached key is trusted without asking the table again: the bound on how long a process
   * that missed an erasure's notification (its LISTEN connection was down) keeps opening that user's
   * text. Default 60 s.
   */
  cacheTtlMs?: number;
};

type Cached = { userId: string; kid: string; key: Buffer; at: number };

/**
 * The Postgres key store (tables of `migrateDataKeys`), with an LRU of unwrapped keys so the cost per
 * message is one AES-GCM operation, not a query. Erasures are announced with NOTIFY; each store LISTENs
 * and drops the key at once, and clears its whole cache when its LISTEN connection was lost.
 */
export const createPgDataKeyStore = (options: PgDataKeyStoreOptions): DataKeyStore => {
  if (options.master.length !== 32) throw new RangeError('the master key must be 32 bytes');
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  pool.on('error', (err) => options.logger?.warn({ err }, 'idle key-store client failed'));
  const ttl = options.cacheTtlMs ?? 60_000;
  const byKid = new Lru<string, Cached>(options.cacheSize ?? 10_000);
  const byUser = new Lru<string, Cached>(options.cacheSize ?? 10_000);
  /** Kids whose key an erasure destroyed: final, so kept (bounded) without a TTL. */
  const erasedKids = new Lru<string, true>(options.cacheSize ?? 10_000);
  let closed = false;
  /** Bumped whenever cached keys are dropped for an erasure (or a lost LISTEN): see `keyForWriting`. */
  let generation = 0;

  /**
   * New keys handed out by `keyForSealing` whose append has not committed yet: a user's concurrent
   * first messages share one, so the first commit stores it and the others find it theirs.
   */
  const unsettled = new Lru<string, { kid: string; key: Buffer; wrapped: Buffer }>(
    options.cacheSize ?? 10_000,
  );
  /** The erasure generation each claim was handed out in. */
  const claimedIn = new WeakMap<DataKeyClaim, number>();

  /** Drops what an erasure destroyed: the user's key (`kid`, when they had one) and their cached entry. */
  const forget = (kid: string | undefined, userId: string | undefined) => {
    generation++;
    const owner = userId ?? (kid === undefined ? undefined : byKid.get(kid)?.userId);
    if (owner !== undefined) {
      byUser.delete(owner);
      unsettled.delete(owner);
    }
    if (kid === undefined) return;
    byKid.delete(kid);
    erasedKids.set(kid, true);
  };

  /** Erasures are heard on a LISTEN connection; without it, nothing cached may be trusted past this moment. */
  const listener = new PgListener({ connectionString: options.connectionString }, options.logger);
  listener.subscribe(DATA_KEY_ERASED_CHANNEL, {
    notify: (payload) => {
      const [kid, userId] = payload.split(' ');
      if (kid || userId) forget(kid || undefined, userId || undefined);
    },
    lost: () => {
      generation++;
      byKid.clear();
      byUser.clear();
      if (!closed) options.logger?.warn('key-store LISTEN lost; key cache cleared');
    },
  });
  const ensureListening = () => listener.ensure();

  const unwrap = (kid: string, wrapped: Buffer): Buffer => open(options.master, wrapped, `data-key:${kid}`);
  const fresh = (c: Cached | undefined) => c !== undefined && Date.now() - c.at < ttl;
  const remember = (userId: string, kid: string, key: Buffer): Cached => {
    const entry = { userId, kid, key, at: Date.now() };
    byKid.set(kid, entry);
    byUser.set(userId, entry);
    return entry;
  };

  /**
   * `keyForWriting` (the EventStoreDB adapter, and a claim `keyForSealing` made that an append refused;
   * appends to Postgres store new keys in their own transaction instead, see `keyForSealing`).
   * Writing keys are cached like reading keys (same LRU, TTL and erasure notification), so a user's key
   * costs a statement only on their first message per TTL. A first use creates the key, a committed
   * insert: users whose first messages arrive while such a statement is in flight wait and go together
   * in the next one (group commit, as appends do), so a burst of new writers costs one commit, not one
   * each. A lone miss waits for nothing.
   *
   * Why a cached writing key is safe against erasure: the erasure in this process drops the key from
   * the cache as soon as its transaction commits, so this process refuses new text by the user from
   * then on (403); other processes drop it on the NOTIFY, or within the TTL when their LISTEN was down.
   * Text sealed in that gap is sealed under a key that no longer exists anywhere: it reads as erased,
   * which is what the erasure asked for. A load that was in flight across an erasure is not cached
   * (`generation`), so it cannot bring a destroyed key back into the cache.
   */
  let pendingUsers = new Map<
    string,
    Array<{ resolve: (key: DataKey) => void; reject: (err: unknown) => void }>
  >();
  let creating = false;

  /** A new data key, wrapped under the master key, not stored anywhere yet. */
  const newKey = () => {
    const kid = randomUUID();
    const key = randomBytes(32);
    return { kid, key, wrapped: seal(options.master, key, `data-key:${kid}`) };
  };

  const createKeys = async (userIds: string[]): Promise<Map<string, DataKey | ErasedUserError>> => {
    const since = generation;
    // Sorted: two processes creating overlapping users insert them in one order and cannot deadlock.
    const users = [...userIds].sort();
    const madeKeys = users.map(() => newKey());
    // Created unless the user has one (or was erased, which refuses): one statement, so a concurrent
    // erasure either deletes the key made here or finds the tombstone first.
    const { rows } = await pool.query<{ user_id: string; kid: string | null; wrapped: Buffer | null }>(
      `WITH input AS (
              SELECT * FROM unnest($1::text[], $2::uuid[], $3::bytea[]) WITH ORDINALITY AS t(user_id, kid, wrapped, n)),
            tombstone AS (SELECT e.user_id FROM keys.erased_users e JOIN input i ON e.user_id = i.user_id),
            created AS (
              INSERT INTO keys.user_data_keys (user_id, kid, wrapped)
              SELECT i.user_id, i.kid, i.wrapped FROM input i
               WHERE NOT EXISTS (SELECT 1 FROM tombstone t WHERE t.user_id = i.user_id)
               ORDER BY i.n
              ON CONFLICT (user_id) DO NOTHING
              RETURNING user_id, kid, wrapped)
       SELECT user_id, kid::text, wrapped FROM created
       UNION ALL SELECT k.user_id, k.kid::text, k.wrapped FROM keys.user_data_keys k JOIN input i ON k.user_id = i.user_id
       UNION ALL SELECT user_id, NULL, NULL FROM tombstone`,
      [users, madeKeys.map((k) => k.kid), madeKeys.map((k) => k.wrapped)],
    );
    const made = new Map(users.map((u, i) => [u, madeKeys[i]!]));
    const out = new Map<string, DataKey | ErasedUserError>();
    const settle = (userId: string, kid: string | null, sealed: Buffer | null) => {
      if (kid === null || sealed === null) {
        out.set(userId, new ErasedUserError(userId));
        return;
      }
      if (out.has(userId)) return;
      const mine = made.get(userId);
      const key = mine?.kid === kid ? mine.key : unwrap(kid, sealed);
      out.set(userId, since === generation ? remember(userId, kid, key) : { kid, key });
    };
    for (const row of rows) if (row.kid === null) settle(row.user_id, null, null);
    for (const row of rows) settle(row.user_id, row.kid, row.wrapped);
    const unseen = users.filter((u) => !out.has(u));
    if (unseen.length > 0) {
      // Another process created these keys while the statement ran: their rows were not in its
      // snapshot. A new statement sees them (or the tombstone of an erasure since).
      const again = await pool.query<{ user_id: string; kid: string; wrapped: Buffer }>(
        'SELECT user_id, kid::text, wrapped FROM keys.user_data_keys WHERE user_id = ANY($1::text[])',
        [unseen],
      );
      for (const row of again.rows) settle(row.user_id, row.kid, row.wrapped);
      for (const userId of unseen) if (!out.has(userId)) out.set(userId, new ErasedUserError(userId));
    }
    return out;
  };

  const createPending = async (): Promise<void> => {
    creating = true;
    try {
      while (pendingUsers.size > 0) {
        const batch = pendingUsers;
        pendingUsers = new Map();
        try {
          const made = await createKeys([...batch.keys()]);
          for (const [userId, waiters] of batch) {
            const result = made.get(userId) ?? new ErasedUserError(userId);
            for (const w of waiters) {
              if (result instanceof Error) w.reject(result);
              else w.resolve(result);
            }
          }
        } catch (err) {
          for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
        }
      }
    } finally {
      creating = false;
    }
  };

  return {
    async keyForSealing(userId) {
      await ensureListening();
      const cached = byUser.get(userId);
      if (cached && fresh(cached)) return { kid: cached.kid, key: cached.key, claim: null };
      let claim: DataKeyClaim;
      let key: Buffer;
      if (cached) {
        // Past its TTL the cached key is checked by the append (an erasure this process missed refuses it).
        claim = { userId, kid: cached.kid, wrapped: null };
        key = cached.key;
      } else {
        let made = unsettled.get(userId);
        if (!made) {
          made = newKey();
          unsettled.set(userId, made);
        }
        claim = { userId, kid: made.kid, wrapped: made.wrapped };
        key = made.key;
      }
      claimedIn.set(claim, generation);
      return { kid: claim.kid, key, claim };
    },

    sealed(keys, outcome) {
      for (const [userId, { kid, key, claim }] of keys) {
        if (claim === null) continue;
        if (unsettled.get(userId)?.kid === kid) unsettled.delete(userId);
        if (outcome === 'refused') {
          // Erased, or another process stored its key first: `keyForWriting` reads which.
          if (byUser.get(userId)?.kid === kid) byUser.delete(userId);
          continue;
        }
        // Not after an erasure this process has heard of since the claim: that could be this user's.
        if (claimedIn.get(claim) === generation) remember(userId, kid, key);
      }
    },

    async keyForWriting(userId) {
      await ensureListening();
      const cached = byUser.get(userId);
      if (cached && fresh(cached)) return cached;
      return new Promise<DataKey>((resolve, reject) => {
        const waiters = pendingUsers.get(userId);
        if (waiters) waiters.push({ resolve, reject });
        else pendingUsers.set(userId, [{ resolve, reject }]);
        if (!creating) void createPending();
      });
    },

    async keysForReading(kids, carried) {
      await ensureListening();
      const found = new Map<string, Buffer | null>();
      const missing: string[] = [];
      for (const kid of new Set(kids)) {
        const cached = byKid.get(kid);
        const stored = carried?.get(kid);
        const heardErased = erasedKids.get(kid) === true;
        if (heardErased || stored?.wrapped === null) {
          // A tombstone this process had not heard of: forgotten as the erasure's notification would.
          if (!heardErased && stored) forget(kid, stored.userId);
          found.set(kid, null);
        } else if (cached && (fresh(cached) || stored)) {
          // A key's material never changes: the page vouches that it is still stored, the cache unwraps.
          found.set(kid, cached.key);
        } else if (stored?.wrapped) {
          // Only as key material (never fresh by itself): what the page vouched for holds for this page.
          const key = unwrap(kid, stored.wrapped);
          byKid.set(kid, { userId: stored.userId, kid, key, at: Number.NEGATIVE_INFINITY });
          found.set(kid, key);
        } else missing.push(kid);
      }
      if (missing.length === 0) return found;
      const since = generation;
      const { rows } = await pool.query<{ kid: string; user_id: string; wrapped: Buffer | null }>({
        name: 'data_keys_for_reading',
        text: `SELECT kid::text, user_id, wrapped FROM keys.user_data_keys WHERE kid = ANY($1::uuid[])
               UNION ALL SELECT kid::text, user_id, NULL FROM keys.erased_users WHERE kid = ANY($1::uuid[])`,
        values: [missing.filter((k) => /^[0-9a-f-]{36}$/i.test(k))],
      });
      for (const row of rows) {
        if (row.wrapped === null) {
          if (!erasedKids.get(row.kid)) forget(row.kid, row.user_id);
          found.set(row.kid, null);
        } else if (!found.has(row.kid)) {
          // Read before an erasure that this process has heard of since: used for this page, not cached.
          const key = unwrap(row.kid, row.wrapped);
          found.set(row.kid, since === generation ? remember(row.user_id, row.kid, key).key : key);
        }
      }
      const unknown = missing.filter((k) => !found.has(k));
      if (unknown.length > 0) throw new UnknownDataKeyError(`unknown data keys: ${unknown.join(', ')}`);
      return found;
    },

    async erase(userId) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        // The lock an append storing this user's first key holds (es.append_batch): one of the two
        // commits first and the other sees it, never a key beside a tombstone.
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
          DATA_KEY_LOCK_NAMESPACE,
          userId,
        ]);
        const { rows } = await client.query<{ kid: string | null; erased_at: Date; inserted: boolean }>(
          `WITH destroyed AS (DELETE FROM keys.user_data_keys WHERE user_id = $1 RETURNING kid),
                tombstone AS (
                  INSERT INTO keys.erased_users (user_id, kid)
                  VALUES ($1, (SELECT kid FROM destroyed))
                  ON CONFLICT (user_id) DO NOTHING
                  RETURNING kid, erased_at)
           SELECT kid::text, erased_at, true AS inserted FROM tombstone
           UNION ALL SELECT kid::text, erased_at, false FROM keys.erased_users WHERE user_id = $1`,
          [userId],
        );
        const row = rows.find((r) => r.inserted) ?? rows[0];
        if (!row) throw new Error(`erasure of ${userId} recorded nothing`);
        const erasedNow = rows.some((r) => r.inserted);
        await client.query('SELECT pg_notify($1, $2)', [
          DATA_KEY_ERASED_CHANNEL,
          `${row.kid ?? ''} ${userId}`,
        ]);
        await client.query('COMMIT');
        forget(row.kid ?? undefined, userId);
        return { erasedNow, erasedAt: row.erased_at.toISOString() };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },

    listener,

    async close() {
      closed = true;
      await listener.close();
      await pool.end();
    },
  };
};
