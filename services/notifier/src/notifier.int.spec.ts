import { randomUUID } from 'node:crypto';
import { conversationStream, natsSubjects, type UserChannelMessage, userStream } from '@chat/events';
import { notificationIdFor } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  append,
  checkpoint,
  createHarness,
  type Harness,
  mute,
  notificationRows,
  sendMessage,
  startConversation,
} from '../test/fixtures.js';
import { loadNotifierConfig } from './config.js';
import { createNotifierService } from './service.js';

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
      NOTIFY_ALL_MAX_MEMBERS: '5',
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
  it('notifies every member but the sender, with the mention kind', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
    const { messageId, position } = await sendMessage(h.store, conv, 'alice', 'hello @bob, and @carolyn');
    await caughtUp(position);
    const rows = await notificationRows(h.pool, 'message_id = $1', [messageId]);
    expect(rows.map((r) => [r.recipient_id, r.kind, r.preview])).toEqual([
      ['bob', 'mention', 'hello @bob, and @carolyn'],
      ['carol', 'message', 'hello @bob, and @carolyn'],
    ]);
    expect(rows[0]?.notification_id).toBe(notificationIdFor(conv, messageId, 'bob'));
  });

  it('skips a muted member until the mute expires, judged at the send time', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob', 'carol']);
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

  it('notifies only mentions in groups above NOTIFY_ALL_MAX_MEMBERS (5 here), counting joins and leaves', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'u1', 'u2', 'u3', 'u4']);
    await append(h.store, conversationStream(conv), 'alice', {
      type: 'MemberJoined',
      data: { conversationId: conv, userId: 'u5', addedBy: 'alice' },
    });
    const large = await sendMessage(h.store, conv, 'alice', 'hey @u2 and @u5');
    const plain = await sendMessage(h.store, conv, 'alice', 'nobody mentioned');
    await append(h.store, conversationStream(conv), 'u1', {
      type: 'MemberLeft',
      data: { conversationId: conv, userId: 'u1', removedBy: 'u1' },
    });
    const small = await sendMessage(h.store, conv, 'alice', 'back to five');
    await caughtUp(small.position);
    const rows = async (messageId: string) =>
      (await notificationRows(h.pool, 'message_id = $1', [messageId])).map(
        (r) => `${r.recipient_id}:${r.kind}`,
      );
    expect(await rows(large.messageId)).toEqual(['u2:mention', 'u5:mention']);
    expect(await rows(plain.messageId)).toEqual([]);
    expect(await rows(small.messageId)).toEqual(['u2:message', 'u3:message', 'u4:message', 'u5:message']);
  });

  it('updates the preview on edit and removes it on delete', async () => {
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob']);
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
    const conv = await startConversation(h.store, 'alice', ['alice', 'reader']);
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

  it('reproduces the same records when rebuilt from the start of the log', async () => {
    const head = await h.store.headPosition();
    await caughtUp(head);
    const before = await notificationRows(h.pool);
    await service.stop();
    await h.pool.query(
      `TRUNCATE notifier.notifications, notifier.messages, notifier.conversations, notifier.members,
                notifier.mutes, notifier.read_results`,
    );
    await h.pool.query(`DELETE FROM consumers.checkpoints WHERE name = 'notifier'`);
    service = startService();
    await caughtUp(head);
    expect(await notificationRows(h.pool)).toEqual(before);
  });

  it('hands over to a standby when the leader stops', async () => {
    standby = startService();
    const conv = await startConversation(h.store, 'alice', ['alice', 'bob']);
    await caughtUp((await sendMessage(h.store, conv, 'alice', 'before')).position);
    await service.stop();
    const after = await sendMessage(h.store, conv, 'alice', 'after the handover');
    await caughtUp(after.position);
    expect(await notificationRows(h.pool, 'message_id = $1', [after.messageId])).toHaveLength(1);
  });
});
