import {
  ChatError,
  type ChatEvent,
  type CommandFields,
  type EventData,
  isEventOfStream,
  type ModerationCommandShapes,
} from '@chat/events';
import type { Recorded } from '../conversations/state.js';

// A moderation report (issue 16), decided on its own stream `report-<reportId>`. Reports stay off the
// conversation stream on purpose: its events reach every member's socket, the reported sender's too,
// and who reported what is for moderators only. The id is derived from (message, reporter), so one
// reporter files one report per message and a retry finds it.

export type ReportState = {
  filed: (EventData<'MessageReported'> & { at: Recorded }) | null;
  resolved: (EventData<'ReportResolved'> & { at: Recorded }) | null;
};
export const initialReportState = (): ReportState => ({ filed: null, resolved: null });

type Fields<N extends keyof ModerationCommandShapes> = CommandFields<ModerationCommandShapes[N]>;

/** The request's fields (shapes of @chat/events) and what the handler adds: ids, the actor, the clock. */
export type ReportCommand =
  | {
      type: 'FileReport';
      data: Fields<'reportMessage'> & {
        reportId: string;
        messageSenderId: string;
        reporterId: string;
        now: string;
      };
    }
  | { type: 'ResolveReport'; data: Fields<'resolveReport'> & { resolvedBy: string; now: string } }
  /** Appends nothing: 404 unless the report exists (before a `removed` resolution deletes its message). */
  | { type: 'RequireReport'; data: { reportId: string } };

const notFound = () => new ChatError('not_found', 'report not found');

export const decideReport = (command: ReportCommand, state: ReportState): ChatEvent[] => {
  switch (command.type) {
    case 'FileReport': {
      const { reportId, conversationId, messageId, messageSenderId, reporterId, reason, now } = command.data;
      if (state.filed) {
        if (state.filed.reporterId === reporterId && state.filed.reason === reason) return [];
        throw new ChatError('conflict', 'you reported this message already, with another reason');
      }
      const data = {
        reportId,
        conversationId,
        messageId,
        messageSenderId,
        reporterId,
        reason,
        reportedAt: now,
      };
      return [{ type: 'MessageReported', data }];
    }
    case 'ResolveReport': {
      const { reportId, resolvedBy, action, note, now } = command.data;
      const filed = state.filed;
      if (!filed) throw notFound();
      if (state.resolved) {
        if (state.resolved.action === action) return [];
        throw new ChatError('conflict', `the report is resolved already (${state.resolved.action})`);
      }
      const { conversationId, messageId } = filed;
      return [
        {
          type: 'ReportResolved',
          data: { reportId, conversationId, messageId, resolvedBy, action, note, resolvedAt: now },
        },
      ];
    }
    case 'RequireReport': {
      if (!state.filed) throw notFound();
      return [];
    }
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

export const evolveReport = (state: ReportState, event: ChatEvent, at: Recorded): ReportState => {
  if (!isEventOfStream(event, 'report')) return state;
  switch (event.type) {
    case 'MessageReported':
      state.filed = { ...event.data, at };
      return state;
    case 'ReportResolved':
      state.resolved = { ...event.data, at };
      return state;
    default: {
      const never: never = event;
      throw new Error(`unknown event ${JSON.stringify(never)}`);
    }
  }
};
