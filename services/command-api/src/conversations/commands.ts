import type { CommandFields, CommandShapes, ModerationCommandShapes } from '@chat/events';
import type { ModerationCommand } from './moderation.js';

/**
 * What a command on one conversation takes from its request (@chat/events shapes, already validated),
 * without the conversation id, which names the stream it is decided on.
 */
export type ConversationCommandFields<N extends keyof (CommandShapes & ModerationCommandShapes)> =
  CommandFields<(CommandShapes & ModerationCommandShapes)[N], 'conversationId'>;
type Fields<N extends keyof CommandShapes> = ConversationCommandFields<N>;

/** The clock's time (ISO-8601), put on by the handler as the acting user is, so the decider stays pure. */
type Now = { now: string };

/**
 * Commands on one conversation, as the decider sees them: the request's fields (derived from the
 * shapes of @chat/events) plus the acting user and the clock (`now`, ISO time) put on by the handler.
 */
export type ConversationCommand =
  | {
      type: 'StartConversation';
      /** `members` as given by the caller (the decider adds the caller and drops duplicates). */
      data: Fields<'createConversation'> & { conversationId: string; createdBy: string };
    }
  | { type: 'AddMember'; data: Fields<'addMember'> & { addedBy: string } }
  | { type: 'RemoveMember'; data: Fields<'removeMember'> & { removedBy: string } }
  /** `replyTo` and `threadRootId` null: not a reply, a message of the main timeline. */
  | { type: 'SendMessage'; data: Fields<'sendMessage'> & { senderId: string } & Now }
  | { type: 'EditMessage'; data: Fields<'editMessage'> & { editorId: string } & Now }
  | { type: 'DeleteMessage'; data: Fields<'deleteMessage'> & { deletedBy: string } & Now }
  | { type: 'AddReaction'; data: Fields<'addReaction'> & { userId: string } & Now }
  | { type: 'RemoveReaction'; data: Fields<'removeReaction'> & { userId: string } & Now }
  | { type: 'MarkRead'; data: Fields<'markRead'> & { userId: string } & Now }
  | { type: 'StartTyping'; data: Fields<'typing'> & { userId: string } & Now }
  | { type: 'Mute'; data: Fields<'mute'> & { userId: string } }
  /** Appends nothing: refuses a non-member (404) before a command on the user's own stream. */
  | { type: 'RequireMember'; data: { userId: string } }
  | ModerationCommand;

export type ConversationCommandType = ConversationCommand['type'];
