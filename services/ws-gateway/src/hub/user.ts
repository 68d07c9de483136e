import type { Socket } from './types.js';

/** A membership event of one user in one conversation, with its place in the stream and in the log. */
export type MembershipNews = {
  conversationId: string;
  seq: number;
  position: string;
  joined: boolean;
  /** Emitted by this gateway's feed of the conversation (in seq order); else a hint on the user subject. */
  fromFeed: boolean;
};

/** A block between the user and another, as a `block` message on the user subject told it. */
export type BlockNews = {
  position: string;
  otherUserId: string;
  /** The user blocks the other (else the other blocks the user). */
  blocking: boolean;
  /** UserBlocked (else UserUnblocked). */
  blocked: boolean;
};

const BLOCKING = 1;
const BLOCKED_BY = 2;

/** A socket upgraded while its user's conversations were still being read: opened when they are. */
export type WaitingSocket = {
  ws: Socket;
  hello: string;
  /** Frames the client sent before its hello (copies), handled in order once the socket is opened. */
  early: { message: ArrayBuffer; isBinary: boolean }[] | undefined;
};

const NONE: string[] = [];
const NO_SOCKETS: readonly Socket[] = [];
/** Enough for a relay restart's redeliveries; bounded over a long session. */
const LEFT_KEPT = 256;

/**
 * One user with sockets (or upgrades on the way) on this gateway. There is one per idle socket, so it
 * stays small: arrays rather than sets, no collection until one is needed.
 */
export class LocalUser {
  /**
   * Open sockets, oldest first. Replaced, never changed in place: arrays of the exact size (a pushed-to
   * empty array reserves room for 16), and loops over it survive a socket closing meanwhile.
   */
  sockets: readonly Socket[] = NO_SOCKETS;
  /** Conversations the user is a member of; each string is the feed's own. Never mutate from outside. */
  conversations: readonly string[] = NONE;
  /** Verified upgrades not opened yet: the entry must outlive them. */
  upgrading = 0;
  /** The read of the user's conversations, until it is done. */
  load: { readonly done: Promise<void> } | undefined;
  /** Sockets upgraded while the conversations are read (usually none, and then no array). */
  waiting: WaitingSocket[] | undefined;
  /** Membership news that arrives while the conversations are read; applied after, in arrival order. */
  backlog: (MembershipNews | BlockNews)[] | undefined = [];
  /** Log position the conversations were read at: news at or before it is in them already. */
  loadedAt = '';
  /** Presence was told this gateway holds the user (its first socket opened). */
  online = false;
  /** Conversations left while here → seq of the MemberLeft: a MemberJoined at or before it is stale. */
  #left: Map<string, number> | undefined;
  /**
   * Users in a block with this one, either way → BLOCKING | BLOCKED_BY; no map while there is none
   * (most users), so an idle socket pays one field. Presence frames never cross a block.
   */
  #blocks: Map<string, number> | undefined;

  constructor(readonly userId: string) {}

  addSocket(ws: Socket): void {
    this.sockets = this.sockets.length === 0 ? [ws] : [...this.sockets, ws];
  }

  /** False when the socket was not (or no longer) listed. */
  removeSocket(ws: Socket): boolean {
    if (!this.sockets.includes(ws)) return false;
    this.sockets = this.sockets.length === 1 ? NO_SOCKETS : this.sockets.filter((s) => s !== ws);
    return true;
  }

  joined(conversationId: string): void {
    if (this.conversations === NONE) this.conversations = [conversationId];
    else (this.conversations as string[]).push(conversationId);
  }

  leftConversation(conversationId: string): void {
    const i = this.conversations.indexOf(conversationId);
    if (i < 0) return;
    if (this.conversations.length === 1) this.conversations = NONE;
    else (this.conversations as string[]).splice(i, 1);
  }

  rememberLeft(conversationId: string, seq: number): void {
    this.#left ??= new Map();
    this.#left.delete(conversationId);
    this.#left.set(conversationId, seq);
    if (this.#left.size > LEFT_KEPT) this.#left.delete(this.#left.keys().next().value as string);
  }

  setBlock(otherUserId: string, blocking: boolean, blocked: boolean): void {
    const bit = blocking ? BLOCKING : BLOCKED_BY;
    const was = this.#blocks?.get(otherUserId) ?? 0;
    const now = blocked ? was | bit : was & ~bit;
    if (now === was) return;
    if (now !== 0) {
      this.#blocks ??= new Map();
      this.#blocks.set(otherUserId, now);
    } else {
      this.#blocks?.delete(otherUserId);
      if (this.#blocks?.size === 0) this.#blocks = undefined;
    }
  }

  /** Either of the two blocks the other. */
  inBlockWith(otherUserId: string): boolean {
    return this.#blocks?.has(otherUserId) === true;
  }

  leftAt(conversationId: string): number | undefined {
    return this.#left?.get(conversationId);
  }
}
