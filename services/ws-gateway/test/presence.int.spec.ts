import { natsSubjects, parsePresenceRecord, presenceSubject, presenceUserKey } from '@chat/events';
import { createLogger } from '@chat/platform';
import { natsUrl, testSubjectPrefix, waitFor } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MembershipSource } from '../src/hub/hub.js';
import { createGatewayMetrics } from '../src/metrics/metrics.js';
import { ClusterPresence } from '../src/presence/presence.js';

// Presence handling meets a failing database or KV bucket: it must log, count and retry — never reject
// unhandled (which would end the gateway process; vitest fails the run on an unhandled rejection).

const subjects = natsSubjects(testSubjectPrefix());
let nats: NatsConnection;
const started: ClusterPresence[] = [];

/** A membership source whose first `failures` reads fail, as Postgres restarting would. */
const flakyMembership = (failures: number) => {
  let calls = 0;
  const fail = () => {
    calls++;
    if (calls <= failures) throw new Error('connection terminated unexpectedly');
  };
  const source: MembershipSource & { conversationIdsOfUser(userId: string): Promise<string[]> } = {
    async membershipsOf(userIds) {
      fail();
      return {
        position: '0'.repeat(32),
        memberships: new Map(userIds.map((u) => [u, [{ conversationId: `c-of-${u}`, seq: 0 }]])),
      };
    },
    // The shape of the port before it read many users at once.
    async conversationIdsOfUser(userId) {
      fail();
      return [`c-of-${userId}`];
    },
  };
  return { source, calls: () => calls };
};

const startPresence = async (gatewayId: string, membership: MembershipSource) => {
  const metrics = createGatewayMetrics();
  const delivered: { userId: string; conversationIds: readonly string[]; text: string }[] = [];
  const presence = new ClusterPresence({
    nats,
    subjects,
    gatewayId,
    membership,
    logger: createLogger('ws-gateway', 'silent'),
    metrics,
    deliver: (userId, conversationIds, text) => delivered.push({ userId, conversationIds, text }),
  });
  await presence.start();
  started.push(presence);
  const errors = async () => (await metrics.presenceErrors.get()).values[0]?.value ?? 0;
  return { presence, delivered, errors };
};

beforeAll(async () => {
  nats = await connect({ servers: natsUrl() });
});

afterAll(async () => {
  for (const p of started) await p.stop();
  await nats
    .jetstream()
    .views.kv(subjects.presenceBucket)
    .then(
      (kv) => kv.destroy(),
      () => {},
    );
  await nats?.drain();
});

describe('ClusterPresence under failures', () => {
  it('a failing membership lookup is counted and retried until the presence frame goes out', async () => {
    const flaky = flakyMembership(2);
    const { delivered, errors } = await startPresence('gw-lookup', flaky.source);
    // An offline change as a reaper announces it: without conversations, so the receiver looks them up.
    nats.publish(
      presenceSubject(subjects.prefix),
      JSON.stringify({ userId: 'dave', status: 'offline', at: new Date().toISOString() }),
    );
    await waitFor(() => delivered.length > 0, { what: 'presence delivered', timeoutMs: 10_000 });
    expect(delivered[0]).toMatchObject({ userId: 'dave', conversationIds: ['c-of-dave'] });
    expect(JSON.parse(delivered[0]!.text)).toMatchObject({
      type: 'presence',
      userId: 'dave',
      status: 'offline',
    });
    expect(flaky.calls()).toBe(3);
    expect(await errors()).toBe(2);
  });

  it('a record write that fails while the KV bucket is gone is retried until it is back', async () => {
    const { presence, errors } = await startPresence('gw-kv', flakyMembership(0).source);
    const jsm = await nats.jetstreamManager();
    await jsm.streams.delete(`KV_${subjects.presenceBucket}`);
    presence.userOnline('erin', ['c1']);
    await waitFor(async () => (await errors()) >= 1, { what: 'a failed write counted', timeoutMs: 10_000 });
    const kv = await nats.jetstream().views.kv(subjects.presenceBucket, { history: 1 });
    const record = await waitFor(
      async () => {
        const e = await kv.get(presenceUserKey('erin'));
        return e?.operation === 'PUT' ? parsePresenceRecord(e.string()) : undefined;
      },
      { what: 'record written after the bucket came back', timeoutMs: 15_000 },
    );
    expect(record.g).toEqual({ 'gw-kv': 1 });
  });
});
