import { createHash } from 'node:crypto';
import type { Entry, ReadModel } from './types.js';

// Read-model rows as the history carries them: per table, every primary key with a hash of its row,
// and the full rows only where the live and the replayed table disagree.

export type TableRow = {
  model: ReadModel;
  side: 'live' | 'replay';
  table: string;
  key: string;
  row: Record<string, unknown>;
};

/** The row as JSON with its columns in name order: equal rows, equal text. */
export const canonicalRow = (row: Record<string, unknown>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

export const rowHash = (row: Record<string, unknown>): string =>
  createHash('sha1').update(canonicalRow(row)).digest('hex').slice(0, 20);

/** The history entries for a set of rows: one `table` entry per table and side, `row`s where they differ. */
export const tableEntries = (rows: readonly TableRow[]): Entry[] => {
  const tables = new Map<
    string,
    {
      model: ReadModel;
      table: string;
      live: Map<string, TableRow>;
      replay: Map<string, TableRow>;
      keys: Record<'live' | 'replay', string[]>;
      hashes: Record<'live' | 'replay', string[]>;
    }
  >();
  for (const r of rows) {
    const name = `${r.model}.${r.table}`;
    let t = tables.get(name);
    if (!t) {
      t = {
        model: r.model,
        table: r.table,
        live: new Map(),
        replay: new Map(),
        keys: { live: [], replay: [] },
        hashes: { live: [], replay: [] },
      };
      tables.set(name, t);
    }
    t[r.side].set(r.key, r);
    t.keys[r.side].push(r.key);
    t.hashes[r.side].push(rowHash(r.row));
  }
  const out: Entry[] = [];
  for (const t of tables.values()) {
    for (const side of ['live', 'replay'] as const) {
      out.push({
        k: 'table',
        model: t.model,
        side,
        table: t.table,
        keys: t.keys[side],
        hashes: t.hashes[side],
      });
    }
    for (const key of new Set([...t.live.keys(), ...t.replay.keys()])) {
      const live = t.live.get(key);
      const replay = t.replay.get(key);
      if (live && replay && canonicalRow(live.row) === canonicalRow(replay.row)) continue;
      for (const r of [live, replay])
        if (r) out.push({ k: 'row', model: r.model, side: r.side, table: r.table, key, row: r.row });
    }
  }
  return out;
};
