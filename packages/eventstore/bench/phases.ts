import { testMessageSent } from '@chat/testkit';
import { type EventStore, START_POSITION } from '../src/index.js';

// The event store's own reference rates, measured the same way by `pnpm bench:store` and by `pnpm bench`
// (B4 and B5 judge the command path and the rebuild against them, in the same run: DESIGN.md budgets).

/** A MessageSent as the command-api appends it (plaintext body), by one of 50 senders. */
export const messageSent = (conversationId: string, i: number) =>
  testMessageSent(
    conversationId,
    `message ${i}: the quick brown fox jumps over the lazy dog`,
    `user-${i % 50}`,
  );

/**
 * Single-event appends for `seconds` from `writers` concurrent writers (16: the store's reference), each
 * to its own conversations with the exact expected revision, like the command path; group commit
 * shares their transactions.
 */
export const singleAppends = async (
  store: EventStore,
  seconds: number,
  writers = 16,
): Promise<{ appends: number; ms: number }> => {
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  let appends = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const revisions = new Map<string, number>();
      for (let i = 0; Date.now() < deadline; i++) {
        const stream = `conversation-w${w}-${i % 20}`;
        const expected = revisions.get(stream) ?? -1;
        const result = await store.append(
          stream,
          [messageSent(stream, i)],
          expected < 0 ? 'no_stream' : expected,
        );
        revisions.set(stream, result.nextExpectedRevision);
        appends++;
      }
    }),
  );
  return { appends, ms: performance.now() - started };
};

/** `readAll` in pages of 1,000 from the start of the log to its end, or until `maxMs` has passed. */
export const readAllPages = async (
  store: EventStore,
  maxMs = Number.POSITIVE_INFINITY,
): Promise<{ events: number; ms: number }> => {
  const started = performance.now();
  let events = 0;
  let from = START_POSITION;
  while (performance.now() - started < maxMs) {
    const page = await store.readAll({ fromPosition: from, maxCount: 1_000 });
    if (page.length === 0) break;
    events += page.length;
    from = page.at(-1)!.position;
  }
  return { events, ms: performance.now() - started };
};
