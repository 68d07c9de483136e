import { existsSync } from 'node:fs';
import {
  appendFile,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { type EventStore, envelopeLine, type RecordedEvent, START_POSITION } from '@chat/eventstore';
import { positionFraction } from '@chat/projection';
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { UsageError } from '../filters.js';
import type { ProgressBar } from '../progress.js';
import { type Column, columnsOf, fileStem } from './columns.js';

export type ExportFormat = 'parquet' | 'ndjson';

export type ExportOptions = {
  format: ExportFormat;
  /** The export's directory: one file per event type, and `export.json`, the manifest. */
  out: string;
  /** Exclusive start (a fresh export only; a resumed one goes on from its manifest). */
  from?: string;
  /** Inclusive end; default: the head of the log when the run starts. */
  to?: string;
  types?: string[];
  /** Events per committed chunk: what a crash can cost. */
  chunkEvents?: number;
  pageSize?: number;
};

export type ExportResult = {
  /** Events written by this run, and in the whole export. */
  events: number;
  total: number;
  /** The last exported position: a new run goes on after it. */
  position: string;
  resumed: boolean;
  ms: number;
  /** Rows per event type in the whole export. */
  counts: Record<string, number>;
  files: string[];
};

/**
 * What is committed, written after each chunk (to a temporary file, then renamed): every selected event
 * up to `position` is in `files` and `parts`; nothing after it is. A run that stops anywhere goes on from
 * here, after throwing away what the manifest does not name.
 */
type Manifest = {
  version: 1;
  format: ExportFormat;
  types: string[] | null;
  position: string;
  total: number;
  counts: Record<string, number>;
  /** parquet: chunk files not yet merged into `<Type>.parquet`, by type (relative to the directory). */
  parts: Record<string, string[]>;
  nextPart: number;
  /** ndjson: the committed length of each `<Type>.ndjson`. */
  bytes: Record<string, number>;
};

const MANIFEST = 'export.json';
const PARTS = '.parts';

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

/** Where an event type's rows go, one implementation per format. */
interface Sink {
  prepare(types: Iterable<string>): Promise<void>;
  add(event: RecordedEvent): void;
  /** After each page: hands the page's rows on, so memory holds about one page (or what DuckDB spills). */
  flush(): Promise<void>;
  /** Makes the rows added since the last commit durable and names them in the manifest. */
  commit(manifest: Manifest): Promise<void>;
  /** Turns the committed chunks into one file per type. */
  finish(manifest: Manifest, save: () => Promise<void>): Promise<void>;
  /** Puts the directory back to what the manifest says (after a crash). */
  recover(manifest: Manifest): Promise<void>;
  close(): void;
}

/** Rows go to one DuckDB table per type (appender), each chunk is COPYed to a Parquet part. */
class ParquetSink implements Sink {
  readonly #stages = new Map<
    string,
    { table: string; columns: Column[]; appender: DuckDBAppender | null; rows: number }
  >();

  private constructor(
    private readonly dir: string,
    private readonly instance: DuckDBInstance,
    private readonly db: DuckDBConnection,
  ) {}

  static async open(dir: string): Promise<ParquetSink> {
    // Bounded: DuckDB would take 80 % of the machine's memory by default; beyond this it spills here.
    const instance = await DuckDBInstance.create(':memory:', {
      memory_limit: '512MB',
      temp_directory: join(dir, PARTS, 'spill'),
      preserve_insertion_order: 'true',
    });
    return new ParquetSink(dir, instance, await instance.connect());
  }

  async prepare(types: Iterable<string>): Promise<void> {
    for (const type of types) {
      let stage = this.#stages.get(type);
      if (!stage) {
        const table = `stage_${this.#stages.size}`;
        const columns = columnsOf(type);
        // Staged as text and integers; typed by the COPY (TRY_CAST: a malformed value is NULL, not a stop).
        const defs = columns.map((c) => `${ident(c.name)} ${c.type === 'BIGINT' ? 'BIGINT' : 'VARCHAR'}`);
        await this.db.run(`CREATE TABLE ${table} (${defs.join(', ')})`);
        stage = { table, columns, appender: null, rows: 0 };
        this.#stages.set(type, stage);
      }
      stage.appender ??= await this.db.createAppender(stage.table);
    }
  }

  add(event: RecordedEvent): void {
    const stage = this.#stages.get(event.type);
    const appender = stage?.appender;
    if (!stage || !appender) throw new Error(`no stage prepared for ${event.type}`);
    for (const column of stage.columns) {
      const v = column.value(event);
      if (v === null || v === undefined) appender.appendNull();
      else if (column.type === 'BIGINT') {
        if (typeof v === 'number' && Number.isSafeInteger(v)) appender.appendBigInt(BigInt(v));
        else appender.appendNull();
      } else if (column.type === 'VARCHAR[]') {
        if (Array.isArray(v)) appender.appendVarchar(JSON.stringify(v));
        else appender.appendNull();
      } else appender.appendVarchar(typeof v === 'string' ? v : JSON.stringify(v));
    }
    appender.endRow();
    stage.rows++;
  }

  #select(table: string, columns: Column[]): string {
    const typed = columns.map((c) => {
      const name = ident(c.name);
      if (c.type === 'UUID' || c.type === 'TIMESTAMPTZ' || c.type === 'BOOLEAN')
        return `TRY_CAST(${name} AS ${c.type}) AS ${name}`;
      if (c.type === 'VARCHAR[]') return `from_json(${name}, '["VARCHAR"]') AS ${name}`;
      return name;
    });
    return `SELECT ${typed.join(', ')} FROM ${table}`;
  }

  async commit(manifest: Manifest): Promise<void> {
    for (const [type, stage] of this.#stages) {
      if (!stage.appender) continue;
      stage.appender.flushSync();
      stage.appender.closeSync();
      stage.appender = null;
      if (stage.rows === 0) continue;
      const part = join(PARTS, fileStem(type), `${String(manifest.nextPart++).padStart(6, '0')}.parquet`);
      await mkdir(join(this.dir, PARTS, fileStem(type)), { recursive: true });
      await this.db.run(
        `COPY (${this.#select(stage.table, stage.columns)}) TO ${sqlString(join(this.dir, part))} (FORMAT parquet, COMPRESSION zstd)`,
      );
      await this.db.run(`DELETE FROM ${stage.table}`);
      manifest.parts[type] = [...(manifest.parts[type] ?? []), part];
      manifest.counts[type] = (manifest.counts[type] ?? 0) + stage.rows;
      stage.rows = 0;
    }
  }

  async finish(manifest: Manifest, save: () => Promise<void>): Promise<void> {
    for (const [type, parts] of Object.entries(manifest.parts)) {
      if (parts.length === 0) continue;
      const final = join(this.dir, `${fileStem(type)}.parquet`);
      const sources = [...(existsSync(final) ? [final] : []), ...parts.map((p) => join(this.dir, p))];
      // One file per type, in log order (the files' order, kept by preserve_insertion_order); written
      // beside the old one and committed by the manifest first, so a crash here leaves either the old
      // file and its parts or the new file (renamed on recovery).
      await this.db.run(
        `COPY (SELECT * FROM read_parquet([${sources.map(sqlString).join(', ')}])) TO ${sqlString(`${final}.tmp`)} (FORMAT parquet, COMPRESSION zstd)`,
      );
      manifest.parts[type] = [];
      await save();
      await rename(`${final}.tmp`, final);
      for (const p of parts) await rm(join(this.dir, p), { force: true });
    }
  }

  async recover(manifest: Manifest): Promise<void> {
    const names = await readdir(this.dir);
    for (const name of names.filter((n) => n.endsWith('.parquet.tmp'))) {
      const type = Object.keys(manifest.counts).find((t) => `${fileStem(t)}.parquet.tmp` === name);
      // Committed (the manifest no longer lists its parts): finish the rename; otherwise a half-made file.
      if (type !== undefined && (manifest.parts[type] ?? []).length === 0) {
        await rename(join(this.dir, name), join(this.dir, name.slice(0, -'.tmp'.length)));
      } else await rm(join(this.dir, name), { force: true });
    }
    const listed = new Set(Object.values(manifest.parts).flat());
    if (!existsSync(join(this.dir, PARTS))) return;
    for (const stem of await readdir(join(this.dir, PARTS))) {
      if (stem === 'spill') continue;
      for (const file of await readdir(join(this.dir, PARTS, stem))) {
        const part = join(PARTS, stem, file);
        if (!listed.has(part)) await rm(join(this.dir, part), { force: true });
      }
    }
  }

  async flush(): Promise<void> {}

  close(): void {
    for (const stage of this.#stages.values()) stage.appender?.closeSync();
    this.db.closeSync();
    this.instance.closeSync();
  }
}

/** Lines as `chatctl replay` prints them, appended to `<Type>.ndjson` at each commit. */
class NdjsonSink implements Sink {
  readonly #pending = new Map<string, string[]>();
  readonly #uncommitted = new Map<string, number>();

  constructor(private readonly dir: string) {}

  async prepare(): Promise<void> {}

  add(event: RecordedEvent): void {
    let lines = this.#pending.get(event.type);
    if (!lines) {
      lines = [];
      this.#pending.set(event.type, lines);
    }
    lines.push(`${envelopeLine(event)}\n`);
  }

  /** Written after every page, so memory holds one page; committed only by `commit`'s manifest sizes. */
  async flush(): Promise<void> {
    for (const [type, lines] of this.#pending) {
      if (lines.length === 0) continue;
      await appendFile(join(this.dir, `${fileStem(type)}.ndjson`), lines.join(''));
      this.#uncommitted.set(type, (this.#uncommitted.get(type) ?? 0) + lines.length);
      lines.length = 0;
    }
  }

  async commit(manifest: Manifest): Promise<void> {
    await this.flush();
    for (const [type, rows] of this.#uncommitted) {
      manifest.bytes[type] = (await stat(join(this.dir, `${fileStem(type)}.ndjson`))).size;
      manifest.counts[type] = (manifest.counts[type] ?? 0) + rows;
    }
    this.#uncommitted.clear();
  }

  async finish(): Promise<void> {}

  async recover(manifest: Manifest): Promise<void> {
    // Lines written after the last commit are cut off; a file the manifest does not know is emptied.
    for (const name of (await readdir(this.dir)).filter((n) => n.endsWith('.ndjson'))) {
      const type = Object.keys(manifest.bytes).find((t) => `${fileStem(t)}.ndjson` === name);
      await truncate(join(this.dir, name), type === undefined ? 0 : (manifest.bytes[type] ?? 0));
    }
  }

  close(): void {}
}

const sameTypes = (a: string[] | null, b: string[] | null) =>
  JSON.stringify(a ? [...a].sort() : null) === JSON.stringify(b ? [...b].sort() : null);

/**
 * Exports the selected events, in log order, into one file per event type (`<Type>.parquet` with typed
 * columns, or `<Type>.ndjson` with the lines of `chatctl replay`). Resumable: it commits every
 * `chunkEvents` events and a new run into the same directory goes on after the last commit — also to
 * extend a finished export with the events appended since.
 */
export const exportEvents = async (
  store: EventStore,
  options: ExportOptions,
  progress?: ProgressBar,
): Promise<ExportResult> => {
  const started = Date.now();
  const chunkEvents = options.chunkEvents ?? 250_000;
  const pageSize = options.pageSize ?? 5000;
  await mkdir(options.out, { recursive: true });
  const manifestFile = join(options.out, MANIFEST);
  const types = options.types ?? null;
  let manifest: Manifest;
  let resumed = false;
  if (existsSync(manifestFile)) {
    manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Manifest;
    if (manifest.format !== options.format || !sameTypes(manifest.types, types)) {
      throw new UsageError(
        `${options.out} holds an export with --format ${manifest.format}${manifest.types ? ` --types ${manifest.types.join(',')}` : ''}: resume it with those options, or use another --out`,
      );
    }
    resumed = true;
  } else {
    manifest = {
      version: 1,
      format: options.format,
      types,
      position: options.from ?? START_POSITION,
      total: 0,
      counts: {},
      parts: {},
      nextPart: 0,
      bytes: {},
    };
  }
  const save = async () => {
    await writeFile(`${manifestFile}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(`${manifestFile}.tmp`, manifestFile);
  };

  const sink: Sink =
    options.format === 'parquet' ? await ParquetSink.open(options.out) : new NdjsonSink(options.out);
  let events = 0;
  try {
    await sink.recover(manifest);
    const head = options.to ?? (await store.headPosition());
    const filter = types ? { eventTypes: types } : undefined;
    let from = manifest.position;
    let inChunk = 0;
    const commit = async () => {
      await sink.commit(manifest);
      manifest.position = from;
      manifest.total += inChunk;
      events += inChunk;
      inChunk = 0;
      await save();
    };
    const read = (after: string) => {
      const page = store.readAll({ fromPosition: after, maxCount: pageSize, ...(filter ? { filter } : {}) });
      // Awaited on the next turn; a failure meanwhile must not count as unhandled.
      page.catch(() => undefined);
      return page;
    };
    let next = from >= head ? null : read(from);
    while (next) {
      const page = await next;
      const upTo = page.findIndex((e) => e.position > head);
      const taken = upTo === -1 ? page : page.slice(0, upTo);
      const ended = upTo !== -1 || page.length < pageSize;
      // The next page is read while this one is written: Postgres and Node overlap (as the rebuild does).
      next = ended ? null : read(page.at(-1)?.position as string);
      await sink.prepare(new Set(taken.map((e) => e.type)));
      for (const e of taken) sink.add(e);
      await sink.flush();
      inChunk += taken.length;
      from = taken.at(-1)?.position ?? from;
      if (inChunk >= chunkEvents) await commit();
      progress?.update(positionFraction(from, head), events + inChunk);
    }
    await commit();
    await sink.finish(manifest, save);
    progress?.done(events);
  } finally {
    sink.close();
  }
  const extension = options.format === 'parquet' ? 'parquet' : 'ndjson';
  return {
    events,
    total: manifest.total,
    position: manifest.position,
    resumed,
    ms: Date.now() - started,
    counts: manifest.counts,
    files: Object.keys(manifest.counts)
      .sort()
      .map((t) => `${fileStem(t)}.${extension}`),
  };
};
