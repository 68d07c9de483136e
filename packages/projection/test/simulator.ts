import { randomUUID } from 'node:crypto';
import {
  conversationStream,
  type EventData,
  type EventType,
  receiptsStream,
  reportStream,
  userStream,
} from '@chat/events';
import type { EventStore, NewEvent } from '@chat/eventstore';
import { type Rng, seeded } from '@chat/testkit';

// A stand-in for the command handlers: it keeps just enough state to emit only events a correct
// handler would (members send, senders edit, reads never move backwards past the end, ...).

type SimConversation = {
  id: string;
  kind: 'direct' | 'group';
  createdBy: string;
  revision: number;
  members: Set<string>;
  everMembers: Set<string>;
  messages: {
    id: string;
    senderId: string;
    deleted: boolean;
    seq: number;
    reactions: Map<string, Set<string>>;
    threadRootId: string | null;
    /** For a thread root: its author, then each replier in the order of their first reply. */
    participants: string[];
  }[];
  readSeq: Map<string, number>;
  receiptsRevision: number;
  /** Moderation (issue 16): the admins and the users banned now. */
  admins: Set<string>;
  banned: Set<string>;
};

export type SimCommand = { streamId: string; events: NewEvent[]; expected: number | 'no_stream' | 'any' };

const event = <T extends EventType>(type: T, data: EventData<T>, userId: string): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { userId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

export class ChatSimulator {
  readonly users: string[];
  readonly conversations: SimConversation[] = [];
  readonly userRevisions = new Map<string, number>();
  /** Reports filed (open ones have no action yet) and blocks in force, by blocker. */
  readonly reports: { id: string; conversationId: string; messageId: string; resolved: boolean }[] = [];
  readonly blocks = new Map<string, Set<string>>();
  private readonly rng: Rng;
  private clock = Date.parse('2026-01-01T00:00:00.000Z');

  constructor(options: { users: number; seed: number }) {
    this.rng = seeded(options.seed);
    // Ids include the characters NATS subjects and SQL must cope with.
    this.users = Array.from({ length: options.users }, (_, i) => (i % 7 === 3 ? `u.${i}@x` : `u${i}`));
  }

  private pick<T>(xs: readonly T[]): T {
    const x = xs[Math.floor(this.rng() * xs.length)];
    if (x === undefined) throw new Error('pick from empty list');
    return x;
  }

  private now(): string {
    this.clock += 1 + Math.floor(this.rng() * 1000);
    return new Date(this.clock).toISOString();
  }

  private body(): string {
    // With the characters COPY's text format escapes (a replay writes new messages with COPY).
    const words = [
      'hi',
      'ok',
      'lunch?',
      '🎉',
      'ship it',
      'ça va',
      '@u1',
      'x'.repeat(150),
      'done',
      'a\tb\nc \\N\r',
    ];
    const n = 1 + Math.floor(this.rng() * 4);
    return Array.from({ length: n }, () => this.pick(words)).join(' ');
  }

  startConversation(): SimCommand {
    const createdBy = this.pick(this.users);
    const kind = this.rng() < 0.2 ? 'direct' : 'group';
    const size = kind === 'direct' ? 1 : 1 + Math.floor(this.rng() * 8);
    const members = new Set<string>([createdBy]);
    while (members.size < size + 1) members.add(this.pick(this.users));
    const id = randomUUID();
    const c: SimConversation = {
      id,
      kind,
      createdBy,
      revision: 0,
      members,
      everMembers: new Set(members),
      messages: [],
      readSeq: new Map([...members].map((u) => [u, 0])),
      receiptsRevision: -1,
      admins: new Set(),
      banned: new Set(),
    };
    this.conversations.push(c);
    return {
      streamId: conversationStream(id),
      expected: 'no_stream',
      events: [
        event(
          'ConversationStarted',
          {
            conversationId: id,
            kind,
            title: kind === 'group' ? `group ${this.conversations.length}` : null,
            createdBy,
            members: [...members],
          },
          createdBy,
        ),
      ],
    };
  }

  /**
   * A moderation command on `c` (issue 16): role changes, bans of non-members, unbans, a moderator's
   * delete, reports and their resolutions, blocks. Undefined when the draw allows none.
   */
  private moderate(
    c: SimConversation,
    member: string,
    alive: SimConversation['messages'],
    append: Append,
  ): SimCommand | undefined {
    const at = this.now();
    const kind = this.rng();
    if (kind < 0.2 && c.kind === 'group') {
      const others = [...c.members].filter((u) => u !== c.createdBy);
      if (others.length === 0) return undefined;
      const userId = this.pick(others);
      const role = c.admins.has(userId) ? 'member' : 'admin';
      if (role === 'admin') c.admins.add(userId);
      else c.admins.delete(userId);
      return append(
        'MemberRoleChanged',
        { conversationId: c.id, userId, role, changedBy: c.createdBy },
        c.createdBy,
      );
    }
    if (kind < 0.35 && c.kind === 'group') {
      const candidates = this.users.filter((u) => !c.members.has(u) && !c.banned.has(u));
      if (candidates.length === 0) return undefined;
      const userId = this.pick(candidates);
      c.banned.add(userId);
      return append('MemberBanned', { conversationId: c.id, userId, bannedBy: c.createdBy, at }, c.createdBy);
    }
    if (kind < 0.45 && c.banned.size > 0) {
      const userId = this.pick([...c.banned]);
      c.banned.delete(userId);
      return append(
        'MemberUnbanned',
        { conversationId: c.id, userId, unbannedBy: c.createdBy, at },
        c.createdBy,
      );
    }
    if (kind < 0.55 && c.kind === 'group') {
      // A moderator (the owner) deletes someone's message.
      if (alive.length === 0) return undefined;
      const m = this.pick(alive);
      m.deleted = true;
      return append(
        'MessageDeleted',
        { conversationId: c.id, messageId: m.id, deletedBy: c.createdBy, deletedAt: at },
        c.createdBy,
      );
    }
    if (kind < 0.75) {
      if (alive.length === 0) return undefined;
      const m = this.pick(alive);
      const reportId = randomUUID();
      this.reports.push({ id: reportId, conversationId: c.id, messageId: m.id, resolved: false });
      return {
        streamId: reportStream(reportId),
        expected: 'no_stream',
        events: [
          event(
            'MessageReported',
            {
              reportId,
              conversationId: c.id,
              messageId: m.id,
              messageSenderId: m.senderId,
              reporterId: member,
              reason: this.pick(['spam', 'abuse', 'ça suffit', 'x'.repeat(300)]),
              reportedAt: at,
            },
            member,
          ),
        ],
      };
    }
    if (kind < 0.85) {
      const open = this.reports.filter((x) => !x.resolved);
      if (open.length === 0) return undefined;
      const report = this.pick(open);
      report.resolved = true;
      const action = this.pick(['dismissed', 'removed'] as const);
      return {
        streamId: reportStream(report.id),
        expected: 0,
        events: [
          event(
            'ReportResolved',
            {
              reportId: report.id,
              conversationId: report.conversationId,
              messageId: report.messageId,
              resolvedBy: 'moderator',
              action,
              note: this.rng() < 0.5 ? null : 'handled',
              resolvedAt: at,
            },
            'moderator',
          ),
        ],
      };
    }
    const blocked = this.blocks.get(member) ?? new Set<string>();
    this.blocks.set(member, blocked);
    const target = this.pick(this.users.filter((u) => u !== member));
    const type = blocked.has(target) ? 'UserUnblocked' : 'UserBlocked';
    if (type === 'UserBlocked') blocked.add(target);
    else blocked.delete(target);
    return {
      streamId: userStream(member),
      expected: 'any',
      events: [event(type, { userId: member, blockedUserId: target, at }, member)],
    };
  }

  /** One random command against a random conversation (other than those in `busy`). */
  next(busy: ReadonlySet<string> = new Set()): SimCommand | undefined {
    const free = this.conversations.filter((c) => !busy.has(c.id));
    if (free.length === 0) return undefined;
    const c = this.pick(free);
    const r = this.rng();
    const member = this.pick([...c.members]);
    const append = (type: EventType, data: Record<string, unknown>, userId: string): SimCommand => {
      const expected = c.revision;
      c.revision += 1;
      return {
        streamId: conversationStream(c.id),
        expected,
        events: [event(type, data as EventData<typeof type>, userId)],
      };
    };
    const alive = c.messages.filter((m) => !m.deleted);
    // Moderation and blocks, one command in twelve, drawn before the rest so a seed's other
    // commands keep their mix.
    if (this.rng() < 1 / 12) {
      const moderation = this.moderate(c, member, alive, append);
      if (moderation) return moderation;
    }
    if (r < 0.5 || c.messages.length === 0) {
      const messageId = randomUUID();
      const replyTo = c.messages.length > 0 && this.rng() < 0.2 ? this.pick(c.messages).id : null;
      // A third of the messages reply in a thread of a live main-timeline message, as the decider allows.
      const roots = alive.filter((m) => m.threadRootId === null);
      const root = roots.length > 0 && this.rng() < 0.33 ? this.pick(roots) : undefined;
      const thread = root
        ? {
            threadRootId: root.id,
            threadParticipantIds: root.participants.length > 0 ? [...root.participants] : [root.senderId],
          }
        : {};
      const cmd = append(
        'MessageSent',
        {
          conversationId: c.id,
          messageId,
          senderId: member,
          body: this.body(),
          replyTo,
          sentAt: this.now(),
          ...thread,
        },
        member,
      );
      if (root) {
        if (root.participants.length === 0) root.participants.push(root.senderId);
        if (!root.participants.includes(member)) root.participants.push(member);
      }
      c.messages.push({
        id: messageId,
        senderId: member,
        deleted: false,
        seq: c.revision,
        reactions: new Map(),
        threadRootId: root?.id ?? null,
        participants: [],
      });
      c.readSeq.set(member, c.revision);
      return cmd;
    }
    if (r < 0.58) {
      // A reaction taken or, when the member has it, taken back (as the decider allows: live messages).
      if (alive.length === 0) return this.next(busy);
      const m = this.pick(alive);
      const reaction = this.pick(['👍', '🎉', 'thumbsup', '👨‍👩‍👧']);
      const users = m.reactions.get(reaction) ?? new Set<string>();
      m.reactions.set(reaction, users);
      const data = { conversationId: c.id, messageId: m.id, userId: member, reaction, at: this.now() };
      if (users.has(member)) {
        users.delete(member);
        return append('ReactionRemoved', data, member);
      }
      users.add(member);
      return append('ReactionAdded', { ...data, messageSenderId: m.senderId }, member);
    }
    if (r < 0.64) {
      const own = alive.filter((m) => c.members.has(m.senderId));
      if (own.length === 0) return this.next(busy);
      const m = this.pick(own);
      return append(
        'MessageEdited',
        {
          conversationId: c.id,
          messageId: m.id,
          editorId: m.senderId,
          body: this.body(),
          editedAt: this.now(),
        },
        m.senderId,
      );
    }
    if (r < 0.69) {
      const own = alive.filter((m) => c.members.has(m.senderId));
      if (own.length === 0) return this.next(busy);
      const m = this.pick(own);
      m.deleted = true;
      return append(
        'MessageDeleted',
        { conversationId: c.id, messageId: m.id, deletedBy: m.senderId, deletedAt: this.now() },
        m.senderId,
      );
    }
    if (r < 0.84) {
      const current = c.readSeq.get(member) ?? 0;
      if (current >= c.revision) return this.next(busy);
      const upToSeq = current + 1 + Math.floor(this.rng() * (c.revision - current));
      c.readSeq.set(member, upToSeq);
      c.receiptsRevision += 1;
      return {
        streamId: receiptsStream(c.id),
        expected: 'any',
        events: [
          event(
            'ConversationRead',
            { conversationId: c.id, userId: member, upToSeq, readAt: this.now() },
            member,
          ),
        ],
      };
    }
    if (r < 0.9 && c.kind === 'group') {
      const outsiders = this.users.filter((u) => !c.members.has(u));
      if (outsiders.length === 0) return this.next(busy);
      const userId = this.pick(outsiders);
      if (c.banned.has(userId)) return this.next(busy);
      const cmd = append('MemberJoined', { conversationId: c.id, userId, addedBy: member }, member);
      c.members.add(userId);
      c.everMembers.add(userId);
      c.readSeq.set(userId, c.revision);
      return cmd;
    }
    if (r < 0.94 && c.members.size > 1) {
      const userId = this.rng() < 0.5 ? member : this.pick([...c.members]);
      const by = userId === member ? member : c.createdBy;
      const cmd = append('MemberLeft', { conversationId: c.id, userId, removedBy: by }, by);
      c.members.delete(userId);
      c.admins.delete(userId);
      c.readSeq.delete(userId);
      return cmd;
    }
    const rev = this.userRevisions.get(member) ?? -1;
    this.userRevisions.set(member, rev + 1);
    if (r >= 0.97) {
      const level = this.pick(['all', 'mentions', 'none'] as const);
      return {
        streamId: userStream(member),
        expected: 'any',
        events: [event('NotificationLevelSet', { conversationId: c.id, userId: member, level }, member)],
      };
    }
    const until =
      this.rng() < 0.3
        ? null
        : new Date(this.clock + 3_600_000 * (1 + Math.floor(this.rng() * 48))).toISOString();
    return {
      streamId: userStream(member),
      expected: 'any',
      events: [event('ConversationMuted', { conversationId: c.id, userId: member, until }, member)],
    };
  }
}

/** The events of moderation commands, as the decider would decide them (see moderation.ts there). */
export type Append = (type: EventType, data: Record<string, unknown>, userId: string) => SimCommand;

/**
 * Runs `count` random commands against the store: conversations first, then rounds of commands on
 * distinct conversations appended concurrently (order within a round does not matter, across rounds it
 * does, as it would for a real handler that decides on committed state).
 */
export const simulate = async (
  store: EventStore,
  sim: ChatSimulator,
  options: { conversations: number; commands: number; concurrency?: number },
): Promise<string> => {
  let last = '';
  const run = async (cmds: SimCommand[]) => {
    const results = await Promise.all(cmds.map((c) => store.append(c.streamId, c.events, c.expected)));
    for (const r of results) if (r.position > last) last = r.position;
  };
  const starts = Array.from({ length: options.conversations }, () => sim.startConversation());
  await run(starts);
  let done = 0;
  const width = options.concurrency ?? 16;
  while (done < options.commands) {
    const busy = new Set<string>();
    const round: SimCommand[] = [];
    while (round.length < width && done + round.length < options.commands) {
      const cmd = sim.next(busy);
      if (!cmd) break;
      const conversationId = String(cmd.events[0]?.data.conversationId);
      busy.add(conversationId);
      round.push(cmd);
    }
    await run(round);
    done += round.length;
  }
  return last;
};
