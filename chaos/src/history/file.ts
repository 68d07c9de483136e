import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import type { Entry } from './types.js';

/** Appends entries to a JSONL file through a buffered stream. */
export class HistoryWriter {
  readonly #stream: WriteStream;
  #count = 0;

  constructor(readonly file: string) {
    this.#stream = createWriteStream(file, { flags: 'a' });
  }

  write(entry: Entry): void {
    this.#count++;
    this.#stream.write(`${JSON.stringify(entry)}\n`);
  }

  get count(): number {
    return this.#count;
  }

  /** Resolves once everything written so far is on disk. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#stream.writableLength === 0) resolve();
      else this.#stream.once('drain', () => resolve());
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#stream.end(() => resolve()));
  }
}

export const readHistoryFile = (file: string): Entry[] => {
  const out: Entry[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line) out.push(JSON.parse(line) as Entry);
  }
  return out;
};

/**
 * One history from several files: entries with a time in time order (stable, so one process's entries
 * keep their order), then the untimed ones (the snapshot after the run) in file order.
 */
export const mergeHistories = (parts: readonly Entry[][]): Entry[] => {
  const timed: Entry[] = [];
  const untimed: Entry[] = [];
  for (const part of parts) for (const e of part) (e.t === undefined ? untimed : timed).push(e);
  timed.sort((a, b) => (a.t ?? 0) - (b.t ?? 0));
  return [...timed, ...untimed];
};
