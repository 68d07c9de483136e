import type { EventData } from '@chat/events';
import { initialModerationState, type ModerationState } from './moderation.js';

/**
 * Where an event landed: its `seq` (conversation streams) or revision, and its global log position.
 * Every record an event leaves in the state shares the event's one `Recorded`, so the writer can fill in
 * the position of an event it folded before the store confirmed it, and answers read it from there.
 */
export type Recorded = { seq: number; position: string };

export type MessageRecord = {
  at: Recorded;
  senderId: string;
  /** The body as first sent, kept only inside the idempotency window (null once it slides out). */
  sentBody: string | null;
  replyTo: string | null;
  /** The thread root this message replies in; null on the main timeline. */
  threadRootId: string | null;
  /**
   * For a thread root: its author, then every replier in the order of their first reply (null until the
   * first reply). Carried on each reply so the notifier reaches the thread's participants.
   */
  threadParticipants: string[] | null;
  sentAt: string;
  deleted: Recorded | null;
  /**
   * reaction → user → whether they have it and the event that last changed that (null until the first
   * reaction): a repeat answers with it, a removal of one never added with the message itself.
   */
  reactions: Map<string, Map<string, { present: boolean; at: Recorded }>> | null;
};

/** A member: where they joined (the conversation's start for its initial members). */
export type MemberRecord = Recorded;

/**
 * What the command side must know about one conversation to decide: the conversation stream folded
 * together with its receipts and typing streams (they are decided under the same lock).
 */
export type ConversationState = {
  started: (EventData<'ConversationStarted'> & { at: Recorded }) | null;
  /** seq of the conversation stream's last event; -1 before it exists. */
  lastSeq: number;
  members: Map<string, MemberRecord>;
  messages: Map<string, MessageRecord>;
  /** messageIds whose body is still kept for idempotency checks, oldest first. */
  idempotencyWindow: string[];
  /** Read watermark per current member (receipts, own sends and the join seq). */
  readWatermarks: Map<string, number>;
  /** Time (ms since epoch) of each user's last TypingStarted. */
  lastTypingAt: Map<string, number>;
  /** Moderation (issue 16): admins, the last role change per user and bans (moderation.ts). */
  moderation: ModerationState;
};

export const initialState = (): ConversationState => ({
  started: null,
  lastSeq: -1,
  members: new Map(),
  messages: new Map(),
  idempotencyWindow: [],
  readWatermarks: new Map(),
  lastTypingAt: new Map(),
  moderation: initialModerationState(),
});

/** API.md §2.2: idempotency holds for at least the last 1,000 messages and at least 24 hours. */
export const IDEMPOTENCY_MIN_MESSAGES = 1000;
export const IDEMPOTENCY_MIN_AGE_MS = 24 * 60 * 60 * 1000;

/** API.md §2.3: at most one typing event per user per conversation per 3 s. */
export const TYPING_THROTTLE_MS = 3000;
