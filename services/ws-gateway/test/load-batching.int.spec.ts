import type { TemplatedApp } from 'uWebSockets.js';
import { natsSubjects } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { natsUrl, testSubjectPrefix } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hub, type MembershipSource } from '../src/hub/hub.js';
import { createGatewayMetrics } from '../src/metrics/metrics.js';

// A connect burst's users must share the reads of their conversations: one read per moment of the
// burst, not one per turn of the event loop (B1's burst saw a Postgres statement per ~8 connects).

let nats: NatsConnection;

beforeAll(async () => {
  nats = await connect({ servers: natsUrl() });
});

afterAll(async () => {
  await nats?.drain();
});

describe('Hub membership reads', () => {
  it('gathers a burst of connects, each in its own turn of the event loop, into a few reads', async () => {
    const reads: number[] = [];
    const membership: MembershipSource = {
      async membershipsOf(userIds) {
        reads.push(userIds.length);
        return { position: '0'.repeat(32), memberships: new Map() };
      },
    };
    const hub = new Hub({
      // Attaching and reading users touches neither uWS nor the store.
      app: {} as TemplatedApp,
      store: {} as EventStore,
      nats,
      subjects: natsSubjects(testSubjectPrefix()),
      membership,
      metrics: createGatewayMetrics(),
      logger: createLogger('ws-gateway', 'silent'),
      maxSocketsPerUser: 20,
    });
    // 100 connects, 2 per millisecond (2,000/s), each from its own timer as upgrades arrive.
    const loads: Promise<void>[] = [];
    const burstStarted = performance.now();
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 1));
      for (let j = 0; j < 2; j++) {
        const user = hub.attachUser(`burst-${i}-${j}`);
        const load = hub.whenLoaded(user);
        if (load) loads.push(load);
      }
    }
    await Promise.all(loads);
    const elapsed = performance.now() - burstStarted;
    expect(reads.reduce((a, b) => a + b, 0)).toBe(100);
    // At most one read starts per 20 ms (one per turn of the loop would be ~50 reads).
    expect(reads.length).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 1);
    expect(reads.length).toBeLessThan(50);

    // An isolated connect afterwards is read at once, not held for a burst that is over.
    await new Promise((r) => setTimeout(r, 50));
    const before = reads.length;
    const alone = hub.whenLoaded(hub.attachUser('alone'));
    await new Promise((r) => setImmediate(r));
    expect(reads.length).toBe(before + 1);
    await alone;
  });
});
