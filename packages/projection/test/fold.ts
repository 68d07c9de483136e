import type { Conversation, Message, NotificationLevel } from '@chat/events';
import { parseStreamId, preview, startingMembers } from '@chat/events';
import type { RecordedEvent } from '@chat/eventstore';

// The plain fold the read models must equal: every answer recomputed from the whole log by the
// definitions in API.md §2.4, with no counters or shortcuts.

type FoldConversation = {
  id: string;
  kind: 'direct' | 'group';
  title: string | null;
  createdBy: string;
  createdAt: string;
  lastSeq: number;
  lastActivityAt: string;
  members: string[];
  readSeq: Map<string, number>;
  messages: Message[];
  /** messageId → reaction → user → seq of the add that gave it to them (present reactions only). */
  reactions: Map<string, Map<string, Map<string, number>>>;
  /** Members the owner made admins. */
  admins: Set<string>;
};

/** Bans, reports and blocks as the moderation tables must hold them (rows as `pg` returns them). */
export type FoldModeration = {
  bans: { conversation_id: string; user_id: string; banned_by: string; banned_at: Date; seq: number }[];
  reports: Map<string, Record<string, unknown>>;
  blocks: Map<string, { user_id: string; blocked_user_id: string; blocked_at: Date }>;
};

export type Fold = {
  conversations: Map<string, FoldConversation>;
  mutes: Map<string, string | null>;
  /** The level each user last set per conversation (`conversationId|userId`). */
  levels: Map<string, NotificationLevel>;
  moderation: FoldModeration;
};

const s = (v: unknown): string => String(v);

