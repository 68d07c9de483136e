import { randomUUID } from 'node:crypto';
import {
  type ChatEvent,
  conversationStream,
  natsSubjects,
  type UserChannelMessage,
  userStream,
} from '@chat/events';
import { notificationIdFor } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNotifierConfig } from '../src/config.js';
import { createNotifierService } from '../src/service.js';
import {
  append,
  checkpoint,
  createHarness,
  type Harness,
  mute,
  notificationRows,
  sendMessage,
  setLevel,
  startConversation,
} from './fixtures.js';

let h: Harness;
let service: ReturnType<typeof createNotifierService>;
let standby: ReturnType<typeof createNotifierService> | undefined;
const logger = createLogger('notifier-test', 'silent');

const startService = () => {
  const subjects = natsSubjects(h.prefix);
  const s = createNotifierService({
    config: loadNotifierConfig({
      DATABASE_URL: h.db.url,
      NATS_SUBJECT_PREFIX: h.prefix,
      LEADER_RETRY_MS: '50',
    }),
    pool: h.pool,
    store: h.store,
    logger,
    subjects,
    publish: (subject, message) => h.nats.publish(subject, JSON.stringify(message)),
  });
  s.start();
  return s;
};

/** Waits until the notifier has applied everything up to `position`. */
const caughtUp = (position: string) =>
  waitFor(async () => ((await checkpoint(h.pool)) ?? '') >= position, {
    timeoutMs: 30_000,
    what: `checkpoint ${position}`,
  });

beforeAll(async () => {
  h = await createHarness('notifier');
  service = startService();
});

afterAll(async () => {
  await standby?.stop();
  await service?.stop();
  await h?.close();
});

