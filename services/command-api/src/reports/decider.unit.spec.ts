import type { ChatEvent } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { decideReport, evolveReport, initialReportState, type ReportCommand } from './decider.js';

const R = '44444444-4444-4444-8444-444444444444';
const C = '11111111-1111-4111-8111-111111111111';
const M = '22222222-2222-4222-8222-222222222222';
const NOW = '2026-01-02T03:04:05.678Z';

const stateOf = (events: readonly ChatEvent[]) =>
  events.reduce(
    (s, e, i) => evolveReport(s, e, { seq: i, position: i.toString(16).padStart(32, '0') }),
    initialReportState(),
  );
const file = (reason = 'spam'): ReportCommand => ({
  type: 'FileReport',
  data: {
    reportId: R,
    conversationId: C,
    messageId: M,
    messageSenderId: 'mallory',
    reporterId: 'carol',
    reason,
    now: NOW,
  },
});
const reported: ChatEvent = {
  type: 'MessageReported',
  data: {
    reportId: R,
    conversationId: C,
    messageId: M,
    messageSenderId: 'mallory',
    reporterId: 'carol',
    reason: 'spam',
    reportedAt: NOW,
  },
};
const resolve = (action: 'dismissed' | 'removed'): ReportCommand => ({
  type: 'ResolveReport',
  data: { reportId: R, resolvedBy: 'mod', action, note: null, now: NOW },
});
const resolved = (action: 'dismissed' | 'removed'): ChatEvent => ({
  type: 'ReportResolved',
  data: {
    reportId: R,
    conversationId: C,
    messageId: M,
    resolvedBy: 'mod',
    action,
    note: null,
    resolvedAt: NOW,
  },
});
const code = (command: ReportCommand, events: readonly ChatEvent[]) => {
  try {
    decideReport(command, stateOf(events));
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('reports', () => {
  it('files once; the same reason again appends nothing, another reason conflicts', () => {
    expect(decideReport(file(), stateOf([]))).toEqual([reported]);
    expect(decideReport(file(), stateOf([reported]))).toEqual([]);
    expect(code(file('abuse'), [reported])).toBe('conflict');
  });

  it('resolves a filed report once; the same action again nothing, another conflicts; unknown: 404', () => {
    expect(decideReport(resolve('removed'), stateOf([reported]))).toEqual([resolved('removed')]);
    expect(decideReport(resolve('removed'), stateOf([reported, resolved('removed')]))).toEqual([]);
    expect(code(resolve('dismissed'), [reported, resolved('removed')])).toBe('conflict');
    expect(code(resolve('dismissed'), [])).toBe('not_found');
  });
});
