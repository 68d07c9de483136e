import { randomUUID } from 'node:crypto';
import { BlockList, ChatApi, ChatApiError } from '@chat/client';
import type { ServerFrame } from '@chat/events';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectContiguous, rawSocket, seqsOf } from './support/clients.js';
import { type Cluster, startCluster } from './support/cluster.js';

// Moderation and blocking (issue 16) end to end: the SDK's typed methods against real processes (every
// answer checked against its schema), and the moderation events on a member's raw socket, in seq order.

let cluster: Cluster;
const u = (name: string) => `${name}-${randomUUID().slice(0, 6)}`;
const apiFor = (userId: string, roles?: string[]) =>
  new ChatApi({
    baseUrl: cluster.api,
    token: () => signToken(userId, roles ? { roles } : {}),
    validateResponses: true,
  });

beforeAll(async () => {
  cluster = await startCluster({ label: 'moderation', gateways: 1 });
});
afterAll(async () => {
  await cluster?.stop();
});

const refusal = async (promise: Promise<unknown>): Promise<ChatApiError> => {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ChatApiError);
  return err as ChatApiError;
};

describe('moderation through the SDK, seen on a raw socket', () => {
  it('roles, a moderator’s delete, a ban and its lift reach a member’s socket gap-free in seq order; members cannot', async () => {
    const [owner, admin, member, troll] = [u('owner'), u('admin'), u('member'), u('troll')];
    const [o, a, m] = [apiFor(owner), apiFor(admin), apiFor(member)];
    const { conversationId: id } = await o.createConversation({
      kind: 'group',
      members: [admin, member, troll],
      title: 'moderated',
    });
    await waitFor(() => m.getConversation(id).then(() => true), { what: 'conversation visible' });
    const socket = await rawSocket(cluster.gateways[0]!.url, await signToken(member));
    try {
      const promoted = await o.setMemberRole(id, admin, 'admin'); // seq 1
      expect((await refusal(m.setMemberRole(id, member, 'admin'))).status).toBe(403);
      const spam = await apiFor(troll).sendMessage(id, { body: 'spam' }); // seq 2
      expect((await refusal(m.deleteMessage(id, spam.messageId))).code).toBe('forbidden');
      const deleted = await a.deleteMessage(id, spam.messageId); // seq 3
      expect((await refusal(m.banMember(id, troll))).code).toBe('forbidden');
      const banned = await a.banMember(id, troll); // seq 4 MemberLeft, seq 5 MemberBanned
      expect(banned.seq).toBe(5);
      expect((await refusal(o.addMember(id, troll))).code).toBe('forbidden');
      const lifted = await o.unbanMember(id, troll); // seq 6
      const rejoined = await m.addMember(id, troll); // seq 7
      expect([promoted.seq, deleted.seq, lifted.seq, rejoined.seq]).toEqual([1, 3, 6, 7]);

      await waitFor(() => seqsOf(socket.frames, id).includes(7), {
        what: 'seq 7 on the socket',
        timeoutMs: 30_000,
      });
      const seqs = seqsOf(socket.frames, id);
      expectContiguous(seqs, 7);
      const events = socket.frames.flatMap((f) =>
        f.type === 'event' && f.conversationId === id ? [f.event] : [],
      );
      expect(events.filter((e) => e.revision >= 1).map((e) => [e.revision, e.type])).toEqual([
        [1, 'MemberRoleChanged'],
        [2, 'MessageSent'],
        [3, 'MessageDeleted'],
        [4, 'MemberLeft'],
        [5, 'MemberBanned'],
        [6, 'MemberUnbanned'],
        [7, 'MemberJoined'],
      ]);
      // The audit trail shows who did what.
      expect(events.find((e) => e.type === 'MessageDeleted')?.data).toMatchObject({ deletedBy: admin });
      expect(events.find((e) => e.type === 'MemberBanned')?.data).toMatchObject({
        userId: troll,
        bannedBy: admin,
      });

      const view = await o.getModeration(id, { minPosition: rejoined.position });
      expect(view.members.map((x) => [x.userId, x.role])).toEqual([
        [owner, 'owner'],
        [admin, 'admin'],
        [member, 'member'],
        [troll, 'member'],
      ]);
      const messages = await m.listMessages(id, { minPosition: rejoined.position });
      expect(messages.items.find((x) => x.messageId === spam.messageId)).toMatchObject({
        deleted: true,
        deletedBy: admin,
      });
    } finally {
      socket.ws.close();
    }
  });

  it('reports: members file, non-members cannot, an admin resolves from the queue', async () => {
    const [owner, member, outsider] = [u('owner'), u('member'), u('outsider')];
    const o = apiFor(owner);
    const { conversationId: id } = await o.createConversation({ kind: 'group', members: [member] });
    const sent = await o.sendMessage(id, { body: 'rude words' });
    expect((await refusal(apiFor(outsider).reportMessage(id, sent.messageId, 'spam'))).status).toBe(404);
    const report = await apiFor(member).reportMessage(id, sent.messageId, 'abuse');
    const moderator = apiFor(u('moderator'), ['admin']);
    expect((await refusal(o.listReports())).status).toBe(403);
    const queue = await moderator.listReports({ minPosition: report.position });
    expect(queue.items.find((r) => r.reportId === report.reportId)).toMatchObject({
      status: 'open',
      reporterId: member,
      reason: 'abuse',
    });
    const resolved = await moderator.resolveReport(report.reportId, { action: 'dismissed', note: 'banter' });
    const done = await moderator.listReports({ status: 'resolved', minPosition: resolved.position });
    expect(done.items.find((r) => r.reportId === report.reportId)?.resolution).toMatchObject({
      action: 'dismissed',
      note: 'banter',
    });
  });

  it('blocks: a blocked user cannot DM the blocker; the block list hides them in groups; unblocking restores', async () => {
    const [ann, mal, bea] = [u('ann'), u('mal'), u('bea')];
    const blocks = new BlockList(apiFor(ann));
    await blocks.block(mal);
    const err = await refusal(apiFor(mal).createConversation({ kind: 'direct', members: [ann] }));
    expect([err.status, err.code]).toEqual([403, 'forbidden']);

    const { conversationId: group } = await apiFor(bea).createConversation({
      kind: 'group',
      members: [ann, mal],
    });
    await apiFor(mal).sendMessage(group, { body: 'hi ann' });
    const last = await apiFor(bea).sendMessage(group, { body: 'hi all' });
    const page = await apiFor(ann).listMessages(group, { minPosition: last.position });
    expect(page.items.map((x) => x.body)).toEqual(['hi ann', 'hi all']);
    expect(blocks.visible(page.items).map((x) => x.body)).toEqual(['hi all']);

    const fresh = new BlockList(apiFor(ann));
    await fresh.load();
    expect(fresh.has(mal)).toBe(true);
    await blocks.unblock(mal);
    expect((await apiFor(mal).createConversation({ kind: 'direct', members: [ann] })).conversationId).toEqual(
      expect.any(String),
    );
  });

  it('presence frames never cross a block, either way, while a third member sees both; an unblock restores them', async () => {
    const [ann, mal, cat] = [u('ann'), u('mal'), u('cat')];
    const { conversationId: group } = await apiFor(cat).createConversation({
      kind: 'group',
      members: [ann, mal],
    });
    for (const user of [ann, mal, cat]) {
      await waitFor(
        () =>
          apiFor(user)
            .getConversation(group)
            .then(() => true),
        { what: 'conversation visible' },
      );
    }
    const url = cluster.gateways[0]!.url;
    const open = async (user: string) => rawSocket(url, await signToken(user));
    type Log = { frames: readonly ServerFrame[] };
    const statuses = (socket: Log, user: string) =>
      socket.frames.flatMap((f) => (f.type === 'presence' && f.userId === user ? [f.status] : []));
    // Every frame a socket got before it got this message is in its log (a socket keeps its order).
    const barrier = async (...sockets: Log[]) => {
      const { seq } = await apiFor(cat).sendMessage(group, { body: 'barrier' });
      for (const s of sockets) {
        await waitFor(() => seqsOf(s.frames, group).includes(seq), {
          what: `seq ${seq}`,
          timeoutMs: 30_000,
        });
      }
    };
    const sc = await open(cat);
    const sa = await open(ann);
    await waitFor(() => statuses(sc, ann).includes('online'), { what: 'cat sees ann online' });
    // Blocked while ann's socket is open: the gateway learns it from the relay's control message.
    await apiFor(ann).blockUser(mal);
    await barrier(sa, sc);
    // mal connects after the block: the gateway reads mal's blocks with the memberships.
    const sb = await open(mal);
    await waitFor(() => statuses(sc, mal).includes('online'), { what: 'cat sees mal online' });
    sb.ws.close();
    await waitFor(() => statuses(sc, mal).includes('offline'), { what: 'cat sees mal offline' });
    const sb2 = await open(mal);
    await waitFor(() => statuses(sc, mal).length === 3, { what: 'cat sees mal online again' });
    sa.ws.close();
    await waitFor(() => statuses(sc, ann).includes('offline'), { what: 'cat sees ann offline' });
    await barrier(sc, sb2);
    expect(statuses(sc, mal)).toEqual(['online', 'offline', 'online']);
    expect(statuses(sa, mal)).toEqual([]);
    expect(statuses(sb2, ann)).toEqual([]);
    expect(
      sa.frames.concat(sb.frames, sb2.frames).filter((f) => f.type !== 'event' && f.type !== 'hello'),
    ).toEqual([]);

    await apiFor(ann).unblockUser(mal);
    await barrier(sc, sb2);
    const sa2 = await open(ann);
    await waitFor(() => statuses(sb2, ann).includes('online'), {
      what: 'mal sees ann online after the unblock',
    });
    sb2.ws.close();
    await waitFor(() => statuses(sa2, mal).includes('offline'), {
      what: 'ann sees mal offline after the unblock',
    });
    for (const s of [sc, sa2]) s.ws.close();
  });
});
