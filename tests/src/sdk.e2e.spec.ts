import { randomUUID } from 'node:crypto';
import { ChatApi, ChatApiError, ChatClient, UnreadTracker } from '@chat/client';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Cluster, startCluster } from './support/cluster.js';

// The SDK against the real system: every HTTP method once, every answer checked against its route's
// schema (`validateResponses`), refusals as ChatApiError; and the unread counts it keeps from a live
// socket equal the server's, also across a gateway crash.

let cluster: Cluster;
const u = (name: string) => `${name}-${randomUUID().slice(0, 6)}`;
const [alice, bob, carol, dave, erin, fred] = [
  u('alice'),
  u('bob'),
  u('carol'),
  u('dave'),
  u('erin'),
  u('fred'),
];
const apiFor = (userId: string, roles?: string[]) =>
  new ChatApi({
    baseUrl: cluster.api,
    token: () => signToken(userId, roles ? { roles } : {}),
    validateResponses: true,
  });
const clients: ChatClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ label: 'sdk', gateways: 1, notifier: true });
});

afterAll(async () => {
  for (const c of clients) c.close();
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

describe('ChatApi against the command-api', () => {
  it('calls every route of API.md §2 with answers that match their schemas', async () => {
    const a = apiFor(alice);
    const b = apiFor(bob);
    const dev = await new ChatApi({ baseUrl: cluster.api, validateResponses: true }).devToken(alice);
    expect(dev.userId).toBe(alice);

    const group = await a.createConversation({ kind: 'group', members: [bob], title: 'SDK' });
    expect(group.seq).toBe(0);
    const direct = await a.createConversation({ kind: 'direct', members: [carol] });
    expect(
      (await apiFor(carol).createConversation({ kind: 'direct', members: [alice] })).conversationId,
    ).toBe(direct.conversationId);
    const id = group.conversationId;
    // A group notifies mentions and replies by default (v1.1): bob wants every message.
    expect((await b.setNotificationLevel(id, 'all')).position).toMatch(/^[0-9a-f]{32}$/);
    expect((await a.addMember(id, carol)).seq).toBe(1);
    expect((await a.removeMember(id, carol)).seq).toBe(2);

    const first = await a.sendMessage(id, { body: 'first' });
    const again = await a.sendMessage(id, { body: 'first', messageId: first.messageId });
    expect(again).toEqual(first);
    const reply = await b.sendMessage(id, { body: 'reply', replyTo: first.messageId });
    const edit = await a.editMessage(id, first.messageId, 'first, edited');
    const del = await b.deleteMessage(id, reply.messageId);
    expect(del.seq).toBe(edit.seq + 1);
    // Bob's reply moved his watermark to its seq already; the deletion is beyond it.
    expect((await b.markRead(id, del.seq)).readSeq).toBe(del.seq);
    expect(await b.typing(id)).toEqual({ throttled: false });
    expect((await b.mute(id, new Date(Date.now() + 60_000))).position).toMatch(/^[0-9a-f]{32}$/);
    expect((await b.mute(id, null)).position).toMatch(/^[0-9a-f]{32}$/);

    const fresh = { minPosition: del.position };
    const conversation = await a.getConversation(id, fresh);
    expect(conversation.lastMessage).toMatchObject({
      messageId: reply.messageId,
      deleted: true,
      preview: '',
    });
    const page1 = await a.listConversations({ limit: 1, ...fresh });
    expect(page1.items).toHaveLength(1);
    expect(page1.nextCursor).not.toBeNull();
    const all = await a.allConversations({ limit: 1 });
    expect(all.map((c) => c.conversationId).sort()).toEqual([id, direct.conversationId].sort());
    const newest = await a.listMessages(id, { limit: 1, ...fresh });
    expect(newest.items.map((m) => m.deleted)).toEqual([true]);
    expect(newest.hasMore).toBe(true);
    const older = await a.listMessages(id, { before: newest.items[0]!.seq });
    expect(older.items.map((m) => m.body)).toEqual(['first, edited']);
    const after = await a.listMessages(id, { after: first.seq });
    expect(after.items.map((m) => m.messageId)).toEqual([reply.messageId]);
    expect(await b.unread(fresh)).toEqual({ total: 0, conversations: 0 });

    await waitFor(async () => (await b.listNotifications()).items.length > 0, { what: "bob's notification" });
    const inbox = await b.listNotifications({ unreadOnly: true, limit: 10 });
    expect((await b.readNotifications({ notificationIds: [inbox.items[0]!.notificationId] })).updated).toBe(
      1,
    );
    expect((await b.readNotifications('all')).updated).toBe(inbox.items.length - 1);

    // More ids than one request may carry: the SDK splits them.
    const many = [bob, ...Array.from({ length: 150 }, (_, i) => `stranger-${i}`)];
    const presence = await a.presence(many);
    expect(presence.users).toHaveLength(151);
    expect(presence.users[0]).toMatchObject({ userId: bob });
    expect(new Set(presence.users.slice(1).map((x) => x.status))).toEqual(new Set(['unknown']));

    const stream = await apiFor(carol, ['admin']).adminStream(`conversation-${id}`, { limit: 3 });
    expect(stream.events.map((e) => e.type)).toEqual(['ConversationStarted', 'MemberJoined', 'MemberLeft']);
  });

  it('throws ChatApiError with the contract code and status', async () => {
    const a = apiFor(alice);
    const nope = await refusal(a.getConversation(randomUUID()));
    expect([nope.status, nope.code]).toEqual([404, 'not_found']);
    const bad = await refusal(a.createConversation({ kind: 'direct', members: [] }));
    expect([bad.status, bad.code]).toEqual([400, 'validation_failed']);
    expect(bad.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: ['members'] })]));
    const anonymous = await refusal(new ChatApi({ baseUrl: cluster.api }).unread());
    expect([anonymous.status, anonymous.code]).toEqual([401, 'unauthorized']);
    const forbidden = await refusal(a.adminStream('conversation-x'));
    expect(forbidden.code).toBe('forbidden');
    const down = await refusal(new ChatApi({ baseUrl: 'http://127.0.0.1:9', token: 't' }).unread());
    expect([down.status, down.code]).toEqual([0, 'unavailable']);
  });

  it('knows the routes the server serves, from its OpenAPI document', async () => {
    const a = apiFor(alice);
    expect(await a.hasRoute({ method: 'POST', path: '/v1/conversations/:conversationId/messages' })).toBe(
      true,
    );
    expect(await a.hasRoute({ method: 'POST', path: '/v1/conversations/:conversationId/nothing' })).toBe(
      false,
    );
  });
});

