import { type NatsSubjects, STREAM_PREFIX } from '@chat/events';
import {
  type AppendResult,
  delegatingStore,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  toEnvelope,
} from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { routeEvent } from '@chat/relay';

/**
 * The command-api's event store, publishing each conversation event it stores to NATS as soon as its
 * append has committed (LIVE_PUBLISH_FROM=command-api): live delivery no longer waits for the relay to
 * be woken, read the log and publish. The message is the relay's, byte for byte in meaning: the event as
 * recorded (its revision, position and the transaction's `occurredAt` come with the append's answer),
 * on the conversation's subject, and a membership change also on its members' subjects.
 *
 * Publishing after the commit is a dual write, so it is not what makes delivery reliable: the relay
 * still reads every event and publishes each conversation's last seq per batch (`subjects.heads`), and a
 * gateway behind that reads the rest from the store — an event whose writer died between commit and
 * publish is delivered a relay batch later. Gateways drop what comes twice by `seq`. What this store
 * does not publish (an append of several events, which no command makes; an idempotent repeat, whose
 * first append published; an adapter that does not answer with `occurredAt`) reaches gateways that way.
 */
export const publishingConversationEvents = (
  store: EventStore,
  subjects: NatsSubjects,
  /** Hands one message to NATS; `onError` hears a refusal that comes later (see `NatsOutbox`). */
  publish: (subject: string, payload: string, onError: (err: unknown) => void) => void,
  logger: Pick<Logger, 'warn'>,
): EventStore => {
  const append = async (
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult> => {
    const result = await store.append(streamId, events, expected);
    const [event] = events;
    if (
      event &&
      events.length === 1 &&
      result.occurredAt !== undefined &&
      streamId.startsWith(STREAM_PREFIX.conversation)
    ) {
      const recorded = toEnvelope({
        ...event,
        streamId,
        revision: result.nextExpectedRevision,
        position: result.position,
        occurredAt: result.occurredAt,
      });
      // Stored is stored: the command succeeded whatever NATS says (closed while draining, a payload
      // over its limit). The relay's heads bring the event to the gateways.
      const failed = (err: unknown) =>
        logger.warn(
          { err, streamId, revision: result.nextExpectedRevision },
          'could not publish a stored event',
        );
      try {
        for (const p of routeEvent(recorded, subjects)) publish(p.subject, p.payload, failed);
      } catch (err) {
        failed(err);
      }
    }
    return result;
  };
  return delegatingStore(store, { append });
};
