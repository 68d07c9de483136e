import type { ConversationKind } from '@chat/events';
import type { ModerationCommand } from './moderation.js';

/**
 * Commands on one conversation, as the decider sees them: already validated by the schemas of
 * @chat/events, with the acting user and the clock (`now`, ISO time) put on by the handler.
 */
export type ConversationCommand =
  | {
      type: 'StartConversation';
      data: {
        conversationId: string;
        kind: ConversationKind;
        /** As given by the caller (the caller is added and duplicates dropped by the decider). */
        members: string[];
        title: string | null;
        createdBy: string;
      };
    }
  | { type: 'AddMember'; data: { userId: string; addedBy: string } }
  | { type: 'RemoveMember'; data: { userId: string; removedBy: string } }
  | {
      type: 'SendMessage';
      data: {
        messageId: string;
        senderId: string;
        body: string;
        replyTo: string | null;
        /** Absent or null: a message of the main timeline. */
        threadRootId?: string | null;
        now: string;
      };
    }
  | { type: 'EditMessage'; data: { messageId: string; editorId: string; body: string; now: string } }
  | { type: 'DeleteMessage'; data: { messageId: string; deletedBy: string; now: string } }
  | {
      type: 'AddReaction' | 'RemoveReaction';
      data: { messageId: string; userId: string; reaction: string; now: string };
    }
  | { type: 'MarkRead'; data: { userId: string; upToSeq: number; now: string } }
  | { type: 'StartTyping'; data: { userId: string; now: string } }
  | { type: 'Mute'; data: { userId: string; until: string | null } }
  /** Appends nothing: refuses a non-member (404) before a command on the user's own stream. */
  | { type: 'RequireMember'; data: { userId: string } }
  | ModerationCommand;

export type ConversationCommandType = ConversationCommand['type'];