describe('UnreadTracker on a live socket', () => {
  it("equals the server's counts: live, after a read elsewhere, and after a gateway crash", async () => {
    const a = apiFor(dave);
    const b = apiFor(erin);
    const gateway = cluster.gateways[0]!;
    const client = new ChatClient({
      url: () => cluster.gateways[0]!.url,
      token: () => signToken(erin),
      WebSocket: WebSocket as unknown as ConstructorParameters<typeof ChatClient>[0]['WebSocket'] & object,
      reconnect: { baseDelayMs: 50, maxDelayMs: 500 },
    });
    clients.push(client);
    const tracker = new UnreadTracker(client, b);
    await client.connect();
    await tracker.ready();
    const { conversationId: one } = await a.createConversation({
      kind: 'group',
      members: [erin],
      title: 'one',
    });
    const { conversationId: two } = await a.createConversation({
      kind: 'group',
      members: [erin],
      title: 'two',
    });
    for (let i = 0; i < 5; i++) await a.sendMessage(one, { body: `one ${i}` });
    for (let i = 0; i < 3; i++) await a.sendMessage(two, { body: `two ${i}` });
    // The tracker counts the messages themselves (v1.1 sends no unread frame for them; a server before
    // v1.1 sent one per message, which on a loaded host could overtake its message and leave the count
    // one too high until the tracker's re-read a second later): it settles at the server's counts.
    const counts = () => [tracker.get(one), tracker.get(two), tracker.total].join(',');
    await waitFor(() => counts() === '5,3,8', { timeoutMs: 15_000, what: `5,3,8 unread (has ${counts()})` });
    await new Promise((r) => setTimeout(r, 1500));
    expect(counts()).toBe('5,3,8');

    // Erin reads `two` on another device: receipt + unread frame.
    const last = await b.getConversation(two);
    await b.markRead(two, last.lastSeq);
    await waitFor(() => tracker.get(two) === 0, { what: 'two read' });
    expect(tracker.total).toBe(5);
    // Erin's own message resets `one`.
    await b.sendMessage(one, { body: 'mine' });
    await waitFor(() => tracker.get(one) === 0, { what: 'own message resets' });

    await gateway.proc.kill();
    let position = '';
    for (let i = 0; i < 4; i++) ({ position } = await a.sendMessage(two, { body: `while away ${i}` }));
    cluster.gateways[0] = await cluster.startGateway(gateway.name, {}, gateway.port);
    await waitFor(() => tracker.get(two) === 4 && client.state === 'open', {
      timeoutMs: 30_000,
      what: `4 unread in two after the crash (has ${tracker.get(two)})`,
    });
    expect(await b.unread({ minPosition: position })).toEqual({ total: 4, conversations: 1 });
    expect([tracker.get(one), tracker.get(two), tracker.total]).toEqual([0, 4, 4]);
  });
});

