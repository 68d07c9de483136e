import type { EventStore } from '@chat/eventstore';
import { rssBytes } from '@chat/processes';
import type pg from 'pg';
import { now } from '../history/clock.js';
import type { HistoryWriter } from '../history/file.js';
import type { SampleEntry } from '../history/types.js';
import { readCheckpoints } from './consumers.js';
import { GATEWAYS, type System } from './system.js';

// Polls, while the run goes on, the log head and every consumer's checkpoint (for check 5 and the lag
// recovery times), each process's memory, and the gateways' delivery counters.

const GATEWAY_COUNTERS = [
  'ws_connections',
  'ws_deliveries_total',
  'ws_duplicates_dropped_total',
  'ws_gap_fills_total',
  'ws_slow_consumer_closes_total',
  'process_resident_memory_bytes',
];

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms)),
  ]);

export type Sampler = { latest: () => SampleEntry | undefined; stop: () => Promise<void> };

export const startSampler = (options: {
  system: System;
  pool: pg.Pool;
  store: EventStore;
  history: HistoryWriter;
  everyMs: number;
  metricsEveryMs: number;
}): Sampler => {
  const { system, pool, store, history } = options;
  let latest: SampleEntry | undefined;
  let busy: Promise<void> | undefined;
  const memory = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const name of system.supervisor.names()) {
      const pid = system.supervisor.pid(name);
      const rss = pid === undefined ? undefined : rssBytes(pid);
      if (rss !== undefined) out[name] = rss;
    }
    const natsPid = system.nats.pid();
    const natsRss = natsPid === undefined ? undefined : rssBytes(natsPid);
    if (natsRss !== undefined) out['nats-server'] = natsRss;
    // Postgres is left out: its processes share the buffer pool, so their RSS does not add up.
    return out;
  };
  const sample = async () => {
    const t = now();
    const rss = memory();
    try {
      const [head, checkpoints] = await withTimeout(
        Promise.all([store.headPosition(), readCheckpoints(pool)]),
        2000,
      );
      latest = { k: 'sample', t, head, checkpoints, rss };
    } catch (err) {
      latest = { k: 'sample', t, rss, error: err instanceof Error ? err.message : String(err) };
    }
    history.write(latest);
  };
  const scrape = async () => {
    await Promise.all(
      GATEWAYS.map(async (gw) => {
        const pid = system.supervisor.pid(gw);
        if (pid === undefined) return;
        const text = await fetch(`http://127.0.0.1:${system.supervisor.port(gw)}/metrics`, {
          signal: AbortSignal.timeout(1000),
        }).then(
          (r) => (r.ok ? r.text() : ''),
          () => '',
        );
        const values: Record<string, number> = {};
        for (const line of text.split('\n')) {
          const [name, value] = line.split(' ');
          if (name && GATEWAY_COUNTERS.includes(name) && value !== undefined) values[name] = Number(value);
        }
        if (Object.keys(values).length > 0) history.write({ k: 'gwmetrics', t: now(), gw, pid, values });
      }),
    );
  };
  const tick = setInterval(() => {
    if (busy) return;
    busy = sample().finally(() => {
      busy = undefined;
    });
  }, options.everyMs);
  const metricsTick = setInterval(() => void scrape(), options.metricsEveryMs);
  return {
    latest: () => latest,
    async stop() {
      clearInterval(tick);
      clearInterval(metricsTick);
      await busy;
      await scrape();
    },
  };
};
