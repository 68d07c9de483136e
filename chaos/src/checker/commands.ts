import type { Entry, LogEntry, OkEntry } from '../history/types.js';
import { Check } from './check.js';
import { type HistoryIndex, messageKey, type Op, runAttempts } from './history-index.js';

// Checks 1 and 2 for commands: nothing acknowledged is missing from the log, every open outcome was
// settled by a retry with the same messageId, and nothing took effect twice.

const opEntries = (op: Op): Entry[] => [
  ...op.attempts.flatMap((a) => (a.outcome ? [a.invoke, a.outcome] : [a.invoke])),
  ...(op.giveup ? [op.giveup] : []),
];

const streamAround = (ix: HistoryIndex, conv: string, seq: number | undefined): LogEntry[] => {
  const events = ix.streams.get(`conversation-${conv}`) ?? [];
  if (seq === undefined) return events.slice(-5);
  return events.filter((e) => Math.abs(e.rev - seq) <= 2);
};

const firstOk = (op: Op): OkEntry | undefined => {
  for (const a of op.attempts) if (a.outcome?.k === 'ok') return a.outcome;
  return undefined;
};

/** The effect in the log an acknowledged command must have left, or why it is not there. */
const missingEffect = (ix: HistoryIndex, op: Op, ok: OkEntry): string | undefined => {
  const { cmd, conv, user } = op.first;
  switch (cmd) {
    case 'send': {
      const found = ix.messages.get(messageKey(conv, op.first.mid ?? '')) ?? [];
      const event = found[0];
      if (!event) return `acknowledged SendMessage ${op.first.mid} (seq ${ok.seq}) is not in the log`;
      if (ok.seq !== undefined && event.rev !== ok.seq)
        return `acknowledged with seq ${ok.seq}, the log has the message at seq ${event.rev}`;
      if (ok.pos !== undefined && event.pos !== ok.pos)
        return `acknowledged with position ${ok.pos}, the log has it at ${event.pos}`;
      return undefined;
    }
    case 'read': {
      if (ok.pos === undefined) return undefined;
      const event = ix.logByPos.get(ok.pos);
      if (!event) return `acknowledged MarkRead at position ${ok.pos} is not in the log`;
      if (
        event.type !== 'ConversationRead' ||
        event.conv !== conv ||
        event.user !== user ||
        (ok.readSeq !== undefined && event.upTo !== ok.readSeq)
      )
        return `the log's event at ${ok.pos} is ${event.type} ${event.user}→${event.upTo}, not this MarkRead`;
      return undefined;
    }
    case 'leave': {
      const event = ok.pos === undefined ? undefined : ix.logByPos.get(ok.pos);
      if (event?.type !== 'MemberLeft' || event.user !== user)
        return `acknowledged removal of ${user} has no MemberLeft at ${ok.pos}`;
      return undefined;
    }
    default: {
      const never: never = cmd;
      return `unknown command ${String(never)}`;
    }
  }
};

/** A removal retried after an unknown outcome may answer 404: the first attempt had removed them. */
const leaveSettledBy404 = (ix: HistoryIndex, op: Op): boolean =>
  op.first.cmd === 'leave' &&
  op.attempts.some((a) => a.outcome?.k === 'fail' && a.outcome.status === 404) &&
  (ix.streams.get(`conversation-${op.first.conv}`) ?? []).some(
    (e) => e.type === 'MemberLeft' && e.user === op.first.user,
  );

export type CommandFigures = {
  acked: Set<string>;
  lost: Set<string>;
  duplicated: Set<string>;
  /** Ops whose run had an unknown outcome and no success, settled by the resolve phase. */
  resolved: Set<string>;
  unresolved: Set<string>;
};

