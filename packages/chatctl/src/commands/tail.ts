import type { EventStore } from '@chat/eventstore';
import { type EventSelection, matchesTime, storeFilter, toLine } from '../filters.js';
import type { Output } from './replay.js';

/** Follows the log live (from the head, or `fromPosition`) and writes each event as NDJSON until aborted. */
export const tail = async (
  store: EventStore,
  selection: EventSelection,
  out: Output,
  signal: AbortSignal,
): Promise<number> => {
  const fromPosition = selection.fromPosition ?? (await store.headPosition());
  let written = 0;
  for await (const batch of store.subscribeToAll({ fromPosition, filter: storeFilter(selection), signal })) {
    let chunk = '';
    for (const e of batch) {
      if (selection.toPosition !== undefined && e.position > selection.toPosition) return written;
      if (!matchesTime(selection, e)) continue;
      chunk += `${toLine(e)}\n`;
      written++;
    }
    if (chunk && !out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
  }
  return written;
};
