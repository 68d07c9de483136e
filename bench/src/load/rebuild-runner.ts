import pg from 'pg';
import { importExports } from './by-path.js';
import { runWorker } from './worker.js';

// B5's worker process: runs the projection's own online rebuild (`rebuildReadModels`) against the bench
// database and reports progress over IPC, so the orchestrator can time it and measure its CPU apart.

export type RebuildMessage =
  | { type: 'progress'; events: number; phase: string; at: number }
  | { type: 'done'; events: number; ms: number }
  | { type: 'error'; message: string };

type Logger = { child: (bindings: object) => Logger };
type Modules = {
  rebuildReadModels: (deps: {
    store: unknown;
    pool: pg.Pool;
    logger: Logger;
    batchSize?: number;
    onProgress?: (p: { phase: string; events: number }) => void;
  }) => Promise<{ events: number; ms: number }>;
  createEventStore: (config: { databaseUrl: string; logger: Logger }) => { close: () => Promise<void> };
  createLogger: (service: string, level?: string) => Logger;
};

// Loaded by path: the bench does not depend on the services' packages at type level, only at run time.
const load = () =>
  importExports<Modules>({
    rebuildReadModels: ['packages/projection/src/index.ts', 'rebuildReadModels'],
    createEventStore: ['packages/eventstore/src/index.ts', 'createEventStore'],
    createLogger: ['packages/platform/src/index.ts', 'createLogger'],
  });

const send = (m: RebuildMessage) => process.send?.(m);

const main = async () => {
  const databaseUrl = process.env.DATABASE_URL!;
  const m = await load();
  const logger = m.createLogger('bench-rebuild', 'warn');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const store = m.createEventStore({ databaseUrl, logger });
  let last = 0;
  try {
    const r = await m.rebuildReadModels({
      store,
      pool,
      logger,
      onProgress: (p) => {
        const now = Date.now();
        if (now - last > 250 || p.phase !== 'replay') {
          last = now;
          send({ type: 'progress', events: p.events, phase: p.phase, at: performance.now() });
        }
      },
    });
    send({ type: 'done', events: r.events, ms: r.ms });
  } finally {
    await store.close();
    await pool.end();
  }
};

runWorker(main);
