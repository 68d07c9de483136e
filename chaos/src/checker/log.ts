import { Check } from './check.js';
import type { HistoryIndex } from './history-index.js';

// Checks 2 and 3 on the log itself: every event id once, every stream's revisions 0, 1, 2, … in log order.

/** Typing streams are scavenged after an hour (DESIGN.md): their first revision may be past 0. */
const SCAVENGED_PREFIX = 'typing-';

export const checkLog = (ix: HistoryIndex): Check[] => {
  const ids = new Check('2b', 'no duplicate event id in the log');
  const revisions = new Check('3a', 'stream revisions contiguous and in log order');
  if (ix.log.length === 0) {
    ids.violation('the run recorded no log (the snapshot did not happen)', () => []);
    return [ids, revisions];
  }
  for (const [id, events] of ix.logById) {
    ids.checked++;
    if (events.length > 1) ids.violation(`event id ${id} appears ${events.length} times`, () => events);
  }
  if (ix.logCount && ix.logCount.rows !== ix.logCount.distinctIds) {
    ids.violation(
      `the events table holds ${ix.logCount.rows} rows but ${ix.logCount.distinctIds} distinct ids`,
      () => [ix.logCount!],
    );
  }
  if (ix.logCount && ix.logCount.rows !== ix.log.length) {
    ids.violation(
      `the events table holds ${ix.logCount.rows} rows, readAll returned ${ix.log.length}`,
      () => [ix.logCount!],
    );
  }
  for (const [stream, events] of ix.streams) {
    revisions.checked++;
    const first = stream.startsWith(SCAVENGED_PREFIX) ? (events[0]?.rev ?? 0) : 0;
    for (const [i, e] of events.entries()) {
      if (e.rev !== first + i) {
        revisions.violation(
          `stream ${stream}: the ${i + 1}th event in log order has revision ${e.rev}, expected ${first + i}`,
          () => events.slice(Math.max(0, i - 3), i + 3),
        );
        break;
      }
    }
  }
  return [ids, revisions];
};
