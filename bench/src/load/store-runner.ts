import { importExports } from './by-path.js';
import { runWorker } from './worker.js';

// The event store alone, as `pnpm bench:store` measures it (packages/eventstore/bench/phases.ts), in a
// process of its own so its CPU stays apart: B4 judges the command path against its single-event
// appends and B5 the rebuild against its readAll, both in the same run (DESIGN.md budgets).

export type StoreRunnerMessage =
  | { type: 'appends'; appends: number; ms: number }
  | { type: 'readAll'; events: number; ms: number }
  | { type: 'error'; message: string };

type Store = { close: () => Promise<void> };
type Modules = {
  createPostgresEventStore: (options: { connectionString: string; maxConnections?: number }) => Store;
  singleAppends: (store: Store, seconds: number) => Promise<{ appends: number; ms: number }>;
  readAllPages: (store: Store, maxMs?: number) => Promise<{ events: number; ms: number }>;
};

const load = () =>
  importExports<Modules>({
    createPostgresEventStore: ['packages/eventstore/src/index.ts', 'createPostgresEventStore'],
    singleAppends: ['packages/eventstore/bench/phases.ts', 'singleAppends'],
    readAllPages: ['packages/eventstore/bench/phases.ts', 'readAllPages'],
  });

const send = (m: StoreRunnerMessage) => process.send?.(m);

const main = async () => {
  const m = await load();
  // As `pnpm bench:store` opens it: 8 connections, group commit with two flushes in flight.
  const store = m.createPostgresEventStore({
    connectionString: process.env.DATABASE_URL!,
    maxConnections: 8,
  });
  try {
    if (process.env.STORE_PHASE === 'appends') {
      send({ type: 'appends', ...(await m.singleAppends(store, Number(process.env.STORE_SECONDS ?? 10))) });
    } else {
      send({ type: 'readAll', ...(await m.readAllPages(store, Number(process.env.STORE_MAX_MS ?? 60_000))) });
    }
  } finally {
    await store.close();
  }
};

runWorker(main);
