import { reportStream } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { decideReport, evolveReport, initialReportState, type ReportState } from '../reports/decider.js';
import type { Aggregate, Folded } from './aggregate.js';
import { readStore, storedEvent } from './conversation-aggregate.js';

export type CachedReport = Folded<ReportState, 'report'>;

/** A report as the writer decides on it: the fold of its own stream (only this writer appends to it). */
export const reportAggregate = (
  store: EventStore,
): Aggregate<Parameters<typeof decideReport>[0], ReportState, 'report', CachedReport> => {
  const catchUp = async (reportId: string, entry: CachedReport): Promise<void> => {
    const events = await readStore(() =>
      store.readStream(reportStream(reportId), { fromRevision: entry.revisions.report + 1 }),
    );
    for (const recorded of events) {
      evolveReport(entry.state, storedEvent(recorded), {
        seq: recorded.revision,
        position: recorded.position,
      });
      entry.revisions.report = recorded.revision;
    }
  };
  return {
    streams: ['report'],
    decide: decideReport,
    evolve: evolveReport,
    catchUp: (reportId, entry) => catchUp(reportId, entry),
    async load(reportId) {
      const entry: CachedReport = { state: initialReportState(), revisions: { report: -1 } };
      await catchUp(reportId, entry);
      return entry;
    },
    exists: (entry) => entry.revisions.report >= 0,
  };
};
