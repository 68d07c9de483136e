import { randomUUID } from 'node:crypto';
import { createReadModelDb, listMessages, migrateReadModels } from '@chat/db';
import { type ChatEvent, conversationStream } from '@chat/events';
import type { RecordedEvent } from '@chat/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectEvents } from '../src/index.js';
import { createHarness, dumpSchema, type Harness, readWholeLog } from './harness.js';

// Reactions in the read model do not depend on how the log is cut into batches: a removal and a
// re-add in one batch, an add of a reaction the user already has, a removal of one never added.

let h: Harness;
let log: RecordedEvent[];
const c = randomUUID();
const m1 = randomUUID();
const T = '2026-01-01T00:00:00.000Z';

const reaction = (type: 'ReactionAdded' | 'ReactionRemoved', userId: string, r: string): ChatEvent =>
  type === 'ReactionAdded'
    ? {
        type,
        data: { conversationId: c, messageId: m1, userId, reaction: r, at: T, messageSenderId: 'alice' },
      }
    : { type, data: { conversationId: c, messageId: m1, userId, reaction: r, at: T } };

beforeAll(async () => {
  h = await createHarness('reactionsrm');
  const events: ChatEvent[] = [
    {
      type: 'ConversationStarted',
      data: {
        conversationId: c,
        kind: 'group',
        title: 't',
        createdBy: 'alice',
        members: ['bob', 'carol', 'dave'],
      },
    },
    {
      type: 'MessageSent',
      data: { conversationId: c, messageId: m1, senderId: 'alice', body: 'hi', replyTo: null, sentAt: T },
    },
    reaction('ReactionAdded', 'bob', '👍'), // 2
    reaction('ReactionAdded', 'carol', '👍'), // 3
    reaction('ReactionRemoved', 'bob', '👍'), // 4
    reaction('ReactionAdded', 'bob', '👍'), // 5: bob is now after carol
    reaction('ReactionAdded', 'carol', '👍'), // 6: already has it: nothing changes
    reaction('ReactionRemoved', 'dave', '🙈'), // 7: never added
    reaction('ReactionAdded', 'dave', '🎉'), // 8
    reaction('ReactionRemoved', 'dave', '🎉'), // 9
    reaction('ReactionAdded', 'dave', 'thumbsup'), // 10
  ];
  const appended = await h.store.append(
    conversationStream(c),
    events.map((e) => ({
      id: randomUUID(),
      type: e.type,
      data: e.data,
      metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
    })),
    'no_stream',
  );
  log = await readWholeLog(h.store, appended.position);
});
afterAll(async () => {
  await h.close();
});

const applyIn = async (schema: string, batch: number) => {
  await migrateReadModels(h.pool, schema);
  const db = createReadModelDb(h.pool, schema);
  for (let i = 0; i < log.length; i += batch) {
    await db.transaction().execute((trx) => projectEvents(trx, schema, log.slice(i, i + batch), () => {}));
  }
  return db;
};

describe('reactions in the read model', () => {
  it('are the same whatever the batches, ordered by first use with users by time', async () => {
    const whole = await applyIn('reactions_whole', log.length);
    const expected = [
      { reaction: '👍', count: 2, userIds: ['carol', 'bob'] },
      { reaction: 'thumbsup', count: 1, userIds: ['dave'] },
    ];
    expect((await listMessages(whole, c, { limit: 10 })).items[0]?.reactions).toEqual(expected);
    for (const batch of [1, 2, 3, 4]) {
      const schema = `reactions_by_${batch}`;
      const db = await applyIn(schema, batch);
      expect((await listMessages(db, c, { limit: 10 })).items[0]?.reactions, `batches of ${batch}`).toEqual(
        expected,
      );
      expect(await dumpSchema(h.pool, schema)).toEqual(await dumpSchema(h.pool, 'reactions_whole'));
    }
  });
});
