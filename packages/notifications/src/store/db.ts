import type { Pool, PoolClient } from 'pg';

/** A pool or a client inside a transaction: repository functions take it first, the caller owns the transaction. */
export type Db = Pool | PoolClient;
