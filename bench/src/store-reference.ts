import { spawnTs } from '@chat/processes';
import type { StoreRunnerMessage } from './load/store-runner.js';
import { createDatabase, migrate } from './system.js';

// The event store's own rates in the same run, for the budgets DESIGN.md states as ratios of them:
// the command path (B4) ≥ half the store's single-event appends from 16 writers, the rebuild (B5)
// ≥ 60 % of the store's readAll. Measured by the code `pnpm bench:store` uses, in a child process.

const runStorePhase = async (env: Record<string, string>, timeoutMs: number): Promise<StoreRunnerMessage> => {
  const runner = spawnTs(`store-${env.STORE_PHASE}`, 'bench/src/load/store-runner.ts', { env, ipc: true });
  try {
    return await new Promise<StoreRunnerMessage>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`store ${env.STORE_PHASE} phase timed out`)),
        timeoutMs,
      );
      runner.process.once('message', (m: StoreRunnerMessage) => {
        clearTimeout(timer);
        resolve(m);
      });
      void runner.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`store runner exited:\n${runner.tail()}`));
      });
    });
  } finally {
    await runner.stop();
  }
};

/** Single-event appends per second of the store alone, 16 writers, in a database of its own. */
export const storeAppendsPerSecond = async (seconds: number): Promise<number> => {
  const db = await createDatabase('store');
  try {
    await migrate(db.url);
    const m = await runStorePhase(
      { DATABASE_URL: db.url, STORE_PHASE: 'appends', STORE_SECONDS: String(seconds) },
      seconds * 1000 + 60_000,
    );
    if (m.type !== 'appends') throw new Error(m.type === 'error' ? m.message : `unexpected ${m.type}`);
    return (m.appends / m.ms) * 1000;
  } finally {
    await db.drop();
  }
};

/** Events per second of the store's `readAll` (pages of 1,000) over the log of `databaseUrl`. */
export const storeReadAllPerSecond = async (
  databaseUrl: string,
  maxMs: number,
): Promise<{ perSecond: number; events: number }> => {
  const m = await runStorePhase(
    { DATABASE_URL: databaseUrl, STORE_PHASE: 'readAll', STORE_MAX_MS: String(maxMs) },
    maxMs + 60_000,
  );
  if (m.type !== 'readAll') throw new Error(m.type === 'error' ? m.message : `unexpected ${m.type}`);
  return { perSecond: m.ms > 0 ? (m.events / m.ms) * 1000 : 0, events: m.events };
};