export const fold = (events: readonly RecordedEvent[]): Fold => {
  const conversations = new Map<string, FoldConversation>();
  const mutes = new Map<string, string | null>();
  const levels = new Map<string, NotificationLevel>();
  const bans = new Map<string, FoldModeration['bans'][number]>();
  const reports: FoldModeration['reports'] = new Map();
  const blocks: FoldModeration['blocks'] = new Map();
  for (const e of events) {
    const d = e.data;
    const stream = parseStreamId(e.streamId);
    if (e.type === 'UserBlocked' || e.type === 'UserUnblocked') {
      const key = `${s(d.userId)}|${s(d.blockedUserId)}`;
      if (e.type === 'UserUnblocked') blocks.delete(key);
      else
        blocks.set(key, {
          user_id: s(d.userId),
          blocked_user_id: s(d.blockedUserId),
          blocked_at: new Date(s(d.at)),
        });
      continue;
    }
    if (e.type === 'MessageReported') {
      reports.set(s(d.reportId), {
        report_id: s(d.reportId),
        conversation_id: s(d.conversationId),
        message_id: s(d.messageId),
        message_sender_id: s(d.messageSenderId),
        reporter_id: s(d.reporterId),
        reason: s(d.reason),
        reported_at: new Date(s(d.reportedAt)),
        status: 'open',
        resolved_by: null,
        resolved_at: null,
        action: null,
        note: null,
      });
      continue;
    }
    if (e.type === 'ReportResolved') {
      const r = reports.get(s(d.reportId));
      if (r)
        Object.assign(r, {
          status: 'resolved',
          resolved_by: s(d.resolvedBy),
          resolved_at: new Date(s(d.resolvedAt)),
          action: s(d.action),
          note: d.note === null ? null : s(d.note),
        });
      continue;
    }
    if (e.type === 'ConversationMuted') {
      mutes.set(
        `${s(d.conversationId)}|${s(d.userId)}`,
        d.until === null ? null : new Date(s(d.until)).toISOString(),
      );
      continue;
    }
    if (e.type === 'NotificationLevelSet') {
      levels.set(`${s(d.conversationId)}|${s(d.userId)}`, d.level as NotificationLevel);
      continue;
    }
    if (e.type === 'ConversationRead') {
      const c = conversations.get(s(d.conversationId));
      const current = c?.readSeq.get(s(d.userId));
      if (c && current !== undefined && Number(d.upToSeq) > current)
        c.readSeq.set(s(d.userId), Number(d.upToSeq));
      continue;
    }
    if (stream?.category !== 'conversation') continue;
    if (e.type === 'ConversationStarted') {
      const members = startingMembers({ createdBy: s(d.createdBy), members: d.members as string[] });
      conversations.set(stream.id, {
        id: stream.id,
        kind: d.kind === 'direct' ? 'direct' : 'group',
        title: d.title === null ? null : s(d.title),
        createdBy: s(d.createdBy),
        createdAt: e.occurredAt,
        lastSeq: e.revision,
        lastActivityAt: e.occurredAt,
        members,
        readSeq: new Map(members.map((u) => [u, e.revision])),
        messages: [],
        reactions: new Map(),
        admins: new Set(),
      });
      continue;
    }
    const c = conversations.get(stream.id);
    if (!c) continue;
    c.lastSeq = e.revision;
    c.lastActivityAt = e.occurredAt;
    switch (e.type) {
      case 'MemberJoined':
        if (!c.members.includes(s(d.userId))) {
          c.members.push(s(d.userId));
          c.readSeq.set(s(d.userId), e.revision);
        }
        break;
      case 'MemberLeft':
        c.members = c.members.filter((u) => u !== s(d.userId));
        c.admins.delete(s(d.userId));
        c.readSeq.delete(s(d.userId));
        break;
      case 'MessageSent': {
        c.messages.push({
          messageId: s(d.messageId),
          conversationId: c.id,
          seq: e.revision,
          senderId: s(d.senderId),
          body: d.body === null ? null : s(d.body),
          erased: d.body === null,
          replyTo: d.replyTo === null ? null : s(d.replyTo),
          sentAt: new Date(s(d.sentAt)).toISOString(),
          editedAt: null,
          deleted: false,
          deletedBy: null,
          reactions: [],
          threadRootId: d.threadRootId === undefined ? null : s(d.threadRootId),
          replyCount: 0,
          lastReplyAt: null,
          threadParticipantIds: [],
        });
        const own = c.readSeq.get(s(d.senderId));
        if (own !== undefined && e.revision > own) c.readSeq.set(s(d.senderId), e.revision);
        break;
      }
      case 'MessageEdited': {
        const m = c.messages.find((x) => x.messageId === s(d.messageId));
        if (m && !m.deleted) {
          m.body = s(d.body);
          m.editedAt = new Date(s(d.editedAt)).toISOString();
        }
        break;
      }
      case 'MessageDeleted': {
        const m = c.messages.find((x) => x.messageId === s(d.messageId));
        if (m && !m.deleted) {
          m.deleted = true;
          m.deletedBy = s(d.deletedBy);
          m.body = null;
        }
        break;
      }
      case 'MemberRoleChanged':
        if (!c.members.includes(s(d.userId))) break;
        if (d.role === 'admin') c.admins.add(s(d.userId));
        else c.admins.delete(s(d.userId));
        break;
      case 'MemberBanned':
        bans.set(`${c.id}|${s(d.userId)}`, {
          conversation_id: c.id,
          user_id: s(d.userId),
          banned_by: s(d.bannedBy),
          banned_at: new Date(s(d.at)),
          seq: e.revision,
        });
        break;
      case 'MemberUnbanned':
        bans.delete(`${c.id}|${s(d.userId)}`);
        break;
      case 'ReactionAdded':
      case 'ReactionRemoved': {
        const byReaction = c.reactions.get(s(d.messageId)) ?? new Map<string, Map<string, number>>();
        c.reactions.set(s(d.messageId), byReaction);
        const users = byReaction.get(s(d.reaction)) ?? new Map<string, number>();
        byReaction.set(s(d.reaction), users);
        if (e.type === 'ReactionRemoved') users.delete(s(d.userId));
        else if (!users.has(s(d.userId))) users.set(s(d.userId), e.revision);
        break;
      }
    }
  }
  // Thread counters by their definition: the replies naming the root (tombstones included), the newest
  // one's time, and the three most recent distinct repliers.
  for (const c of conversations.values()) {
    for (const root of c.messages) {
      const replies = c.messages.filter((m) => m.threadRootId === root.messageId);
      root.replyCount = replies.length;
      root.lastReplyAt = replies.at(-1)?.sentAt ?? null;
      root.threadParticipantIds = [...new Set(replies.map((m) => m.senderId).reverse())].slice(0, 3);
    }
  }
  // Message.reactions by API.md §2.2.1: ordered by first use, the first 20 users by time, none once deleted.
  for (const c of conversations.values()) {
    for (const m of c.messages) {
      const byReaction = m.deleted ? undefined : c.reactions.get(m.messageId);
      m.reactions = [...(byReaction ?? [])]
        .filter(([, users]) => users.size > 0)
        .map(([reaction, users]) => {
          const bySeq = [...users].sort((a, b) => a[1] - b[1]);
          return {
            first: bySeq[0]?.[1] ?? 0,
            reaction,
            count: users.size,
            userIds: bySeq.slice(0, 20).map(([u]) => u),
          };
        })
        .sort((a, b) => a.first - b.first)
        .map(({ first: _, ...summary }) => summary);
    }
  }
  const moderation = {
    bans: [...bans.values()].sort((a, b) =>
      a.conversation_id !== b.conversation_id
        ? a.conversation_id < b.conversation_id
          ? -1
          : 1
        : a.user_id < b.user_id
          ? -1
          : 1,
    ),
    reports,
    blocks,
  };
  return { conversations, mutes, levels, moderation };
};

