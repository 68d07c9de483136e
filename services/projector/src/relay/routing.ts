import { type NatsSubjects, parseStreamId, type RawEnvelope } from '@chat/events';

export type Publication = { subject: string; payload: string };

/**
 * Where one stored event goes on NATS (pure). Conversation-stream events, receipts and typing go to
 * the conversation's subject; membership changes also go to the affected users' subjects so that every
 * gateway holding one of their sockets (un)subscribes them, even a gateway with no other member.
 * The envelope is serialised once and shared by every publication of the event.
 */
export const routeEvent = (event: RawEnvelope, subjects: NatsSubjects): Publication[] => {
  const stream = parseStreamId(event.streamId);
  if (!stream || stream.category === 'user') return [];
  const envelope = JSON.stringify(event);
  const out: Publication[] = [{ subject: subjects.conversation(stream.id), payload: envelope }];
  if (stream.category !== 'conversation') return out;
  for (const userId of affectedMembers(event)) {
    out.push({ subject: subjects.user(userId), payload: `{"type":"membership","event":${envelope}}` });
  }
  return out;
};

const affectedMembers = (event: RawEnvelope): string[] => {
  const data = event.data;
  switch (event.type) {
    case 'ConversationStarted':
      return Array.isArray(data.members)
        ? data.members.filter((m): m is string => typeof m === 'string')
        : [];
    case 'MemberJoined':
    case 'MemberLeft':
      return typeof data.userId === 'string' ? [data.userId] : [];
    default:
      return [];
  }
};
