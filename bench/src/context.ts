import type { Population } from './fixtures.js';
import type { Row, Table } from './report.js';
import type { BenchDatabase, RunningService, SessionNames } from './system.js';

export type Options = {
  /** Seconds per measured fan-out run. */
  durationS: number;
  /** Events appended for the B5 rebuild. */
  rebuildEvents: number;
  /** Write `--cpu-prof` profiles of the services into the log directory. */
  cpuProf: boolean;
  /** Seconds the whole run may take; optional phases shrink or are skipped to stay inside it. */
  budgetS: number;
  /** Services not started (`--without=notifier`), to find out what costs what. */
  without: string[];
  /** B1 without its bare uWS and Socket.IO rows (`--no-references`): quicker runs while iterating. */
  noReferences: boolean;
  /** B1's offered rates in msg/s (`--rates=200`); default 200 and 1,000. */
  rates: number[] | undefined;
};

export type System = {
  db: BenchDatabase;
  api: RunningService;
  gateways: RunningService[];
  projector: RunningService | null;
  notifier: RunningService | null;
  population: Population;
  /** Which service each of the database's backends works for (per-service Postgres CPU). */
  sessions: SessionNames;
  all: () => RunningService[];
};

export type Context = {
  options: Options;
  rows: Row[];
  /** Extra tables printed after the main one (e.g. B1's comparison with the references). */
  tables: Table[];
  log: (msg: string) => void;
  /** Starts (once) the database, migrations, services and the B1/B2 population. */
  system: () => Promise<System>;
  /** Whether the system has been started (by this or an earlier scenario) and not stopped since. */
  systemRunning: () => boolean;
  /** Milliseconds left of the whole run's time budget (`--budget`, default 14 min). */
  remainingMs: () => number;
  /** Environment every service gets (database, NATS prefix, JWT secret). */
  serviceEnv: (databaseUrl: string) => Record<string, string>;
};

export type Scenario = {
  name: string;
  title: string;
  run: (ctx: Context) => Promise<void>;
};
