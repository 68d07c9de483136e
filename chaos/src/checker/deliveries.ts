import type { Entry, LogEntry } from '../history/types.js';
import { Check } from './check.js';
import {
  type DeviceTimeline,
  type HistoryIndex,
  memberAtEnd,
  memberAtPosition,
  memberAtSeq,
  messageKey,
} from './history-index.js';

// Checks 3 and 6 on what every socket received, from its raw frames: per conversation seq strictly
// increasing without gaps across reconnects, each frame the log's event at that seq, every device
// caught up at the end, and nothing delivered to a user who was not a member.

type ConvState = { last: number; allowGap: boolean };

/** The device's connection-level entries and those of one conversation, up to and around `index`. */
const around = (timeline: readonly DeviceTimeline[], index: number, conv?: string): Entry[] => {
  const out: Entry[] = [];
  for (let i = Math.max(0, index - 40); i <= Math.min(timeline.length - 1, index + 3); i++) {
    const e = timeline[i]!;
    const convOf = 'conv' in e ? e.conv : undefined;
    if (convOf === undefined || conv === undefined || convOf === conv) out.push(e);
  }
  return out.slice(-16);
};

const eventAt = (ix: HistoryIndex, conv: string, seq: number): LogEntry | undefined => {
  const events = ix.streams.get(`conversation-${conv}`) ?? [];
  const guess = events[seq];
  return guess?.rev === seq ? guess : events.find((e) => e.rev === seq);
};

export const checkDeliveries = (ix: HistoryIndex): Check[] => {
  const order = new Check('3b', 'every socket saw each conversation in seq order, no gap, no duplicate');
  const caughtUp = new Check('3c', 'every device caught up with every conversation it is in');
  const nonMembers = new Check('6', 'no delivery to non-members');
  const notifications = new Check('6b', 'notification frames at most once per record', 'finding');
  const receipts = new Map<string, string>();
  for (const e of ix.log) {
    if (e.type !== 'ConversationRead' || !e.conv || !e.user || e.upTo === undefined) continue;
    const key = `${e.conv}|${e.user}|${e.upTo}`;
    if (!receipts.has(key)) receipts.set(key, e.pos);
  }
  for (const [d, device] of ix.devices) {
    const timeline = ix.timelines.get(d) ?? [];
    const user = device.user;
    const convs = new Map<string, ConvState>();
    const seenNotifications = new Set<string>();
    const state = (conv: string): ConvState | undefined => convs.get(conv);
    for (const [i, e] of timeline.entries()) {
      switch (e.k) {
        case 'resumed':
          for (const c of e.truncated) {
            const s = state(c);
            if (s) s.allowGap = true;
            else convs.set(c, { last: Number.NEGATIVE_INFINITY, allowGap: true });
          }
          break;
        case 'ev': {
          order.checked++;
          nonMembers.checked++;
          if (!memberAtSeq(ix, e.conv, user, e.seq)) {
            nonMembers.violation(`${d} (${user}) got seq ${e.seq} of ${e.conv}, not a member then`, () => [
              ...around(timeline, i, e.conv),
              ...(ix.streams.get(`conversation-${e.conv}`) ?? []).filter(
                (l) => l.user === user || l.rev === e.seq,
              ),
            ]);
          }
          const logged = eventAt(ix, e.conv, e.seq);
          if (!logged || logged.id !== e.id) {
            order.violation(
              logged
                ? `${d} got event ${e.id} as seq ${e.seq} of ${e.conv}; the log has ${logged.id} there`
                : `${d} got seq ${e.seq} of ${e.conv}, which is not in the log`,
              () => [...around(timeline, i, e.conv), ...(logged ? [logged] : [])],
            );
          }
          const s = state(e.conv);
          if (!s || s.last === Number.NEGATIVE_INFINITY) {
            const start = (ix.members.get(e.conv)?.get(user) ?? []).find(
              (m) => m.fromSeq <= e.seq && (m.toSeq === undefined || e.seq <= m.toSeq),
            );
            if (start && e.seq !== start.fromSeq && !s?.allowGap) {
              order.violation(
                `${d} first saw ${e.conv} at seq ${e.seq}; its membership starts at seq ${start.fromSeq}`,
                () => around(timeline, i, e.conv),
              );
            }
          } else if (e.seq <= s.last) {
            order.violation(`${d} got seq ${e.seq} of ${e.conv} after seq ${s.last} (duplicate)`, () =>
              around(timeline, i, e.conv),
            );
          } else if (e.seq > s.last + 1 && !s.allowGap) {
            order.violation(`${d} got seq ${e.seq} of ${e.conv} after seq ${s.last} (gap)`, () =>
              around(timeline, i, e.conv),
            );
          }
          convs.set(e.conv, { last: Math.max(s?.last ?? Number.NEGATIVE_INFINITY, e.seq), allowGap: false });
          break;
        }
        case 'notif': {
          nonMembers.checked++;
          notifications.checked++;
          if (seenNotifications.has(e.nid)) {
            notifications.violation(`${d} got notification ${e.nid} twice`, () =>
              around(timeline, i, e.conv),
            );
          }
          seenNotifications.add(e.nid);
          const message = ix.messages.get(messageKey(e.conv, e.mid))?.[0];
          if (!message) {
            nonMembers.violation(
              `${d} got a notification for message ${e.mid}, which is not in the log`,
              () => around(timeline, i, e.conv),
            );
          } else if (!memberAtSeq(ix, e.conv, user, message.rev)) {
            nonMembers.violation(
              `${d} (${user}) got a notification for seq ${message.rev} of ${e.conv}, not a member then`,
              () => [...around(timeline, i, e.conv), message],
            );
          }
          break;
        }
        case 'receipt': {
          nonMembers.checked++;
          const pos = receipts.get(`${e.conv}|${e.user}|${e.readSeq}`);
          if (pos !== undefined && !memberAtPosition(ix, e.conv, user, pos)) {
            nonMembers.violation(
              `${d} (${user}) got ${e.user}'s receipt of ${e.conv} (log position ${pos}), not a member then`,
              () => around(timeline, i, e.conv),
            );
          }
          break;
        }
        case 'conn':
        case 'connfail':
        case 'open':
        case 'resume':
        case 'close':
          break;
        default: {
          const never: never = e;
          throw new Error(`unexpected timeline entry ${JSON.stringify(never)}`);
        }
      }
    }
    for (const [conv, members] of ix.members) {
      if (!members.has(user) || !memberAtEnd(ix, conv, user)) continue;
      caughtUp.checked++;
      const last = ix.lastSeq.get(conv) ?? -1;
      const seen = convs.get(conv)?.last ?? -1;
      if (seen < last) {
        caughtUp.violation(`${d} (${user}) ended at seq ${seen} of ${conv}, whose last seq is ${last}`, () =>
          around(timeline, timeline.length - 1, conv),
        );
      }
    }
  }
  return [order, caughtUp, nonMembers, notifications];
};
