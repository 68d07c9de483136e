import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from '@chat/platform';
import pg from 'pg';

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

export interface DataKeyStore {
  /** The user's key, created on first use; throws ErasedUserError for an erased user. */
  keyForWriting(userId: string): Promise<DataKey>;
  /** The keys of `kids`: a Buffer, or null for a key destroyed by an erasure. Throws for an unknown kid. */
  keysForReading(kids: Iterable<string>): Promise<Map<string, Buffer | null>>;
  /**
   * Destroys the user's key and records the erasure. `erasedNow` is false when the user was already
   * erased (nothing changed); `erasedAt` is the first erasure's time either way.
   */
  erase(userId: string): Promise<{ erasedNow: boolean; erasedAt: string }>;
  close(): Promise<void>;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM: iv ‖ tag ‖ ciphertext, authenticated with `aad`. */
export const seal = (key: Buffer, plaintext: Buffer, aad: string): Buffer => {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
};

/** Opens what `seal` made; throws when the key, the aad or a byte is wrong. */
export const open = (key: Buffer, sealed: Buffer, aad: string): Buffer => {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
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
  let listener: pg.Client | null = null;
  let listening: Promise<void> | null = null;
  let lastListenAttempt = 0;

  const forget = (kid: string, userId?: string) => {
    const cached = byKid.get(kid);
    byKid.delete(kid);
    const owner = userId ?? cached?.userId;
    if (owner !== undefined) byUser.delete(owner);
    erasedKids.set(kid, true);
  };

  /** Keeps one LISTEN connection; without it, nothing cached may be trusted beyond this moment. */
  const ensureListening = (): Promise<void> => {
    if (listening || closed || Date.now() - lastListenAttempt < 1000) return listening ?? Promise.resolve();
    lastListenAttempt = Date.now();
    const client = new pg.Client({ connectionString: options.connectionString });
    const lost = (err?: unknown) => {
      if (listener !== client) return;
      listener = null;
      listening = null;
      byKid.clear();
      byUser.clear();
      if (!closed) options.logger?.warn({ err }, 'key-store LISTEN lost; key cache cleared');
      void client.end().catch(() => undefined);
    };
    listener = client;
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (msg) => {
      if (msg.channel === DATA_KEY_ERASED_CHANNEL && msg.payload) {
        const [kid, userId] = msg.payload.split(' ');
        if (kid) forget(kid, userId);
        else if (userId) byUser.delete(userId);
      }
    });
    listening = client
      .connect()
      .then(() => client.query(`LISTEN ${DATA_KEY_ERASED_CHANNEL}`))
      .then(() => undefined)
      .catch((err: unknown) => {
        lost(err);
      });
    return listening;
  };

  const unwrap = (kid: string, wrapped: Buffer): Buffer => open(options.master, wrapped, `data-key:${kid}`);
  const fresh = (c: Cached | undefined) => c !== undefined && Date.now() - c.at < ttl;
  const remember = (userId: string, kid: string, key: Buffer): Cached => {
    const entry = { userId, kid, key, at: Date.now() };
    byKid.set(kid, entry);
    byUser.set(userId, entry);
    return entry;
  };

  /** Key look-ups in flight per user: concurrent first messages of one user share one query. */
  const inFlight = new Map<string, Promise<DataKey>>();

  const loadForWriting = async (userId: string): Promise<DataKey> => {
    const kid = randomUUID();
    const key = randomBytes(32);
    // Created unless the user has one (or was erased, which refuses): one statement, so a concurrent
    // erasure either deletes the key made here or finds the tombstone first.
    const { rows } = await pool.query<{ kid: string; wrapped: Buffer; erased: boolean }>(
      `WITH tombstone AS (SELECT 1 FROM keys.erased_users WHERE user_id = $1),
              created AS (
                INSERT INTO keys.user_data_keys (user_id, kid, wrapped)
                SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tombstone)
                ON CONFLICT (user_id) DO NOTHING
                RETURNING kid, wrapped)
         SELECT kid::text, wrapped, false AS erased FROM created
         UNION ALL SELECT kid::text, wrapped, false FROM keys.user_data_keys WHERE user_id = $1
         UNION ALL SELECT NULL, NULL, true FROM tombstone`,
      [userId, kid, seal(options.master, key, `data-key:${kid}`)],
    );
    if (rows.some((r) => r.erased)) throw new ErasedUserError(userId);
    let row = rows[0];
    if (!row) {
      // Another process created the key while this statement ran: its row was not in this
      // statement's snapshot. A new statement sees it (or the tombstone of an erasure since).
      const again = await pool.query<{ kid: string; wrapped: Buffer }>(
        'SELECT kid::text, wrapped FROM keys.user_data_keys WHERE user_id = $1',
        [userId],
      );
      row = again.rows[0] ? { ...again.rows[0], erased: false } : undefined;
      if (!row) throw new ErasedUserError(userId);
    }
    return remember(userId, row.kid, row.kid === kid ? key : unwrap(row.kid, row.wrapped));
  };

  return {
    async keyForWriting(userId) {
      await ensureListening();
      const cached = byUser.get(userId);
      if (cached && fresh(cached)) return cached;
      let loading = inFlight.get(userId);
      if (!loading) {
        loading = loadForWriting(userId).finally(() => inFlight.delete(userId));
        inFlight.set(userId, loading);
      }
      return loading;
    },

    async keysForReading(kids) {
      await ensureListening();
      const found = new Map<string, Buffer | null>();
      const missing: string[] = [];
      for (const kid of new Set(kids)) {
        const cached = byKid.get(kid);
        if (cached && fresh(cached)) found.set(kid, cached.key);
        else if (erasedKids.get(kid)) found.set(kid, null);
        else missing.push(kid);
      }
      if (missing.length === 0) return found;
      const { rows } = await pool.query<{ kid: string; user_id: string; wrapped: Buffer | null }>(
        `SELECT kid::text, user_id, wrapped FROM keys.user_data_keys WHERE kid = ANY($1::uuid[])
         UNION ALL SELECT kid::text, user_id, NULL FROM keys.erased_users WHERE kid = ANY($1::uuid[])`,
        [missing.filter((k) => /^[0-9a-f-]{36}$/i.test(k))],
      );
      for (const row of rows) {
        if (row.wrapped === null) {
          erasedKids.set(row.kid, true);
          found.set(row.kid, null);
        } else if (!found.has(row.kid)) {
          found.set(row.kid, remember(row.user_id, row.kid, unwrap(row.kid, row.wrapped)).key);
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
        if (row.kid) forget(row.kid, userId);
        else byUser.delete(userId);
        return { erasedNow, erasedAt: row.erased_at.toISOString() };
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    },

    async close() {
      closed = true;
      const client = listener;
      listener = null;
      await client?.end().catch(() => undefined);
      await pool.end();
    },
  };
};
