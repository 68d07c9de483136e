import { randomUUID } from 'node:crypto';
import {
  getConversation,
  listConversations,
  listMessages,
  listThreadMessages,
  moderationSnapshot,
  readCheckpoint,
  unreadSummary,
} from '@chat/db';
import { type Conversation, receiptsStream, type UserChannelMessage } from '@chat/events';
import { waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector } from '../src/index.js';
import { expectedConversation, expectedList, expectedUnread, type Fold, fold } from './fold.js';
import { createHarness, type Harness, readWholeLog, silentLogger, waitForCheckpoint } from './harness.js';
import { ChatSimulator, simulate } from './simulator.js';

let h: Harness;
let sim: ChatSimulator;
let f: Fold;
const stop = new AbortController();
let running: Promise<void>;
/** The last message published to each user about each conversation (`userId|conversationId`). */
const published = new Map<string, UserChannelMessage>();
/** The conversation of each user's last MarkRead, appended after the random commands. */
const lastRead = new Map<string, string>();

beforeAll(async () => {
  h = await createHarness('projection');
  const projector = createProjector({
    store: h.store,
    pool: h.pool,
    logger: silentLogger,
    batchSize: 500,
    publish: (userId, message) =>
      published.set(`${userId}|${message.type === 'unread' ? message.conversationId : ''}`, message),
  });
  running = projector.run(stop.signal);
  sim = new ChatSimulator({ users: 35, seed: 20261122 });
  let last = await simulate(h.store, sim, { conversations: 55, commands: 5200 });
  // Last, every user who can reads one more message somewhere: their final unread frame then carries
  // their final counts (only MarkReads and deletions of unread messages publish one, API.md §4).
  for (const userId of sim.users) {
    const c = sim.conversations.find((x) => (x.readSeq.get(userId) ?? x.revision) < x.revision);
    if (!c) continue;
    const upToSeq = (c.readSeq.get(userId) ?? 0) + 1;
    c.readSeq.set(userId, upToSeq);
    const readAt = '2030-01-01T00:00:00.000Z';
    const metadata = { userId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 };
    const data = { conversationId: c.id, userId, upToSeq, readAt };
    const appended = await h.store.append(
      receiptsStream(c.id),
      [{ id: randomUUID(), type: 'ConversationRead', data, metadata }],
      'any',
    );
    if (appended.position > last) last = appended.position;
    lastRead.set(userId, c.id);
  }
  await waitForCheckpoint(h.db, last);
  f = fold(await readWholeLog(h.store, last));
}, 120_000);

afterAll(async () => {
  stop.abort();
  await running;
  await h.close();
});

