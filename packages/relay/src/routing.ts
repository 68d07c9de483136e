import {
  type EventType,
  eventDataSchemas,
  isEventType,
  type NatsSubjects,
  parseStreamId,
  type RawEnvelope,
  startingMembers,
} from '@chat/events';

export type Publication = { subject: string; payload: string };

/**
 * Where one stored event goes on NATS (pure). Conversation-stream events, receipts and typing go to
 * the conversation's subject; membership changes also go to the affected users' subjects so that every
 * gateway holding one of their sockets (un)subscribes them, even a gateway with no other member.
 * The envelope is serialised once and shared by every publication of the event.
 */
export const routeEvent = (event: RawEnvelope, subjects: NatsSubjects): Publication[] => {
  const stream = parseStreamId(event.streamId);
  if (!stream || stream.category === 'report') return [];
  // User streams reach no socket. A block or unblock goes, as a control message the gateways apply
  // (and never forward), to both users' subjects: presence is not revealed across a block either way.
  if (stream.category === 'user') return blockControl(event, subjects);
  const envelope = JSON.stringify(event);
  const out: Publication[] = [{ subject: subjects.conversation(stream.id), payload: envelope }];
  if (stream.category !== 'conversation' || !isEventType(event.type)) return out;
  for (const userId of affectedMembers(event.type, event.data)) {
    out.push({ subject: subjects.user(userId), payload: `{"type":"membership","event":${envelope}}` });
  }
  return out;
};

const blockControl = (event: RawEnvelope, subjects: NatsSubjects): Publication[] => {
  if (event.type !== 'UserBlocked' && event.type !== 'UserUnblocked') return [];
  const { userId, blockedUserId } = event.data;
  if (typeof userId !== 'string' || typeof blockedUserId !== 'string' || userId === blockedUserId) return [];
  const payload = `{"type":"block","event":${JSON.stringify(event)}}`;
  return [
    { subject: subjects.user(userId), payload },
    { subject: subjects.user(blockedUserId), payload },
  ];
};

/**
 * The users whose membership the event changes. The relay publishes what is stored, whatever its
 * shape: data that does not parse affects no user subject (gateways see it on the conversation's).
 */
const affectedMembers = (type: EventType, data: Record<string, unknown>): string[] => {
  switch (type) {
    case 'ConversationStarted': {
      const parsed = eventDataSchemas.ConversationStarted.safeParse(data);
      return parsed.success ? startingMembers(parsed.data) : [];
    }
    case 'MemberJoined':
    case 'MemberLeft':
      return typeof data.userId === 'string' ? [data.userId] : [];
    case 'MessageSent':
    case 'MessageEdited':
    case 'MessageDeleted':
    case 'ReactionAdded':
    case 'ReactionRemoved':
    case 'ConversationRead':
    case 'TypingStarted':
    case 'ConversationMuted':
    case 'NotificationLevelSet':
    case 'NotificationsRead':
    case 'MemberRoleChanged':
    case 'MemberBanned':
    case 'MemberUnbanned':
    case 'MessageReported':
    case 'ReportResolved':
    case 'UserBlocked':
    case 'UserUnblocked':
    case 'UserErased':
      return [];
    default: {
      const never: never = type;
      return never;
    }
  }
};
