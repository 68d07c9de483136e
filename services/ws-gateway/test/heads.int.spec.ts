import { randomUUID } from 'node:crypto';
import { natsSubjects } from '@chat/events';
import { type EventStore, type PostgresEventStore, toEnvelope } from '@chat/eventstore';
import {
  natsUrl,
  type TestDatabase,
  testEvent,
  testMessageSent,
  testSubjectPrefix,
  waitFor,
} from '@chat/testkit';
import { connect as connectNats, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../src/gateway.js';
import { gatewayDatabase, openSocket, seqsOf, startInProcessGateway } from './in-process.js';

// Events that reach a gateway only through the relay's heads (their writer stored them and died before
// publishing them): the feed reads them from the store, once NATS has not brought them within its grace.
// An in-process gateway on a real database and NATS; the test is the writer (it appends straight to the
// log and publishes nothing, except where it plays a writer that did publish) and the relay (it
// publishes the heads). The store's stream reads can be held after they read, to stage a fill whose
// snapshot is older than a later head.

let database: TestDatabase;
let store: PostgresEventStore;
let gateway: Gateway;
let nats: NatsConnection;
const prefix = testSubjectPrefix();
const subjects = natsSubjects(prefix);
/** While set, a stream read waits for it after reading (its result is the snapshot of before). */
let heldReads: Promise<void> | undefined;
let readsHeld = 0;
/** While set, a read of a stream's revision (a new feed's starting point) waits for it before reading. */
let heldRevisions: Promise<void> | undefined;
/** Stream reads per stream, counted after they read. */
const streamReads = new Map<string, number>();

const holding = (inner: EventStore): EventStore => {
  const wrapped: EventStore = Object.create(inner);
  wrapped.readStream = async (stream, options) => {
    const events = await inner.readStream(stream, options);
    streamReads.set(stream, (streamReads.get(stream) ?? 0) + 1);
    if (heldReads) {
      readsHeld++;
      await heldReads;
    }
    return events;
  };
  wrapped.streamRevision = async (stream) => {
    if (heldRevisions) await heldRevisions;
    return inner.streamRevision(stream);
  };
  return wrapped;
};
const gate = () => {
  let open = () => {};
  const closed = new Promise<void>((r) => {
    open = r;
  });
  return { closed, open };
};

beforeAll(async () => {
  ({ database, store } = await gatewayDatabase('heads'));
  gateway = await startInProcessGateway(database, holding(store), prefix);
  nats = await connectNats({ servers: natsUrl() });
}, 60_000);

afterAll(async () => {
  await nats?.close();
  await gateway?.stop();
  await store?.close();
  await database?.drop();
});

/** A socket of `userId`, live (its resume names nothing). */
const connect = async (userId: string) => {
  const { ws, frames } = await openSocket(gateway, userId);
  ws.send(JSON.stringify({ type: 'resume', ref: 'r', positions: {} }));
  await waitFor(() => frames.some((f) => f.type === 'resumed'), { what: 'resumed' });
  // `resumed` can come before a feed's start has read where the stream is (a busy host): the races the
  // tests stage (held reads, held revisions) must begin from live feeds.
  await waitFor(() => [...gateway.hub.feeds.values()].every((f) => f.live || f.disposed), {
    what: 'live feeds',
  });
  return { ws, frames };
};
const hintFills = async () =>
  (await gateway.hub.metrics.hintFills.get()).values.reduce((sum, v) => sum + v.value, 0);
const heads = async (conversationId: string, seq: number) => {
  nats.publish(subjects.heads, JSON.stringify({ heads: { [conversationId]: seq } }));
  await nats.flush();
};
const started = (conversationId: string, members: string[]) =>
  testEvent('ConversationStarted', {
    conversationId,
    kind: 'group',
    title: 'g',
    createdBy: 'carol',
    members,
  });

/** A new conversation of `member` and carol, and a live socket of `member`. */
const conversationOf = async (member: string) => {
  const id = randomUUID();
  const stream = `conversation-${id}`;
  await store.append(stream, [started(id, [member, 'carol'])], 'no_stream');
  return { id, stream, ...(await connect(member)) };
};

describe('heads', () => {
  it('a head that comes while the feed reads the store for an earlier one is read too', async () => {
    const { id, stream, ws, frames } = await conversationOf('alice');
    const reads = gate();
    heldReads = reads.closed;
    readsHeld = 0;
    try {
      await store.append(stream, [testMessageSent(id, 'one')], 0);
      await heads(id, 1);
      await waitFor(() => readsHeld > 0, { what: 'the fill of head 1 to read' });
      // Committed after that read: the fill in flight cannot see it; only its head says it is there.
      await store.append(stream, [testMessageSent(id, 'two')], 1);
      await heads(id, 2);
    } finally {
      heldReads = undefined;
      reads.open();
    }
    await waitFor(() => seqsOf(frames, id).length >= 2, {
      what: `seqs 1 and 2 (has ${seqsOf(frames, id).join(',')})`,
      timeoutMs: 10_000,
    });
    expect(seqsOf(frames, id)).toEqual([1, 2]);
    ws.close();
  });

  it('a user removed and added again within one read of the store gets their join and what follows', async () => {
    // alice is the gateway's only member of the conversation: her removal ends its feed on this
    // gateway, inside the very read that also holds her return.
    const { id, stream, ws, frames } = await conversationOf('alice');
    await store.append(
      stream,
      [
        testEvent('MemberLeft', { conversationId: id, userId: 'alice', removedBy: 'carol' }),
        testMessageSent(id, 'while alice is out'),
        testEvent('MemberJoined', { conversationId: id, userId: 'alice', addedBy: 'carol' }),
        testMessageSent(id, 'alice is back'),
      ],
      0,
    );
    // A feed that ends with alice's removal must not hand her return to a new feed that starts from
    // the stream's end as it reads it then: seq 5, stored meanwhile, would be nobody's.
    const revisions = gate();
    heldRevisions = revisions.closed;
    try {
      await heads(id, 4);
      await waitFor(() => seqsOf(frames, id).length >= 3, {
        what: `seqs 1, 3 and 4 (has ${seqsOf(frames, id).join(',')})`,
        timeoutMs: 10_000,
      });
      await store.append(stream, [testMessageSent(id, 'later')], 4);
    } finally {
      heldRevisions = undefined;
      revisions.open();
    }
    await heads(id, 5);
    await waitFor(() => seqsOf(frames, id).includes(5), { what: 'seq 5', timeoutMs: 10_000 });
    expect(seqsOf(frames, id)).toEqual([1, 3, 4, 5]);
    ws.close();
  });

  it('a head that comes just before its event reads nothing from the store: NATS brings the event', async () => {
    // The usual race on a busy host: the relay's head overtakes the writer's own publish. The feed
    // waits its grace for NATS instead of reading the store for an event already on its way. (dave, not
    // alice: the other tests start from alice's first connect.)
    const { id, stream, ws, frames } = await conversationOf('dave');
    await store.append(stream, [testMessageSent(id, 'one')], 0);
    const [stored] = await store.readStream(stream, { fromRevision: 1 });
    const readsBefore = streamReads.get(stream) ?? 0;
    const hintFillsBefore = await hintFills();
    try {
      nats.publish(subjects.heads, JSON.stringify({ heads: { [id]: 1 } }));
      nats.publish(subjects.conversation(id), JSON.stringify(toEnvelope(stored!)));
      await nats.flush();
      await waitFor(() => seqsOf(frames, id).includes(1), { what: 'seq 1' });
      expect(seqsOf(frames, id)).toEqual([1]);
      expect(streamReads.get(stream) ?? 0).toBe(readsBefore);
      expect(await hintFills()).toBe(hintFillsBefore);
    } finally {
      ws.close();
    }
  });

  it('a head waits as long as NATS lately trails the heads, and still reads what NATS never brings', async () => {
    // Under saturation the writer's publishes trail the relay's heads by up to a second. Here each
    // event comes 120 ms after its head: the first heads wait 50 ms and read the store, each such read
    // raises the grace, until the events come in time and nothing is read twice. The hub's average
    // starts near 0 (the tests above send their events with or before their heads); erin: see above.
    const { id, stream, ws, frames } = await conversationOf('erin');
    const readsPerRound: number[] = [];
    try {
      for (let seq = 1; seq <= 30 && readsPerRound.at(-1) !== 0; seq++) {
        await store.append(stream, [testMessageSent(id, `late ${seq}`)], seq - 1);
        const [stored] = await store.readStream(stream, { fromRevision: seq, maxCount: 1 });
        const readsBefore = streamReads.get(stream) ?? 0;
        await heads(id, seq);
        await new Promise((r) => setTimeout(r, 120));
        nats.publish(subjects.conversation(id), JSON.stringify(toEnvelope(stored!)));
        await nats.flush();
        await waitFor(() => seqsOf(frames, id).includes(seq), { what: `seq ${seq}` });
        readsPerRound.push((streamReads.get(stream) ?? 0) - readsBefore);
      }
      expect(readsPerRound[0]).toBeGreaterThan(0);
      expect(readsPerRound.at(-1)).toBe(0);
      // A writer that died before publishing: its event comes from the store, after the longer wait.
      const last = readsPerRound.length;
      await store.append(stream, [testMessageSent(id, 'never published')], last);
      await heads(id, last + 1);
      await waitFor(() => seqsOf(frames, id).includes(last + 1), { what: 'the unpublished event' });
      expect(seqsOf(frames, id)).toEqual(Array.from({ length: last + 1 }, (_, i) => i + 1));
    } finally {
      ws.close();
    }
  }, 30_000);
});