export const checkCommands = (ix: HistoryIndex): { checks: Check[]; figures: CommandFigures } => {
  const lost = new Check('1a', 'lost: acknowledged but not in the log');
  const resolved = new Check('1b', 'every unknown outcome resolved exactly once by a retry');
  const refused = new Check('1c', 'refused (4xx/503 "nothing was written") yet written', 'finding');
  const duplicated = new Check('2a', 'commands that took effect more than once');
  const figures: CommandFigures = {
    acked: new Set(),
    lost: new Set(),
    duplicated: new Set(),
    resolved: new Set(),
    unresolved: new Set(),
  };
  let unknownHadEffect = 0;
  let unknownNoEffect = 0;
  let unknownUndetermined = 0;
  for (const op of ix.ops.values()) {
    const ok = firstOk(op);
    const run = runAttempts(op);
    const runOk = run.some((a) => a.outcome?.k === 'ok');
    if (runOk) figures.acked.add(op.op);
    if (ok) {
      lost.checked++;
      const missing = missingEffect(ix, op, ok);
      if (missing) {
        figures.lost.add(op.op);
        lost.violation(missing, () => [...opEntries(op), ...streamAround(ix, op.first.conv, ok.seq)]);
      }
    }
    if (op.first.cmd === 'send' && op.first.mid) {
      duplicated.checked++;
      const found = ix.messages.get(messageKey(op.first.conv, op.first.mid)) ?? [];
      if (found.length > 1) {
        figures.duplicated.add(op.op);
        duplicated.violation(`messageId ${op.first.mid} is in the log ${found.length} times`, () => [
          ...opEntries(op),
          ...found,
        ]);
      }
    }
    // An op with an open outcome (an unknown attempt, or no answer at all) or a refusal before any
    // success must end settled by a retry with the same id — during the run or in the resolve phase —
    // and have taken effect exactly once.
    const settling = op.attempts.findIndex((a) => a.outcome?.k === 'ok');
    const before = settling < 0 ? op.attempts : op.attempts.slice(0, settling);
    const hadUnknown = before.some((a) => !a.outcome || a.outcome.k === 'unknown');
    const hadRefusal = before.some((a) => a.outcome?.k === 'fail');
    if (!hadUnknown && !hadRefusal) continue;
    resolved.checked++;
    if (settling < 0 && !leaveSettledBy404(ix, op)) {
      figures.unresolved.add(op.op);
      resolved.violation(`op ${op.op} (${op.first.cmd}) was never settled by a retry`, () => opEntries(op));
      continue;
    }
    if (hadUnknown) figures.resolved.add(op.op);
    if (op.first.cmd !== 'send') continue;
    const events = ix.messages.get(messageKey(op.first.conv, op.first.mid ?? '')) ?? [];
    if (events.length !== 1) {
      figures.unresolved.add(op.op);
      resolved.violation(
        `op ${op.op}: after the retries the log holds the message ${events.length} times`,
        () => [...opEntries(op), ...events],
      );
      continue;
    }
    // Did an attempt before the successful one take effect? HTTP tells (200 = the earlier message,
    // 201 = created now). A WS ack does not; but a message stamped before the successful attempt was
    // even sent must be an earlier attempt's (the converse does not hold: a request held up in a
    // frozen NATS may run after its retry was sent).
    const okAttempt = op.attempts[settling]!;
    const okEntry = okAttempt.outcome as OkEntry;
    const earlier = okEntry.status === 200 || Date.parse(events[0]!.at) < okAttempt.invoke.t - 1;
    const notEarlier = okEntry.status === 201;
    if (hadUnknown) {
      if (earlier) unknownHadEffect++;
      else if (notEarlier) unknownNoEffect++;
      else unknownUndetermined++;
    } else {
      refused.checked++;
      if (earlier)
        refused.violation(
          `op ${op.op}: every earlier attempt was refused, yet one of them wrote the message`,
          () => [...opEntries(op), ...events],
        );
    }
  }
  resolved.figure('unknown→resolved', figures.resolved.size);
  resolved.figure('had taken effect', unknownHadEffect);
  resolved.figure('had not', unknownNoEffect);
  resolved.figure('cannot tell (WS ack)', unknownUndetermined);
  lost.figure('acked', figures.acked.size);
  return { checks: [lost, resolved, refused, duplicated], figures };
};
