import { parseArgs } from 'node:util';
import { createDataKeyStore, createEventStore, type EventStore } from '@chat/eventstore';
import { listDeliveries, type RedriveSelection, redriveDeliveries } from '@chat/notifications';
import { baseEnv, dataKeyEnv, dataKeyEnvChecks, loadConfig } from '@chat/platform';
import { positionFraction, RebuildInProgressError, rebuildReadModels } from '@chat/projection';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { z } from 'zod';
import { type ExportFormat, exportEvents } from './commands/export.js';
import { formatQuarantine, formatRetry, listQuarantined, retryQuarantined } from './commands/quarantine.js';
import { replay } from './commands/replay.js';
import { collectStats, formatStats } from './commands/stats.js';
import { tail } from './commands/tail.js';
import { formatDeliveries, isDeliveryId, parseDeliveryState } from './commands/webhooks.js';
import { parseTime, selectionFrom, UsageError } from './filters.js';
import { ProgressBar } from './progress.js';

export type Io = {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /** Aborts `tail` (SIGINT in the real CLI). */
  signal?: AbortSignal;
};

const cliEnv = z
  .object({
    NODE_ENV: baseEnv.NODE_ENV,
    DATABASE_URL: baseEnv.DATABASE_URL,
    EVENTSTORE_URL: baseEnv.EVENTSTORE_URL,
    ...dataKeyEnv,
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('silent'),
  })
  .superRefine(dataKeyEnvChecks);

const FILTER_HELP = `  --stream-prefix <p>    only streams starting with <p> (repeatable, or comma-separated)
  --types <A,B>          only these event types (repeatable, or comma-separated)
  --from-position <pos>  start after this position (exclusive)
  --to-position <pos>    stop at this position (inclusive)
  --since <iso>          only events at or after this time
  --until <iso>          only events before this time`;

const HELP: Record<string, string> = {
  main: `chatctl — operate and analyse the chat event log

Usage: chatctl <command> [options]

Commands:
  replay              export history as NDJSON (stdout or --out), with filters and a progress bar
  export              history into one Parquet (or NDJSON) file per event type, for DuckDB; resumable
  rebuild read-models replay the log into a shadow schema and swap it in, online
  tail                follow live events as NDJSON
  stats               event counts, read-model counts, consumer positions and lags
  quarantine          events a consumer could not apply: list them, retry them
  webhooks            the notifier's webhook deliveries: list them, redrive dead letters

Run "chatctl <command> --help" for a command's options.
Environment: DATABASE_URL (Postgres), EVENTSTORE_URL (esdb://… selects EventStoreDB), LOG_LEVEL.
`,
  replay: `Usage: chatctl replay [options]

Writes the selected events in log order, one JSON envelope per line (API.md §3).

Options:
  --out <file>           write to <file> instead of stdout
${FILTER_HELP}
  --no-progress          no progress bar on stderr
  -h, --help             this help
`,
  export: `Usage: chatctl export --out <dir> [options]

Writes the selected events, in log order, into one file per event type in <dir>: <Type>.parquet with
typed columns (the envelope's fields, then the fields of the event's data, then dataExtra: data fields
this build does not know, as JSON), or <Type>.ndjson with the lines "chatctl replay" prints.
Resumable: every --chunk-events events are committed (<dir>/export.json records the last exported
position); a run into the same <dir> goes on from there, after an interruption or to add new events.

Options:
  --out <dir>            the export's directory (created when missing)
  --format <f>           parquet (default) or ndjson
  --from <pos>           start after this position (exclusive; a fresh export only)
  --to <pos>             stop at this position (inclusive; default: the head when the run starts)
  --types <A,B>          only these event types (repeatable, or comma-separated)
  --chunk-events <n>     events per commit (default 250000)
  --no-progress          no progress on stderr
  -h, --help             this help
`,
  rebuild: `Usage: chatctl rebuild read-models [options]

Projects the whole log from position 0 into a fresh shadow schema while the live projection keeps
serving, catches up, swaps the schemas atomically and drops the old one. Queries never fail meanwhile.

Options:
  --batch-size <n>       events per transaction (default 5000)
  --no-progress          no progress bar on stderr
  -h, --help             this help
`,
  tail: `Usage: chatctl tail [options]

Follows the log from its head (or --from-position) and prints each new event as NDJSON until Ctrl-C.

Options:
${FILTER_HELP}
  -h, --help             this help
`,
  stats: `Usage: chatctl stats [options]

Prints the head position, event counts by type, read-model counts, and every consumer checkpoint
(read models, relay, notifier, a running rebuild) with its lag in events and milliseconds and how
many events it has quarantined.

Options:
  --json                 machine-readable output
  -h, --help             this help
`,
  quarantine: `Usage: chatctl quarantine list [--consumer <name>] [--json]
       chatctl quarantine retry <consumer> (<eventId>... | --all) [--wait-ms <n>]

A consumer (read_models, relay, notifier) that cannot apply an event — it fails alone, several times,
while Postgres, NATS and the event store answer — records it here and goes on with the stream.

list    every quarantined event: consumer, position, id, type, stream, attempts, first and last
        failure, the error
retry   asks the running consumer to apply the events again (for read_models: to today's rows, not
        in their place in the log; "chatctl rebuild read-models" replays them in order). Applied, an
        event leaves the quarantine; failing, it stays with the new error. Waits for the answer.

Options:
  --consumer <name>      list only this consumer's events
  --all                  retry every quarantined event of the consumer
  --wait-ms <n>          how long retry waits for the consumer's answer (default 30000)
  --json                 machine-readable output (list)
  -h, --help             this help

Exit codes (retry): 0 every event applied, 4 some failed again, 5 some not tried within --wait-ms.
`,
  webhooks: `Usage: chatctl webhooks list [--status <state>] [--limit <n>] [--json]
       chatctl webhooks redrive (--all | --id <deliveryId>... | --since <iso>)

The notifier's webhook outbox. A delivery the receiver refused through every attempt of the retry
policy (WEBHOOK_MAX_ATTEMPTS) is dead-lettered: kept, with its last error, until an operator acts.

list     deliveries with attempts, times and last error; unfinished first, then the latest finished
redrive  moves dead-lettered deliveries back to pending, due now, attempts reset: the notifier sends
         them again (same webhook-id, so a receiver that already has one drops the repeat) and they
         get the whole retry policy again. Prints how many. Pending and delivered ones never change.

Options:
  --status <state>       list only pending, retrying (pending, failed before), delivered or dead
  --limit <n>            list at most <n> (default 100)
  --json                 machine-readable output (list)
  --all                  redrive every dead letter
  --id <deliveryId>      redrive this one (repeatable, or comma-separated)
  --since <iso>          redrive those dead-lettered at or after this time
  -h, --help             this help

Exit codes (redrive): 0 done, 1 an --id was not a dead letter (unknown, pending or delivered).
`,
};

