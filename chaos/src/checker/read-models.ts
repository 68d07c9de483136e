import type { Entry, EntryOf } from '../history/types.js';
import { Check } from './check.js';
import type { HistoryIndex } from './history-index.js';

// Check 4: the read models as the run left them equal a fresh replay of the log, compared both ways,
// row by row (by primary key and row hash). And check 2 for the read models: every message row is one
// MessageSent of the log, once, and every MessageSent has its row.

type Side = { hashes: Map<string, string>; duplicates: string[] };

const sideOf = (entry: EntryOf<'table'> | undefined): Side => {
  const hashes = new Map<string, string>();
  const duplicates: string[] = [];
  if (entry) {
    for (const [i, key] of entry.keys.entries()) {
      if (hashes.has(key)) duplicates.push(key);
      hashes.set(key, entry.hashes[i] ?? '');
    }
  }
  return { hashes, duplicates };
};

export const checkReadModels = (ix: HistoryIndex): Check[] => {
  const equal = new Check('4', 'read models = a fresh replay (rows differing, both ways)');
  const unique = new Check('2c', 'read models: one message row per MessageSent, no duplicates');
  if (ix.tables.size === 0) {
    equal.violation('the run recorded no read-model tables (the snapshot did not happen)', () => []);
    return [equal, unique];
  }
  const rowsOf = (name: string, key: string): Entry[] =>
    ix.rows.filter((r) => `${r.model}.${r.table}` === name && r.key === key);
  for (const [name, { live, replay }] of ix.tables) {
    const l = sideOf(live);
    const r = sideOf(replay);
    let differing = 0;
    for (const key of l.duplicates)
      unique.violation(`${name}: more than one live row with key ${key}`, () => rowsOf(name, key));
    for (const [key, hash] of l.hashes) {
      equal.checked++;
      const other = r.hashes.get(key);
      if (other === hash) continue;
      differing++;
      equal.violation(
        other === undefined
          ? `${name}: live row ${key} is not in the replay`
          : `${name}: row ${key} differs from the replay`,
        () => rowsOf(name, key),
      );
    }
    for (const key of r.hashes.keys()) {
      if (l.hashes.has(key)) continue;
      equal.checked++;
      differing++;
      equal.violation(`${name}: replayed row ${key} is missing from the live read model`, () =>
        rowsOf(name, key),
      );
    }
    equal.figure(name, differing);
  }
  // Straight against the log, whatever the projector's code (live and replay alike) does.
  // (The notifier keeps no row per message: v1.1 writes none for a message that addresses nobody.)
  const name = 'read_models.messages';
  const live = sideOf(ix.tables.get(name)?.live);
  if (live.hashes.size > 0 || ix.messages.size > 0) {
    for (const [key, events] of ix.messages) {
      unique.checked++;
      if (!live.hashes.has(key))
        unique.violation(`${name}: MessageSent ${key} (seq ${events[0]!.rev}) has no row`, () => events);
      if (events.length > 1)
        unique.violation(`${name}: ${key} is in the log ${events.length} times`, () => events);
    }
    for (const key of live.hashes.keys()) {
      if (!ix.messages.has(key))
        unique.violation(`${name}: row ${key} has no MessageSent in the log`, () => rowsOf(name, key));
    }
  }
  return [equal, unique];
};
