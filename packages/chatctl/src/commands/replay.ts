import type { EventStore } from '@chat/eventstore';
import { positionFraction } from '@chat/projection';
import { type EventSelection, matchesTime, storeFilter, toLine } from '../filters.js';
import type { ProgressBar } from '../progress.js';

export type Output = { write(chunk: string): boolean; once(event: 'drain', listener: () => void): unknown };

/**
 * Writes the selected history as NDJSON, in log order, one page at a time, respecting backpressure.
 * Returns how many events it wrote.
 */
export const replay = async (
  store: EventStore,
  selection: EventSelection,
  out: Output,
  progress?: ProgressBar,
  pageSize = 5000,
): Promise<number> => {
  const head = selection.toPosition ?? (await store.headPosition());
  const filter = storeFilter(selection);
  let from = selection.fromPosition;
  let written = 0;
  for (;;) {
    const page = await store.readAll({ fromPosition: from, maxCount: pageSize, filter });
    const last = page.at(-1);
    if (!last) break;
    let chunk = '';
    let ended = false;
    for (const e of page) {
      if (selection.toPosition !== undefined && e.position > selection.toPosition) {
        ended = true;
        break;
      }
      if (!matchesTime(selection, e)) continue;
      chunk += `${toLine(e)}\n`;
      written++;
    }
    if (chunk && !out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
    from = last.position;
    progress?.update(positionFraction(last.position, head), written);
    if (ended || page.length < pageSize) break;
  }
  progress?.done(written);
  return written;
};