const filterOptions = {
  'stream-prefix': { type: 'string', multiple: true },
  types: { type: 'string', multiple: true },
  'from-position': { type: 'string' },
  'to-position': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const;

const write = (stream: NodeJS.WritableStream, text: string) => stream.write(text);

/** Runs one chatctl command; returns the process exit code. */
export const runChatctl = async (argv: string[], io: Io): Promise<number> => {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      write(io.stdout, HELP.main ?? '');
      return command === undefined ? 2 : 0;
    }
    switch (command) {
      case 'replay':
        return await replayCommand(rest, io);
      case 'export':
        return await exportCommand(rest, io);
      case 'rebuild':
        return await rebuildCommand(rest, io);
      case 'tail':
        return await tailCommand(rest, io);
      case 'stats':
        return await statsCommand(rest, io);
      case 'quarantine':
        return await quarantineCommand(rest, io);
      case 'webhooks':
        return await webhooksCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err)) {
      write(io.stderr, `chatctl: ${err.message}\nRun "chatctl --help" for usage.\n`);
      return 2;
    }
    write(io.stderr, `chatctl: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
};

const withInfrastructure = async <T>(
  io: Io,
  fn: (deps: { store: EventStore; pool: pg.Pool; logger: Logger }) => Promise<T>,
): Promise<T> => {
  const config = loadConfig(cliEnv, io.env);
  // stdout carries the data (NDJSON), so logs go to stderr.
  const logger = pino({ level: config.LOG_LEVEL, base: { service: 'chatctl' } }, pino.destination(2));
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 4 });
  const store = createEventStore({
    // Replay, tail and rebuild read through the data keys: text of erased users reads as null.
    dataKeys: createDataKeyStore({
      databaseUrl: config.DATABASE_URL,
      master: config.DATA_KEY_MASTER,
      logger,
    }),
    databaseUrl: config.DATABASE_URL,
    eventstoreUrl: config.EVENTSTORE_URL || undefined,
    logger,
    scavengeIntervalMs: 0,
    maxConnections: 4,
  });
  try {
    return await fn({ store, pool, logger });
  } finally {
    await store.close();
    await pool.end();
  }
};

const replayCommand = async (args: string[], io: Io): Promise<number> => {
  const { values } = parseArgs({
    args,
    options: {
      ...filterOptions,
      out: { type: 'string' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return help(io, 'replay');
  const selection = selectionFrom(values);
  const { createWriteStream } = await import('node:fs');
  const file = values.out ? createWriteStream(values.out) : undefined;
  const out = file ?? io.stdout;
  const progress = new ProgressBar(io.stderr, 'replay', !values['no-progress']);
  const count = await withInfrastructure(io, ({ store }) => replay(store, selection, out, progress));
  if (file)
    await new Promise<void>((resolve, reject) =>
      file.end((err?: Error | null) => (err ? reject(err) : resolve())),
    );
  write(io.stderr, `replayed ${count} events${values.out ? ` to ${values.out}` : ''}\n`);
  return 0;
};

const exportCommand = async (args: string[], io: Io): Promise<number> => {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: 'string' },
      format: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      types: { type: 'string', multiple: true },
      'chunk-events': { type: 'string' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return help(io, 'export');
  if (!values.out) throw new UsageError('export: --out <dir> is required');
  const format = (values.format ?? 'parquet') as ExportFormat;
  if (format !== 'parquet' && format !== 'ndjson') throw new UsageError('--format: parquet or ndjson');
  const selection = selectionFrom({
    types: values.types,
    'from-position': values.from,
    'to-position': values.to,
  });
  const chunkEvents = values['chunk-events'] === undefined ? 250_000 : Number(values['chunk-events']);
  if (!Number.isInteger(chunkEvents) || chunkEvents < 1) {
    throw new UsageError('--chunk-events: a positive integer');
  }
  const progress = new ProgressBar(io.stderr, 'export', !values['no-progress']);
  const result = await withInfrastructure(io, ({ store }) =>
    exportEvents(
      store,
      {
        format,
        out: values.out as string,
        chunkEvents,
        ...(selection.fromPosition ? { from: selection.fromPosition } : {}),
        ...(selection.toPosition ? { to: selection.toPosition } : {}),
        ...(selection.types ? { types: selection.types } : {}),
      },
      progress,
    ),
  );
  const rate = result.ms > 0 ? Math.round((result.events / result.ms) * 1000) : result.events;
  write(
    io.stdout,
    `exported ${result.events} events in ${result.ms} ms (${rate} events/s)${result.resumed ? ', resumed' : ''}; ${result.total} in ${values.out} up to position ${result.position}\n`,
  );
  for (const file of result.files) write(io.stdout, `  ${file}\n`);
  return 0;
};

const rebuildCommand = async (args: string[], io: Io): Promise<number> => {
  const { values, positionals } = parseArgs({
    args,
    options: {
      'batch-size': { type: 'string' },
      'no-progress': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return help(io, 'rebuild');
  if (positionals.length !== 1 || positionals[0] !== 'read-models') {
    throw new UsageError(`rebuild: unknown projection "${positionals.join(' ')}" (known: read-models)`);
  }
  const batchSize = values['batch-size'] === undefined ? 5000 : Number(values['batch-size']);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError('--batch-size: a positive integer');
  const progress = new ProgressBar(io.stderr, 'rebuild', !values['no-progress']);
  try {
    const result = await withInfrastructure(io, async ({ store, pool, logger }) => {
      const head = await store.headPosition();
      return rebuildReadModels({
        store,
        pool,
        logger,
        batchSize,
        onProgress: (p) => progress.update(positionFraction(p.position, head), p.events),
      });
    });
    progress.done(result.events);
    const rate = result.ms > 0 ? Math.round((result.events / result.ms) * 1000) : result.events;
    write(
      io.stdout,
      `rebuilt read models from ${result.events} events in ${result.ms} ms (${rate} events/s); swapped in at ${result.position}\n`,
    );
    if (result.quarantined > 0) {
      write(io.stdout, `${result.quarantined} events could not be applied: see chatctl quarantine list\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof RebuildInProgressError) {
      write(io.stderr, `chatctl: ${err.message}\n`);
      return 3;
    }
    throw err;
  }
};