describe('read models equal a plain fold over the log (5,200 random commands)', () => {
  it('lists every user’s conversations in order, page by page', async () => {
    for (const userId of sim.users) {
      const seen: Conversation[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await listConversations(h.db, userId, { limit: 7, cursor });
        seen.push(...page.items);
        if (!page.nextCursor) break;
        cursor = page.nextCursor;
      }
      expect(seen, userId).toEqual(expectedList(f, userId));
    }
  });

  it('answers each conversation for members and hides it from everyone else', async () => {
    let members = 0;
    const levels = new Set<string>();
    for (const c of sim.conversations) {
      const outsiders = sim.users.filter((u) => !c.everMembers.has(u)).slice(0, 3);
      for (const userId of [...c.everMembers, ...outsiders]) {
        const expected = expectedConversation(f, c.id, userId);
        if (expected) members++;
        if (expected && f.levels.has(`${c.id}|${userId}`))
          levels.add(`${expected.kind}:${expected.notificationLevel}`);
        expect(await getConversation(h.db, userId, c.id), `${c.id} ${userId}`).toEqual(expected);
      }
    }
    expect(members).toBeGreaterThan(100);
    // Set levels, every one of them, in both kinds of conversation, over the defaults.
    expect([...levels].sort()).toEqual([
      'direct:all',
      'direct:mentions',
      'direct:none',
      'group:all',
      'group:mentions',
      'group:none',
    ]);
  });

  it('sums unread counts per user', async () => {
    let someUnread = 0;
    for (const userId of sim.users) {
      const expected = expectedUnread(f, userId);
      if (expected.total > 0) someUnread++;
      expect(await unreadSummary(h.db, userId), userId).toEqual(expected);
    }
    expect(someUnread).toBeGreaterThan(5);
  });

  it('published each reader’s final counts with their last MarkRead', async () => {
    await waitFor(() => [...lastRead].every(([userId, c]) => published.has(`${userId}|${c}`)), {
      what: 'every last MarkRead published',
    });
    for (const [userId, conversationId] of lastRead) {
      expect(published.get(`${userId}|${conversationId}`), userId).toEqual({
        type: 'unread',
        conversationId,
        unreadCount: expectedConversation(f, conversationId, userId)?.unreadCount,
        total: expectedUnread(f, userId).total,
      });
    }
    expect(lastRead.size).toBeGreaterThan(20);
  });

  it('pages messages backwards, forwards and from the newest page', async () => {
    for (const c of sim.conversations.slice(0, 20)) {
      const all = f.conversations.get(c.id)?.messages ?? [];
      const newest = await listMessages(h.db, c.id, { limit: 5 });
      expect(newest).toEqual({ items: all.slice(-5), hasMore: all.length > 5 });

      const backwards = [...newest.items];
      let hasMore = newest.hasMore;
      while (hasMore) {
        const first = backwards[0];
        if (!first) break;
        const page = await listMessages(h.db, c.id, { before: first.seq, limit: 6 });
        backwards.unshift(...page.items);
        hasMore = page.hasMore;
      }
      expect(backwards).toEqual(all);

      const forwards: typeof all = [];
      let after = 0;
      for (;;) {
        const page = await listMessages(h.db, c.id, { after, limit: 9 });
        forwards.push(...page.items);
        const last = page.items.at(-1);
        if (!page.hasMore || !last) break;
        after = last.seq;
      }
      expect(forwards).toEqual(all);
      expect(all.some((m) => m.deleted) || all.length < 10).toBe(true);
    }
    // The comparison covered reactions: on many messages, several on some, taken back on others.
    const messages = [...f.conversations.values()].flatMap((c) => c.messages);
    expect(messages.filter((m) => m.reactions.length > 0).length).toBeGreaterThan(50);
    expect(messages.some((m) => m.reactions.length > 2)).toBe(true);
    expect(messages.some((m) => m.reactions.some((r) => r.count > 1))).toBe(true);
    // ... and threads: many roots, some with more than three repliers, replies deleted in some.
    const roots = messages.filter((m) => m.replyCount > 0);
    expect(roots.length).toBeGreaterThan(50);
    expect(roots.some((m) => m.threadParticipantIds.length === 3 && m.replyCount > 3)).toBe(true);
    expect(messages.some((m) => m.threadRootId !== null && m.deleted)).toBe(true);
  });

  it('pages each thread, and the main timeline without thread replies, as the fold does', async () => {
    for (const c of sim.conversations.slice(0, 20)) {
      const all = f.conversations.get(c.id)?.messages ?? [];
      const main = all.filter((m) => m.threadRootId === null);
      const timeline = await listMessages(h.db, c.id, { limit: 200, includeThreads: false });
      expect(timeline).toEqual({ items: main.slice(-200), hasMore: main.length > 200 });
      for (const root of main.filter((m) => m.replyCount > 0)) {
        const replies = all.filter((m) => m.threadRootId === root.messageId);
        const collected: typeof replies = [];
        let after = -1;
        for (;;) {
          const page = await listThreadMessages(h.db, c.id, root.messageId, { after, limit: 2 });
          expect(page?.root).toEqual(root);
          collected.push(...(page?.items ?? []));
          const last = page?.items.at(-1);
          if (!page?.hasMore || !last) break;
          after = last.seq;
        }
        expect(collected).toEqual(replies);
      }
    }
  });

  it('holds the bans, reports and blocks of the log, and the roles in every conversation (issue 16)', async () => {
    const snapshot = await moderationSnapshot(h.db);
    const byKey = <T>(rows: T[], key: (r: T) => string) => new Map(rows.map((r) => [key(r), r]));
    expect(snapshot.bans).toEqual(f.moderation.bans);
    expect(byKey(snapshot.reports as Record<string, unknown>[], (r) => String(r.report_id))).toEqual(
      f.moderation.reports,
    );
    expect(byKey(snapshot.user_blocks, (r) => `${r.user_id}|${r.blocked_user_id}`)).toEqual(
      f.moderation.blocks,
    );
    expect(snapshot.bans.length).toBeGreaterThan(3);
    expect(f.moderation.blocks.size).toBeGreaterThan(3);
    const statuses = new Set([...f.moderation.reports.values()].map((r) => r.status));
    expect(statuses).toEqual(new Set(['open', 'resolved']));
    // Roles reach the conversation queries (compared with the fold above); some conversations have admins.
    const withAdmins = [...f.conversations.values()].filter((c) => c.admins.size > 0);
    expect(withAdmins.length).toBeGreaterThan(3);
  });

  it('stored the checkpoint of the last event', async () => {
    const log = await readWholeLog(h.store);
    expect(await readCheckpoint(h.db)).toBe(log.at(-1)?.position);
  });
});
