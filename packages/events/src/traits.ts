import type { z } from 'zod';

// What the system does with an event type besides reading its data: written once per type in
// `eventDefinitions` (events.ts), next to its schema, and read from there by the command-api (the
// stream it appends to), the relay (where it publishes) and the SDK (unread counts). The union says which
// combinations exist, so a new type cannot, say, be relayed as a membership change off a conversation
// stream.

/**
 * How the relay publishes an event of the type on NATS (packages/relay/src/routing.ts):
 * - `conversation`: on the conversation's subject (the stream's id), for the sockets of its members;
 * - `membership`: there, and as a `membership` message on the subject of each user whose membership it
 *   changes (`membersChangedBy`), so that every gateway holding one of their sockets (un)subscribes them;
 * - `block`: only as a `block` control message on both users' subjects (gateways apply it, never
 *   forward it: presence is not revealed across a block either way);
 * - `none`: not published (a user's own settings, reports for moderators only).
 */
export type RelayRoute = 'conversation' | 'membership' | 'block' | 'none';

/**
 * How the SDK's unread counts (packages/client/src/unread.ts, API.md §4) treat an `event` frame of the
 * type; every conversation event moves the conversation's last seq:
 * - `joins` / `leaves`: the user's entry starts (watermark at its seq) / goes when it makes them a
 *   member / removes them (`membersChangedBy`);
 * - `counts`: +1 for everyone but its sender, whose watermark moves to it (`MessageSent`);
 * - `none`: no count changes (a deleted unread message comes with an `unread` frame).
 */
export type UnreadEffect = 'joins' | 'leaves' | 'counts' | 'none';

export type EventTraits =
  | { readonly stream: 'conversation'; readonly relay: 'membership'; readonly unread: 'joins' | 'leaves' }
  | { readonly stream: 'conversation'; readonly relay: 'conversation'; readonly unread: 'counts' | 'none' }
  /** Receipts reach sockets as `receipt` frames, typing as `typing` frames: no `event` frame. */
  | { readonly stream: 'receipts' | 'typing'; readonly relay: 'conversation' }
  | { readonly stream: 'user'; readonly relay: 'block' | 'none' }
  | { readonly stream: 'report'; readonly relay: 'none' };

/** One event type: its data schema (API.md §3) and its traits. */
export type EventDefinition = { readonly data: z.ZodType } & EventTraits;

type KeysOf<U> = U extends unknown ? keyof U : never;
type ValuesOf<U, K extends PropertyKey> = U extends { readonly [P in K]: infer X } ? X : never;
/** A trait's name (`unread` only some types have). */
export type TraitKey = KeysOf<EventTraits>;
/** The values trait `K` can take. */
export type TraitValue<K extends TraitKey> = ValuesOf<EventTraits, K>;
