import type { ConversationEnvelope, Message, ReactionSummary } from '@chat/events';

export type ThreadMessage = Message;

/** How many users a reaction lists (API.md §2.2.1: the first 20 by time). */
const REACTION_USERS = 20;
/** How many recent thread participants a root lists (README, threads). */
const THREAD_PARTICIPANTS = 3;

/**
 * The messages of one conversation as the page shows them: pages from `GET .../messages` merged with
 * live events, each message once, in seq order. Live events may arrive before the page that holds the
 * same message (or after it): a message is keyed by its id, and an edit or delete is never undone by
 * a page read from a read model that had not applied it yet.
 */
export class Thread {
  #messages: ThreadMessage[] = [];
  readonly #byId = new Map<string, ThreadMessage>();
  /** The newest page has been loaded (before that, only live messages are known). */
  loaded = false;
  /** Older messages exist beyond the oldest loaded one. */
  hasOlder = false;

  get messages(): readonly ThreadMessage[] {
    return this.#messages;
  }

  get(messageId: string): ThreadMessage | undefined {
    return this.#byId.get(messageId);
  }

  /** The seq to page back from (`before`), or undefined when nothing is loaded. */
  get oldestSeq(): number | undefined {
    return this.#messages[0]?.seq;
  }

  /** Merges a page: `newest` (the first load) or `older` (scrolling up). */
  addPage(items: readonly Message[], hasMore: boolean, kind: 'newest' | 'older'): void {
    for (const m of items) this.#merge({ ...m, reactions: [...m.reactions] });
    if (kind === 'newest') {
      this.loaded = true;
      this.hasOlder = hasMore;
    } else this.hasOlder = hasMore;
    this.#sort();
  }

  /** Applies a live conversation event (the SDK delivers them once each, in seq order). */
  apply(event: ConversationEnvelope): void {
    switch (event.type) {
      case 'MessageSent': {
        const d = event.data;
        this.#merge({
          messageId: d.messageId,
          conversationId: d.conversationId,
          seq: event.revision,
          senderId: d.senderId,
          body: d.body,
          erased: d.body === null,
          replyTo: d.replyTo,
          sentAt: d.sentAt,
          editedAt: null,
          deleted: false,
          threadRootId: d.threadRootId ?? null,
          replyCount: 0,
          lastReplyAt: null,
          threadParticipantIds: [],
          reactions: [],
        });
        this.#sort();
        return;
      }
      case 'MessageEdited': {
        const m = this.#byId.get(event.data.messageId);
        if (m && !m.deleted)
          this.#replace({
            ...m,
            body: event.data.body,
            erased: event.data.body === null,
            editedAt: event.data.editedAt,
          });
        return;
      }
      case 'MessageDeleted': {
        const m = this.#byId.get(event.data.messageId);
        if (m) this.#replace({ ...m, deleted: true, body: null, reactions: [] });
        return;
      }
      case 'ConversationStarted':
      case 'MemberJoined':
      case 'MemberLeft':
        return;
      case 'ReactionAdded':
      case 'ReactionRemoved': {
        const { messageId, userId, reaction } = event.data;
        const m = this.#byId.get(messageId);
        if (!m) return;
        const reactions =
          event.type === 'ReactionAdded'
            ? addReaction(m.reactions, reaction, userId)
            : removeReaction(m.reactions, reaction, userId);
        this.#replace({ ...m, reactions });
        return;
      }
      default:
        // Event types of later contract versions arrive before this build knows them.
        return;
    }
  }

  /**
   * Counts a live thread reply on its root (the main timeline shows replies only as this count).
   * A root not loaded yet is left alone: the page that brings it carries the count.
   */
  noteReply(rootId: string, reply: { senderId: string; sentAt: string }): void {
    const root = this.#byId.get(rootId);
    if (!root) return;
    const others = root.threadParticipantIds.filter((u) => u !== reply.senderId);
    this.#replace({
      ...root,
      replyCount: root.replyCount + 1,
      lastReplyAt: root.lastReplyAt && root.lastReplyAt > reply.sentAt ? root.lastReplyAt : reply.sentAt,
      threadParticipantIds: [reply.senderId, ...others].slice(0, THREAD_PARTICIPANTS),
    });
  }

  #merge(incoming: ThreadMessage): void {
    const known = this.#byId.get(incoming.messageId);
    if (!known) {
      this.#byId.set(incoming.messageId, incoming);
      this.#messages.push(incoming);
      return;
    }
    // Deletion is final and edits only move forward in time, whichever copy arrives first.
    const deleted = known.deleted || incoming.deleted;
    const newer = (incoming.editedAt ?? '') > (known.editedAt ?? '') ? incoming : known;
    this.#replace({
      ...known,
      deleted,
      body: deleted ? null : newer.body,
      editedAt: newer.editedAt,
      reactions: deleted ? [] : incoming.reactions.length > 0 ? incoming.reactions : known.reactions,
      // Counters only grow: a page from a lagging read model does not undo replies seen live.
      ...(incoming.replyCount > known.replyCount ? pickThreadSummary(incoming) : {}),
    });
  }

  #replace(message: ThreadMessage): void {
    this.#byId.set(message.messageId, message);
    this.#messages = this.#messages.map((m) => (m.messageId === message.messageId ? message : m));
  }

  #sort(): void {
    this.#messages = [...this.#messages].sort((a, b) => a.seq - b.seq);
  }
}

const pickThreadSummary = (m: ThreadMessage) => ({
  replyCount: m.replyCount,
  lastReplyAt: m.lastReplyAt,
  threadParticipantIds: m.threadParticipantIds,
});

const addReaction = (list: ReactionSummary[], reaction: string, userId: string): ReactionSummary[] => {
  const found = list.find((r) => r.reaction === reaction);
  if (!found) return [...list, { reaction, count: 1, userIds: [userId] }];
  if (found.userIds.includes(userId)) return list;
  const userIds = found.userIds.length < REACTION_USERS ? [...found.userIds, userId] : found.userIds;
  return list.map((r) => (r === found ? { ...r, count: r.count + 1, userIds } : r));
};

const removeReaction = (list: ReactionSummary[], reaction: string, userId: string): ReactionSummary[] =>
  list
    .map((r) =>
      // The server appends a removal only for a reaction the user had (API.md §2.2.1).
      r.reaction === reaction
        ? { ...r, count: r.count - 1, userIds: r.userIds.filter((u) => u !== userId) }
        : r,
    )
    .filter((r) => r.count > 0);