describe('notification records', () => {
  it('a group notifies mentions and replies by default, members on all every message; never the sender', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol', 'dave']);
    await setLevel(h.store, 'dave', conv, 'all');
    const first = await sendMessage(h.store, conv, 'alice', 'hello @bob, and @carolyn');
    const reply = await sendMessage(h.store, conv, 'carol', 'fine', undefined, {
      messageId: first.messageId,
      senderId: 'alice',
    });
    await caughtUp(reply.position);
    const rows = await notificationRows(h.pool, 'message_id = ANY($1)', [[first.messageId, reply.messageId]]);
    expect(rows.map((r) => [r.message_id, r.recipient_id, r.kind, r.preview])).toEqual([
      [reply.messageId, 'alice', 'reply', 'fine'],
      [first.messageId, 'bob', 'mention', 'hello @bob, and @carolyn'],
      [first.messageId, 'dave', 'message', 'hello @bob, and @carolyn'],
      [reply.messageId, 'dave', 'message', 'fine'],
    ]);
    expect(rows[1]?.notification_id).toBe(notificationIdFor(conv, first.messageId, 'bob'));
  });

  it('a group message that addresses nobody writes no row and publishes nothing', async () => {
    const members = ['alice', ...Array.from({ length: 200 }, (_, i) => `quiet${i}`)];
    const conv = await startConversation(h.store, 'alice', members);
    await setLevel(h.store, 'quiet7', conv, 'none');
    const pushed: string[] = [];
    const sub = h.nats.subscribe(natsSubjects(h.prefix).allUsers, {
      callback: (_err, msg) => {
        if (members.some((m) => msg.subject.endsWith(`.${m}`))) pushed.push(msg.string());
      },
    });
    await h.nats.flush();
    const silent = await sendMessage(h.store, conv, 'alice', 'nobody in particular');
    const none = await sendMessage(h.store, conv, 'alice', 'hey @quiet7');
    const marker = await sendMessage(h.store, conv, 'alice', 'and @quiet9');
    await caughtUp(marker.position);
    await h.nats.flush();
    sub.unsubscribe();
    expect(await notificationRows(h.pool, 'conversation_id = $1', [conv])).toMatchObject([
      { message_id: marker.messageId, recipient_id: 'quiet9', kind: 'mention' },
    ]);
    expect(pushed.filter((p) => p.includes(silent.messageId) || p.includes(none.messageId))).toEqual([]);
  });

  it('a batch that notifies no one opens no transaction: its checkpoint moves with one statement', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
    const started = await sendMessage(h.store, conv, 'alice', 'warm up');
    await caughtUp(started.position);
    const withoutWrites = async () => {
      const metric = await service.registry.getSingleMetric('notifier_batches_without_writes_total')?.get();
      return metric?.values[0]?.value ?? 0;
    };
    const before = await withoutWrites();
    let last = started;
    for (let i = 0; i < 5; i++) last = await sendMessage(h.store, conv, 'bob', `quiet ${i}`);
    await caughtUp(last.position);
    expect(await withoutWrites()).toBeGreaterThan(before);
    // A message that notifies someone is still applied in a transaction with the checkpoint.
    const quiet = await withoutWrites();
    const mention = await sendMessage(h.store, conv, 'bob', 'hey @carol');
    await caughtUp(mention.position);
    expect(await withoutWrites()).toBe(quiet);
    expect(await notificationRows(h.pool, 'conversation_id = $1', [conv])).toMatchObject([
      { message_id: mention.messageId, recipient_id: 'carol', kind: 'mention' },
    ]);
  });

  it('skips a muted member until the mute expires, judged at the send time', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
    await setLevel(h.store, 'bob', conv, 'all');
    await setLevel(h.store, 'carol', conv, 'all');
    await mute(h.store, 'bob', conv, '2030-01-01T00:00:00.000Z');
    const before = await sendMessage(h.store, conv, 'alice', 'during mute', '2029-12-31T23:59:59.999Z');
    const after = await sendMessage(h.store, conv, 'alice', 'after expiry', '2030-01-01T00:00:00.001Z');
    await mute(h.store, 'carol', conv, '2030-06-01T00:00:00.000Z');
    await mute(h.store, 'carol', conv, null);
    const unmuted = await sendMessage(h.store, conv, 'alice', 'carol unmuted', '2030-01-02T00:00:00.000Z');
    await caughtUp(unmuted.position);
    const recipients = async (messageId: string) =>
      (await notificationRows(h.pool, 'message_id = $1', [messageId])).map((r) => r.recipient_id);
    expect(await recipients(before.messageId)).toEqual(['carol']);
    expect(await recipients(after.messageId)).toEqual(['bob', 'carol']);
    expect(await recipients(unmuted.messageId)).toEqual(['bob', 'carol']);
  });

  it('follows levels and membership: none silences mentions, a direct conversation notifies all, leavers nothing', async () => {
    const group = await startConversation(h.store, 'alice', ['alice', 'u1', 'u2', 'u3']);
    await setLevel(h.store, 'u2', group, 'none');
    await setLevel(h.store, 'u3', group, 'all');
    const before = await sendMessage(h.store, group, 'alice', 'hey @u1 and @u2');
    await append(h.store, conversationStream(group), 'u3', {
      type: 'MemberLeft',
      data: { conversationId: group, userId: 'u3', removedBy: 'u3' },
    });
    await setLevel(h.store, 'u2', group, 'mentions');
    const after = await sendMessage(h.store, group, 'alice', 'hey @u2 and @u3');
    const direct = await startConversation(h.store, 'alice', ['alice', 'u4'], 'direct');
    const plain = await sendMessage(h.store, direct, 'alice', 'just saying');
    await setLevel(h.store, 'u4', direct, 'mentions');
    const quiet = await sendMessage(h.store, direct, 'alice', 'again');
    await caughtUp(quiet.position);
    const rows = async (messageId: string) =>
      (await notificationRows(h.pool, 'message_id = $1', [messageId])).map(
        (r) => `${r.recipient_id}:${r.kind}`,
      );
    expect(await rows(before.messageId)).toEqual(['u1:mention', 'u3:message']);
    expect(await rows(after.messageId)).toEqual(['u2:mention']);
    expect(await rows(plain.messageId)).toEqual(['u4:message']);
    expect(await rows(quiet.messageId)).toEqual([]);
  });

  it('updates the preview on edit and removes it on delete', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob'], 'direct');
    const edited = await sendMessage(h.store, conv, 'alice', 'typo');
    const deleted = await sendMessage(h.store, conv, 'alice', 'secret');
    await append(
      h.store,
      conversationStream(conv),
      'alice',
      {
        type: 'MessageEdited',
        data: {
          conversationId: conv,
          messageId: edited.messageId,
          editorId: 'alice',
          body: 'fixed',
          editedAt: new Date().toISOString(),
        },
      },
      {
        type: 'MessageDeleted',
        data: {
          conversationId: conv,
          messageId: deleted.messageId,
          deletedBy: 'alice',
          deletedAt: new Date().toISOString(),
        },
      },
    );
    const last = await sendMessage(h.store, conv, 'alice', 'marker');
    await caughtUp(last.position);
    expect((await notificationRows(h.pool, 'message_id = $1', [edited.messageId]))[0]?.preview).toBe('fixed');
    expect((await notificationRows(h.pool, 'message_id = $1', [deleted.messageId]))[0]?.preview).toBe('');
  });

  it('marks records read from NotificationsRead, only up to its time and only the listed ids', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'reader'], 'direct');
    const m1 = await sendMessage(h.store, conv, 'alice', 'one', '2031-01-01T00:00:00.000Z');
    const m2 = await sendMessage(h.store, conv, 'alice', 'two', '2031-01-01T00:00:01.000Z');
    const m3 = await sendMessage(h.store, conv, 'alice', 'three', '2031-01-01T00:00:03.000Z');
    const id1 = notificationIdFor(conv, m1.messageId, 'reader');
    await append(h.store, userStream('reader'), 'reader', {
      type: 'NotificationsRead',
      data: { userId: 'reader', notificationIds: [id1, randomUUID()], upTo: '2031-01-01T00:00:02.000Z' },
    });
    const all = await append(h.store, userStream('reader'), 'reader', {
      type: 'NotificationsRead',
      data: { userId: 'reader', notificationIds: null, upTo: '2031-01-01T00:00:02.000Z' },
    });
    await caughtUp(all.position);
    const rows = await notificationRows(h.pool, 'recipient_id = $1', ['reader']);
    const readAt = Object.fromEntries(rows.map((r) => [r.message_id, r.read_at?.toISOString() ?? null]));
    expect(readAt).toEqual({
      [m1.messageId]: '2031-01-01T00:00:02.000Z',
      [m2.messageId]: '2031-01-01T00:00:02.000Z',
      [m3.messageId]: null,
    });
    const results = await h.pool.query('SELECT updated FROM notifier.read_results ORDER BY created_at');
    expect(results.rows.map((r) => r.updated)).toEqual([1, 1]);
  });

  it('pushes each new record to the recipient subject', async () => {
    const subjects = natsSubjects(h.prefix);
    const sub = h.nats.subscribe(subjects.user('listener'), { max: 1 });
    await h.nats.flush();
    const conv = await startConversation(h.store, 'alice', ['alice', 'listener']);
    const { messageId } = await sendMessage(h.store, conv, 'alice', 'ping @listener');
    for await (const msg of sub) {
      const body = msg.json<UserChannelMessage>();
      expect(body).toMatchObject({
        type: 'notification',
        notification: {
          notificationId: notificationIdFor(conv, messageId, 'listener'),
          kind: 'mention',
          conversationId: conv,
          messageId,
          actorId: 'alice',
          preview: 'ping @listener',
          readAt: null,
        },
      });
    }
  });

  it('notifies the author of a reaction once, as kind reaction from the reactor; never for their own', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
    await setLevel(h.store, 'carol', conv, 'none');
    const mine = await sendMessage(h.store, conv, 'alice', 'react to this');
    const hers = await sendMessage(h.store, conv, 'carol', 'and this');
    const react = (
      type: 'ReactionAdded' | 'ReactionRemoved',
      userId: string,
      messageId: string,
      sender: string,
    ) =>
      append(h.store, conversationStream(conv), userId, {
        type,
        data: {
          conversationId: conv,
          messageId,
          userId,
          reaction: '👍',
          at: new Date().toISOString(),
          ...(type === 'ReactionAdded' ? { messageSenderId: sender } : {}),
        },
      } as ChatEvent);
    await react('ReactionAdded', 'bob', mine.messageId, 'alice');
    await react('ReactionRemoved', 'bob', mine.messageId, 'alice');
    await react('ReactionAdded', 'bob', mine.messageId, 'alice');
    await react('ReactionAdded', 'alice', mine.messageId, 'alice');
    await react('ReactionAdded', 'bob', hers.messageId, 'carol');
    // An edit changes the previews of the message's own records, not a reaction's.
    const last = await append(h.store, conversationStream(conv), 'alice', {
      type: 'MessageEdited',
      data: {
        conversationId: conv,
        messageId: mine.messageId,
        editorId: 'alice',
        body: 'edited',
        editedAt: new Date().toISOString(),
      },
    });
    await caughtUp(last.position);
    const rows = await notificationRows(h.pool, 'conversation_id = $1', [conv]);
    expect(rows.map((r) => [r.recipient_id, r.kind, r.actor_id, r.message_id, r.preview])).toEqual([
      ['alice', 'reaction', 'bob', mine.messageId, '👍'],
    ]);
    expect(rows[0]?.notification_id).toBe(
      notificationIdFor(conv, mine.messageId, 'alice', 'reaction', 'bob', '👍'),
    );
  });

  it('gives a blocker no record from what the blocked user sends while blocked; an unblock restores it', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
    const block = (type: 'UserBlocked' | 'UserUnblocked') =>
      append(h.store, userStream('alice'), 'alice', {
        type,
        data: { userId: 'alice', blockedUserId: 'bob', at: new Date().toISOString() },
      });
    const before = await sendMessage(h.store, conv, 'bob', 'hi @alice');
    await block('UserBlocked');
    const mention = await sendMessage(h.store, conv, 'bob', 'hey @alice and @carol');
    const fromAlice = await sendMessage(h.store, conv, 'alice', 'from alice');
    await sendMessage(h.store, conv, 'bob', 're', undefined, {
      messageId: fromAlice.messageId,
      senderId: 'alice',
    });
    await block('UserUnblocked');
    const after = await sendMessage(h.store, conv, 'bob', 'again @alice');
    await caughtUp(after.position);
    const rows = await notificationRows(h.pool, 'conversation_id = $1', [conv]);
    expect(rows.map((r) => [r.message_id, r.recipient_id, r.kind])).toEqual([
      [before.messageId, 'alice', 'mention'],
      [after.messageId, 'alice', 'mention'],
      [mention.messageId, 'carol', 'mention'],
    ]);
  });

  it('reproduces the same records when rebuilt from the start of the log', async () => {
    const head = await h.store.headPosition();
    await caughtUp(head);
    const before = await notificationRows(h.pool);
    await service.stop();
    await h.pool.query(
      `TRUNCATE notifier.notifications, notifier.conversations, notifier.members, notifier.mutes,
                notifier.levels, notifier.read_results, notifier.blocks`,
    );
    await h.pool.query(`DELETE FROM consumers.checkpoints WHERE name = 'notifier'`);
    service = startService();
    await caughtUp(head);
    expect(await notificationRows(h.pool)).toEqual(before);
  });

  it('hands over to a standby when the leader stops', async () => {
    standby = startService();
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob'], 'direct');
    await caughtUp((await sendMessage(h.store, conv, 'alice', 'before')).position);
    await service.stop();
    const after = await sendMessage(h.store, conv, 'alice', 'after the handover');
    await caughtUp(after.position);
    expect(await notificationRows(h.pool, 'message_id = $1', [after.messageId])).toHaveLength(1);
  });
});
