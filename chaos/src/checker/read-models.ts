import type { EntryOf } from '../history/types.js';
import { Check } from './check.js';
import { conversationOf, type HistoryIndex, messageKey } from './history-index.js';

// Check 4: the read models as the run left them equal a fresh replay of the log, compared both ways,
// row by row. And check 2 for the read models: every message row is one MessageSent of the log, once.

type RowEntry = EntryOf<'row'>;

const canonical = (row: Record<string, unknown>): string =>
  JSON.stringify(Object.fromEntries(Object.entries(row).sort(([a], [b]) => (a < b ? -1 : 1))));

export const checkReadModels = (ix: HistoryIndex): Check[] => {
  const equal = new Check('4', 'read models = a fresh replay (rows differing, both ways)');
  const unique = new Check('2c', 'read models: one row per event, no duplicates');
  if (ix.rows.length === 0) {
    equal.violation('the run recorded no read-model rows (the snapshot did not happen)', () => []);
    return [equal, unique];
  }
  const tables = new Map<string, { live: Map<string, RowEntry[]>; replay: Map<string, RowEntry[]> }>();
  for (const r of ix.rows) {
    const name = `${r.model}.${r.table}`;
    const t = tables.get(name) ?? { live: new Map(), replay: new Map() };
    tables.set(name, t);
    const side = t[r.side];
    const list = side.get(r.key);
    if (list) list.push(r);
    else side.set(r.key, [r]);
  }
  for (const [name, { live, replay }] of tables) {
    let differing = 0;
    for (const [key, rows] of live) {
      equal.checked++;
      if (rows.length > 1) unique.violation(`${name}: ${rows.length} live rows with key ${key}`, () => rows);
      const other = replay.get(key);
      if (!other) {
        differing++;
        equal.violation(`${name}: live row ${key} is not in the replay`, () => rows);
      } else if (canonical(rows[0]!.row) !== canonical(other[0]!.row)) {
        differing++;
        equal.violation(`${name}: row ${key} differs from the replay`, () => [...rows, ...other]);
      }
    }
    for (const [key, rows] of replay) {
      if (live.has(key)) continue;
      equal.checked++;
      differing++;
      equal.violation(`${name}: replayed row ${key} is missing from the live read model`, () => rows);
    }
    equal.figure(name, differing);
  }
  // Every MessageSent is one message row at its seq, and every message row is one MessageSent.
  const messages = tables.get('read_models.messages')?.live ?? new Map<string, RowEntry[]>();
  for (const [key, events] of ix.messages) {
    unique.checked++;
    const row = messages.get(key)?.[0]?.row;
    const event = events[0]!;
    if (!row) unique.violation(`message ${key} (seq ${event.rev}) has no read-model row`, () => events);
    else if (row.seq !== event.rev)
      unique.violation(
        `message ${key} is at seq ${String(row.seq)} in the read model, ${event.rev} in the log`,
        () => [...events, ...(messages.get(key) ?? [])],
      );
  }
  for (const [key, rows] of messages) {
    const conv = String(rows[0]!.row.conversation_id);
    const mid = String(rows[0]!.row.message_id);
    if (!ix.messages.has(messageKey(conv, mid)) && ix.streams.has(`conversation-${conv}`))
      unique.violation(`message row ${key} has no MessageSent in the log`, () => rows);
  }
  unique.figure('conversations in the log', [...ix.streams.keys()].filter((s) => conversationOf(s)).length);
  return [equal, unique];
};