/** The Conversation a member sees; undefined for non-members. */
export const expectedConversation = (
  f: Fold,
  conversationId: string,
  userId: string,
): Conversation | undefined => {
  const c = f.conversations.get(conversationId);
  const readSeq = c?.readSeq.get(userId);
  if (!c || readSeq === undefined) return undefined;
  const last = c.messages.at(-1);
  return {
    conversationId: c.id,
    kind: c.kind,
    title: c.title,
    createdBy: c.createdBy,
    members: [...c.members],
    createdAt: c.createdAt,
    lastActivityAt: c.lastActivityAt,
    lastSeq: c.lastSeq,
    readSeq,
    unreadCount: c.messages.filter((m) => m.senderId !== userId && !m.deleted && m.seq > readSeq).length,
    mutedUntil: f.mutes.get(`${c.id}|${userId}`) ?? null,
    notificationLevel: f.levels.get(`${c.id}|${userId}`) ?? (c.kind === 'direct' ? 'all' : 'mentions'),
    lastMessage: last
      ? {
          messageId: last.messageId,
          senderId: last.senderId,
          preview: last.deleted ? '' : last.body === null ? null : preview(last.body),
          sentAt: last.sentAt,
          seq: last.seq,
          deleted: last.deleted,
          erased: !last.deleted && last.body === null,
        }
      : null,
    admins: [...c.admins].sort(),
  };
};

/** The user's conversations in list order: lastActivityAt desc, then conversationId desc. */
export const expectedList = (f: Fold, userId: string): Conversation[] =>
  [...f.conversations.keys()]
    .flatMap((id) => expectedConversation(f, id, userId) ?? [])
    .sort((a, b) =>
      a.lastActivityAt !== b.lastActivityAt
        ? a.lastActivityAt < b.lastActivityAt
          ? 1
          : -1
        : a.conversationId < b.conversationId
          ? 1
          : -1,
    );

export const expectedUnread = (f: Fold, userId: string): { total: number; conversations: number } => {
  const list = expectedList(f, userId);
  return {
    total: list.reduce((n, c) => n + c.unreadCount, 0),
    conversations: list.filter((c) => c.unreadCount > 0).length,
  };
};
