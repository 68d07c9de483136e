import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@chat/db';
import { userStream } from '@chat/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReplayer, PROJECTED_STREAMS } from '../src/index.js';
import { createHarness, dumpSchema, type Harness, replayInto } from './harness.js';
import { ChatSimulator, simulate } from './simulator.js';

let h: Harness;

beforeAll(async () => {
  h = await createHarness('replay');
  // Edits and deletes of older messages, reads below the newest message, leaves, re-joins and mutes:
  // everything that makes a page depend on rows an earlier page wrote. Then an erasure, which rewrites
  // rows of earlier pages in SQL (last: an erased user writes nothing afterwards, and the simulator
  // does not know that).
  const sim = new ChatSimulator({ users: 25, seed: 4242 });
  await simulate(h.store, sim, { conversations: 30, commands: 3000 });
  const erased = sim.users[1] ?? 'u1';
  await h.store.append(
    userStream(erased),
    [
      {
        id: randomUUID(),
        type: 'UserErased',
        data: { userId: erased, erasedBy: 'root', erasedAt: new Date().toISOString() },
        metadata: { userId: 'root', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
      },
    ],
    'any',
  );
}, 120_000);
afterAll(async () => {
  await h.close();
});

describe('pipelined replay (the rebuild)', () => {
  it('writes exactly what applying the log one batch at a time writes, also when its cache starts over', async () => {
    await replayInto(h.pool, h.store, 'replay_expected');
    for (const [schema, cacheMaxMembers] of [
      ['replay_cached', 1_000_000],
      ['replay_evicting', 40],
    ] as const) {
      await migrateReadModels(h.pool, schema);
      const replayer = createReplayer({ pool: h.pool, schema, onRejected: () => {}, cacheMaxMembers });
      let position: string | undefined;
      for (;;) {
        // Small pages: many of them, each depending on the ones before.
        const page = await h.store.readAll({
          fromPosition: position,
          maxCount: 97,
          filter: PROJECTED_STREAMS,
        });
        const last = page.at(-1);
        if (!last) break;
        await replayer.apply(page);
        position = last.position;
      }
      await replayer.drain();
      expect(await dumpSchema(h.pool, schema)).toEqual(await dumpSchema(h.pool, 'replay_expected'));
    }
  });
});