const tailCommand = async (args: string[], io: Io): Promise<number> => {
  const { values } = parseArgs({
    args,
    options: { ...filterOptions, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) return help(io, 'tail');
  const selection = selectionFrom(values);
  const signal = io.signal ?? new AbortController().signal;
  await withInfrastructure(io, ({ store }) => tail(store, selection, io.stdout, signal));
  return 0;
};

const statsCommand = async (args: string[], io: Io): Promise<number> => {
  const { values } = parseArgs({
    args,
    options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) return help(io, 'stats');
  const stats = await withInfrastructure(io, ({ store, pool }) => collectStats(store, pool));
  write(io.stdout, values.json ? `${JSON.stringify(stats, null, 2)}\n` : formatStats(stats));
  return 0;
};

const quarantineCommand = async (args: string[], io: Io): Promise<number> => {
  const { values, positionals } = parseArgs({
    args,
    options: {
      consumer: { type: 'string' },
      all: { type: 'boolean' },
      'wait-ms': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return help(io, 'quarantine');
  const [action, ...rest] = positionals;
  if (action === 'list') {
    if (rest.length > 0) throw new UsageError(`quarantine list: unexpected "${rest.join(' ')}"`);
    const events = await withInfrastructure(io, ({ pool }) => listQuarantined(pool, values.consumer));
    write(io.stdout, values.json ? `${JSON.stringify(events, null, 2)}\n` : formatQuarantine(events));
    return 0;
  }
  if (action === 'retry') {
    const [consumer, ...eventIds] = rest;
    if (!consumer) throw new UsageError('quarantine retry: name the consumer');
    if (Boolean(values.all) === eventIds.length > 0) {
      throw new UsageError('quarantine retry: give event ids or --all (not both)');
    }
    const waitMs = values['wait-ms'] === undefined ? 30_000 : Number(values['wait-ms']);
    if (!Number.isInteger(waitMs) || waitMs < 0) throw new UsageError('--wait-ms: a non-negative integer');
    const outcomes = await withInfrastructure(io, ({ pool }) =>
      retryQuarantined(pool, consumer, values.all ? 'all' : eventIds, waitMs),
    );
    if (outcomes.length === 0) {
      write(io.stderr, `chatctl: no such quarantined event of ${consumer}\n`);
      return 1;
    }
    write(io.stdout, formatRetry(consumer, outcomes));
    if (outcomes.some((o) => o.outcome === 'pending')) return 5;
    return outcomes.some((o) => o.outcome === 'failed') ? 4 : 0;
  }
  throw new UsageError(`quarantine: unknown action "${action ?? ''}" (list, retry)`);
};

const webhooksCommand = async (args: string[], io: Io): Promise<number> => {
  const { values, positionals } = parseArgs({
    args,
    options: {
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      id: { type: 'string', multiple: true },
      since: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return help(io, 'webhooks');
  const [action, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`webhooks ${action}: unexpected "${rest.join(' ')}"`);
  if (action === 'list') {
    const state = parseDeliveryState(values.status);
    const limit = values.limit === undefined ? 100 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit: a positive integer');
    const rows = await withInfrastructure(io, ({ pool }) =>
      listDeliveries(pool, state === undefined ? { limit } : { state, limit }),
    );
    write(io.stdout, values.json ? `${JSON.stringify(rows, null, 2)}\n` : formatDeliveries(rows, limit));
    return 0;
  }
  if (action === 'redrive') {
    const ids = (values.id ?? []).flatMap((v) => v.split(',')).filter((v) => v.length > 0);
    const since = parseTime('since', values.since);
    const chosen = [values.all === true, ids.length > 0, since !== undefined].filter(Boolean).length;
    if (chosen !== 1) throw new UsageError('webhooks redrive: give exactly one of --all, --id, --since');
    const bad = ids.find((id) => !isDeliveryId(id));
    if (bad !== undefined) throw new UsageError(`--id: not a delivery id (a UUID): ${bad}`);
    const selection: RedriveSelection = values.all
      ? { kind: 'all' }
      : since !== undefined
        ? { kind: 'since', since: new Date(since) }
        : { kind: 'ids', deliveryIds: ids };
    const moved = await withInfrastructure(io, ({ pool }) => redriveDeliveries(pool, selection));
    write(
      io.stdout,
      `redrove ${moved.length} dead-lettered ${moved.length === 1 ? 'delivery' : 'deliveries'}; the notifier sends them again now\n`,
    );
    const movedIds = new Set(moved.map((id) => id.toLowerCase()));
    const missed = ids.filter((id) => !movedIds.has(id.toLowerCase()));
    for (const id of missed)
      write(io.stderr, `chatctl: ${id} is not a dead letter (unknown, pending or delivered)\n`);
    return missed.length > 0 ? 1 : 0;
  }
  throw new UsageError(`webhooks: unknown action "${action ?? ''}" (list, redrive)`);
};

const help = (io: Io, command: string): number => {
  write(io.stdout, HELP[command] ?? HELP.main ?? '');
  return 0;
};