describe('ChatClient when its user is removed and added again', () => {
  it('delivers their leave, their comeback and what follows, none of the absence, without resuming in a loop', async () => {
    const a = apiFor(alice);
    const WS = WebSocket as unknown as ConstructorParameters<typeof ChatClient>[0]['WebSocket'] & object;
    const connect = async (positions?: Record<string, number>) => {
      const client = new ChatClient({
        url: cluster.gateways[0]!.url,
        token: () => signToken(fred),
        WebSocket: WS,
        ...(positions ? { positions } : {}),
      });
      clients.push(client);
      const seen: string[] = [];
      let resumes = 0;
      client.on('event', (f) => {
        const data = f.event.data as { body?: string };
        seen.push(`${f.seq} ${f.event.type}${data.body ? ` ${data.body}` : ''}`);
      });
      client.on('resumed', () => resumes++);
      await client.connect();
      return { client, seen, resumes: () => resumes };
    };
    const live = await connect();
    const { conversationId: id } = await a.createConversation({
      kind: 'group',
      members: [fred],
      title: 'away',
    });
    await a.sendMessage(id, { body: 'before' });
    await a.removeMember(id, fred);
    await a.sendMessage(id, { body: 'while away' });
    await a.addMember(id, fred);
    await a.sendMessage(id, { body: 'after' });
    const expected = [
      '0 ConversationStarted',
      '1 MessageSent before',
      '2 MemberLeft',
      '4 MemberJoined',
      '5 MessageSent after',
    ];
    await waitFor(() => live.seen.length >= expected.length, {
      timeoutMs: 15_000,
      what: `fred's five events (has ${live.seen.join(', ')})`,
    });
    // A client that took the jump to seq 4 for a gap would resume again and again, and show nothing more.
    await a.sendMessage(id, { body: 'later' });
    await waitFor(() => live.seen.length === expected.length + 1, { what: 'the message after the comeback' });
    expect(live.seen).toEqual([...expected, '6 MessageSent later']);
    expect(live.resumes()).toBe(1);

    // A device that stored its position at fred's leave resumes from inside the absence.
    const stored = await connect({ [id]: 2 });
    await waitFor(() => stored.seen.length >= 3, {
      what: `the replay from the leave (has ${stored.seen.join(', ')})`,
    });
    expect(stored.seen).toEqual(['4 MemberJoined', '5 MessageSent after', '6 MessageSent later']);
    expect(stored.resumes()).toBe(1);
  });
});
