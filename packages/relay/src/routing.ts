import {
  eventDefinitions,
  hasTrait,
  isEventType,
  isMembershipEvent,
  membersChangedBy,
  type NatsSubjects,
  parseStreamId,
  type RawEnvelope,
  type RelayRoute,
  safeParseEvent,
} from '@chat/events';

export type Publication = { subject: string; payload: string };

export type RouteOptions = {
  /**
   * Whether a conversation stream's events go to the conversation's subject (default true). False where
   * their writer publishes them itself (LIVE_PUBLISH_FROM=command-api): the relay then publishes of them
   * only the membership news on the members' subjects, and the conversations' heads (relay.ts).
   */
  conversationSubject?: boolean;
};

/**
 * Where one stored event goes on NATS (pure), by its type's `relay` trait in @chat/events (`RelayRoute`
 * says what each route means). The envelope is serialised once and shared by every publication of it.
 * The relay publishes what is stored, whatever its shape: data that does not parse reaches no user
 * subject (gateways still see it on the conversation's).
 */
export const routeEvent = (
  event: RawEnvelope,
  subjects: NatsSubjects,
  options: RouteOptions = {},
): Publication[] => {
  const stream = parseStreamId(event.streamId);
  if (!stream) return [];
  const route = routeOf(event.type, stream.category);
  switch (route) {
    case 'none':
      return [];
    case 'conversation':
    case 'membership': {
      const envelope = JSON.stringify(event);
      const out: Publication[] =
        options.conversationSubject === false && stream.category === 'conversation'
          ? []
          : [{ subject: subjects.conversation(stream.id), payload: envelope }];
      if (route === 'membership') {
        for (const userId of changedMembers(event)) {
          out.push({ subject: subjects.user(userId), payload: `{"type":"membership","event":${envelope}}` });
        }
      }
      return out;
    }
    case 'block':
      return blockControl(event, subjects);
    default: {
      const never: never = route;
      throw new Error(`unknown relay route ${JSON.stringify(never)}`);
    }
  }
};

/**
 * A known type's route; a type this build does not know (a later contract version) is passed on to the
 * conversation's subject from the streams whose events sockets get, so gateways forward it.
 */
const routeOf = (type: string, category: string): RelayRoute => {
  if (isEventType(type)) return eventDefinitions[type].relay;
  return category === 'conversation' || category === 'receipts' || category === 'typing'
    ? 'conversation'
    : 'none';
};

const changedMembers = (event: RawEnvelope): string[] => {
  const parsed = safeParseEvent(event.type, event.data);
  return parsed && isMembershipEvent(parsed) ? membersChangedBy(parsed) : [];
};

const blockControl = (event: RawEnvelope, subjects: NatsSubjects): Publication[] => {
  const parsed = safeParseEvent(event.type, event.data);
  if (!parsed || !hasTrait(parsed, 'relay', 'block')) return [];
  const { userId, blockedUserId } = parsed.data;
  if (userId === blockedUserId) return [];
  const payload = `{"type":"block","event":${JSON.stringify(event)}}`;
  return [
    { subject: subjects.user(userId), payload },
    { subject: subjects.user(blockedUserId), payload },
  ];
};
