import { randomUUID } from 'node:crypto';
import { ChatApi, ChatApiError } from '@chat/client';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawSocket, seqsOf } from './support/clients.js';
import { type Cluster, startCluster } from './support/cluster.js';

// Issue 16 through the real system and the SDK: threads (reply, page, counters, notification, live
// delivery on a raw socket in seq order) and search (member finds, non-member finds nothing).

let cluster: Cluster;
const u = (name: string) => `${name}-${randomUUID().slice(0, 6)}`;
const [ann, ben, cat, eve] = [u('ann'), u('ben'), u('cat'), u('eve')];
const apiFor = (userId: string) =>
  new ChatApi({ baseUrl: cluster.api, token: () => signToken(userId), validateResponses: true });

beforeAll(async () => {
  cluster = await startCluster({ label: 'threads', gateways: 1, notifier: true });
});

afterAll(async () => {
  await cluster?.stop();
});

describe('threads and search through the SDK', () => {
  it('a thread reply reaches a raw socket in seq order, pages through the SDK and notifies the root’s author', async () => {
    const a = apiFor(ann);
    const b = apiFor(ben);
    const { conversationId: id } = await a.createConversation({
      kind: 'group',
      members: [ben, cat],
      title: 'T',
    });
    const socket = await rawSocket(cluster.gateways[0]?.url ?? '', await signToken(cat));
    try {
      const root = await a.sendMessage(id, { body: 'where shall we eat' });
      const r1 = await b.sendMessage(id, { body: 'noodles', threadRootId: root.messageId });
      const main = await a.sendMessage(id, { body: 'meanwhile on the main timeline' });
      const r2 = await a.sendMessage(id, { body: 'noodles it is', threadRootId: root.messageId });

      await waitFor(() => seqsOf(socket.frames, id).includes(r2.seq), {
        what: 'the thread reply on the socket',
      });
      const seqs = seqsOf(socket.frames, id);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => (seqs[0] ?? 0) + i));
      const replyFrame = socket.frames.find((f) => f.type === 'event' && f.seq === r1.seq);
      expect(replyFrame).toMatchObject({
        event: { type: 'MessageSent', data: { threadRootId: root.messageId, threadParticipantIds: [ann] } },
      });

      const thread = await b.listThreadMessages(id, root.messageId, { minPosition: r2.position });
      expect(thread.root).toMatchObject({
        replyCount: 2,
        lastReplyAt: r2.sentAt,
        threadParticipantIds: [ann, ben],
      });
      expect(thread.items.map((m) => m.messageId)).toEqual([r1.messageId, r2.messageId]);
      const timeline = await b.listMessages(id, { includeThreads: false });
      expect(timeline.items.map((m) => m.messageId)).toEqual([root.messageId, main.messageId]);

      // ann started the thread (group default: mentions): ben's reply notifies her with kind thread.
      await waitFor(
        async () => (await a.listNotifications()).items.some((n) => n.messageId === r1.messageId),
        {
          what: "ann's thread notification",
        },
      );
      const [notification] = (await a.listNotifications()).items.filter((n) => n.messageId === r1.messageId);
      expect(notification).toMatchObject({ kind: 'thread', actorId: ben });

      const bad = await b
        .sendMessage(id, { body: 'nested', threadRootId: r1.messageId })
        .catch((e: unknown) => e);
      expect(bad).toBeInstanceOf(ChatApiError);
      expect(bad).toMatchObject({ status: 400, code: 'validation_failed' });
    } finally {
      socket.ws.close();
    }
  });

  it('search finds a member’s messages with marked snippets; a non-member finds nothing', async () => {
    const a = apiFor(ann);
    const { conversationId: id } = await a.createConversation({ kind: 'group', members: [ben], title: 'S' });
    const sent = await a.sendMessage(id, { body: 'the axolotl <b>regrows</b> limbs' });
    const hits = await apiFor(ben).search('axolotl', { minPosition: sent.position });
    expect(hits.items).toEqual([
      expect.objectContaining({
        messageId: sent.messageId,
        conversationId: id,
        snippet: expect.stringContaining('<mark>axolotl</mark>'),
      }),
    ]);
    expect(hits.items[0]?.snippet).not.toContain('<b>');
    expect(await apiFor(eve).search('axolotl', { minPosition: sent.position })).toEqual({
      items: [],
      nextCursor: null,
    });
    expect(await apiFor(eve).search('axolotl', { conversationId: id })).toEqual({
      items: [],
      nextCursor: null,
    });
    const bad = await apiFor(ben)
      .search('axolotl', { cursor: 'forged' })
      .catch((e: unknown) => e);
    expect(bad).toMatchObject({ status: 400, code: 'validation_failed' });
  });
});
