import type { EntryOf } from '../history/types.js';
import { Check } from './check.js';
import type { HistoryIndex } from './history-index.js';

// Check 5: every consumer's checkpoint (projector, notifier, relay) only moves forward, also across its
// crashes, and ends at the log's head (nothing skipped: with check 4, every event was applied).

export const checkCheckpoints = (ix: HistoryIndex): Check[] => {
  const monotonic = new Check('5a', 'checkpoints monotonic (projector, notifier, relay)');
  const atHead = new Check('5b', 'every checkpoint at the log head after the heal');
  const skipped = new Check('5c', 'no event skipped: nothing quarantined, live or in the replays');
  for (const q of ix.quarantine) {
    skipped.violation(`${q.consumer} (${q.side}) set aside ${q.type} ${q.id} at ${q.pos}: ${q.error}`, () => [
      q,
      ...(ix.logByPos.has(q.pos) ? [ix.logByPos.get(q.pos)!] : []),
    ]);
  }
  skipped.checked = ix.log.length;
  const previous = new Map<string, EntryOf<'sample'>>();
  for (const s of ix.samples) {
    for (const [consumer, position] of Object.entries(s.checkpoints ?? {})) {
      monotonic.checked++;
      const before = previous.get(consumer);
      const was = before?.checkpoints?.[consumer];
      if (was !== undefined && position < was) {
        monotonic.violation(`${consumer} checkpoint went back from ${was} to ${position}`, () => [
          before!,
          s,
        ]);
      }
      previous.set(consumer, s);
    }
  }
  const final = ix.final;
  if (!final) {
    atHead.violation('the run recorded no final checkpoints', () => []);
    return [monotonic, atHead, skipped];
  }
  const consumers = Object.entries(final.checkpoints);
  if (consumers.length === 0) atHead.violation('no consumer checkpoints were found', () => [final]);
  for (const [consumer, position] of consumers) {
    atHead.checked++;
    if (position !== final.head) {
      atHead.violation(`${consumer} ended at ${position}, the head is ${final.head}`, () => [final]);
    }
  }
  const lastLogged = ix.log.at(-1)?.pos;
  if (lastLogged !== undefined && lastLogged !== final.head) {
    atHead.violation(`the head is ${final.head} but the last event read is at ${lastLogged}`, () => [final]);
  }
  return [monotonic, atHead, skipped];
};
