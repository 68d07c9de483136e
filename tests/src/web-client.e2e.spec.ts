import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildWebClient,
  type ConsoleEntry,
  findChromium,
  launchChromium,
  openPage,
} from './support/browser.js';
import { type Cluster, startCluster } from './support/cluster.js';

// The web client (apps/web) in a real browser against the whole system: two people in two browser
// contexts — one on a desktop-sized window, one on a 360 px phone — chat, and keep chatting through a
// gateway crash. Every check reads the page's DOM, as a person would see it.

const chromiumFound = findChromium();
if ('reason' in chromiumFound) console.warn(`[web-client] browser tests skipped: ${chromiumFound.reason}`);

const u = (name: string) => `${name}-${randomUUID().slice(0, 6)}`;
const alice = u('alice');
const bob = u('bob');
const carol = u('carol');

type Person = { userId: string; context: BrowserContext; page: Page; errors: ConsoleEntry[] };

let cluster: Cluster;
let browser: Browser;
let a: Person;
let b: Person;
let direct: string;
const outages: { from: number; to: number }[] = [];

const signIn = async (userId: string, viewport: { width: number; height: number }): Promise<Person> => {
  const context = await browser.newContext({ viewport });
  const { page, errors } = await openPage(context);
  await page.goto(cluster.api);
  await page.getByLabel('Sign in as (any user id)').fill(userId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('unread-total').waitFor({ timeout: 20_000 });
  return { userId, context, page, errors };
};

/** Waits for what a person would wait for: a page on a busy shared host may take a few seconds. */
const eventually = <T>(read: () => T | Promise<T>, timeout = 15_000) =>
  expect.poll(read, { timeout, interval: 100 });

const conversationItem = (p: Person, name: string) =>
  p.page.locator(`[data-testid="conversation"][data-name="${name}"]`);

/** The messages the page shows, in DOM order: seq, id and text. */
const shownMessages = (p: Person) =>
  p.page.getByTestId('message').evaluateAll((items) =>
    items.map((li) => ({
      seq: Number(li.getAttribute('data-seq')),
      id: li.getAttribute('data-message-id') ?? '',
      body: li.querySelector('[data-testid="message-body"]')?.textContent ?? '',
    })),
  );

const send = async (p: Person, text: string) => {
  const box = p.page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
  await eventually(async () => (await shownMessages(p)).some((m) => m.body === text)).toBe(true);
};

const within = (p: Person, text: string) => p.page.getByTestId('message').filter({ hasText: text });

describe.skipIf('reason' in chromiumFound)('web client in Chromium', () => {
  beforeAll(async () => {
    const webRoot = await buildWebClient();
    cluster = await startCluster({ label: 'web', gateways: 1, notifier: true, webRoot });
    browser = await launchChromium((chromiumFound as { path: string }).path);
    a = await signIn(alice, { width: 1280, height: 800 });
    b = await signIn(bob, { width: 360, height: 740 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('starts a direct conversation; the other side sees it, unread, with presence', async () => {
    await a.page.getByRole('button', { name: 'New' }).click();
    await a.page.getByLabel('With (user id)').fill(bob);
    await a.page.getByRole('button', { name: 'Start' }).click();
    await eventually(() => a.page.getByRole('heading', { name: bob }).count()).toBe(1);
    direct = (await a.page.getByTestId('conversation').first().getAttribute('data-id')) ?? '';
    expect(direct).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(() => conversationItem(b, alice).count(), 10_000).toBe(1);

    await send(a, 'hello bob');
    // Bob has not opened it: a badge on the conversation and the total.
    await eventually(() => conversationItem(b, alice).getByTestId('unread-badge').textContent()).toBe('1');
    await eventually(() => b.page.getByTestId('unread-total').getAttribute('data-count')).toBe('1');
    // Both are online, and each sees the other's dot.
    await eventually(() => a.page.getByTestId(`presence-${bob}`).first().getAttribute('data-status')).toBe(
      'online',
    );
    await eventually(() => b.page.getByTestId(`presence-${alice}`).first().getAttribute('data-status')).toBe(
      'online',
    );
  });

  it('opening it reads it: the badge goes, and the sender sees "seen by"', async () => {
    await conversationItem(b, alice).click();
    await eventually(async () => (await shownMessages(b)).map((m) => m.body)).toEqual(['hello bob']);
    await eventually(() => b.page.getByTestId('unread-total').getAttribute('data-count')).toBe('0');
    await eventually(() => a.page.getByTestId('seen-by').textContent()).toBe(`Seen by ${bob}`);
  });

  it('shows typing, then the reply, on the other side', async () => {
    await b.page.getByRole('textbox', { name: 'Message' }).pressSequentially('hi al', { delay: 20 });
    await eventually(() => a.page.getByTestId('typing').textContent()).toBe(`${bob} is typing…`);
    await b.page.getByRole('textbox', { name: 'Message' }).fill('hi alice');
    await b.page.getByRole('textbox', { name: 'Message' }).press('Enter');
    await eventually(async () => (await shownMessages(a)).map((m) => m.body)).toEqual([
      'hello bob',
      'hi alice',
    ]);
    // The reply ended the typing indicator.
    await eventually(() => a.page.getByTestId('typing').textContent()).toBe('');
  });

  it('edits, deletes and replies, live on the other side', async () => {
    await send(a, 'a typo mesage');
    await within(a, 'a typo mesage').getByRole('button', { name: 'Edit' }).click();
    await eventually(() => a.page.getByRole('textbox', { name: 'Message' }).inputValue()).toBe(
      'a typo mesage',
    );
    await a.page.getByRole('textbox', { name: 'Message' }).fill('a typo message');
    await a.page.getByRole('textbox', { name: 'Message' }).press('Enter');
    await eventually(() => within(b, 'a typo message').textContent()).toContain('(edited)');

    await send(a, 'sent by mistake');
    await within(a, 'sent by mistake').getByRole('button', { name: 'Delete' }).click();
    await within(a, 'sent by mistake').getByRole('button', { name: 'Delete for everyone' }).click();
    await eventually(async () => (await shownMessages(b)).at(-1)?.body).toBe('message deleted');

    await within(b, 'hello bob').getByRole('button', { name: 'Reply', exact: true }).click();
    await send(b, 'replying to you');
    await eventually(() => within(a, 'replying to you').locator('blockquote').textContent()).toBe(
      `${alice}: hello bob`,
    );
  });

  it('resumes both pages with no gap when the gateway is killed and restarted mid-conversation', async () => {
    const gateway = cluster.gateways[0]!;
    const from = Date.now();
    await gateway.proc.kill();
    for (const p of [a, b])
      await eventually(() => p.page.getByTestId('connection-banner').getAttribute('data-state'), 15_000).toBe(
        'reconnecting',
      );
    // The conversation goes on while the pages are cut off (from other devices, over HTTP).
    for (let i = 1; i <= 3; i++)
      await cluster.http(alice, 'POST', `/v1/conversations/${direct}/messages`, {
        messageId: randomUUID(),
        body: `while away ${i}`,
      });
    await cluster.http(bob, 'POST', `/v1/conversations/${direct}/messages`, {
      messageId: randomUUID(),
      body: 'while away 4',
    });
    cluster.gateways[0] = await cluster.startGateway(gateway.name, {}, gateway.port);
    for (const p of [a, b])
      await eventually(() => p.page.getByTestId('connection-banner').count(), 30_000).toBe(0);
    outages.push({ from, to: Date.now() });
    const expected = [
      'hello bob',
      'hi alice',
      'a typo message',
      'message deleted',
      'replying to you',
      'while away 1',
      'while away 2',
      'while away 3',
      'while away 4',
    ];
    // What was missed arrives with the resume itself, before anything new is said.
    for (const p of [a, b])
      await eventually(async () => (await shownMessages(p)).map((m) => m.body)).toEqual(expected);
    await send(a, 'back again');
    expected.push('back again');
    for (const p of [a, b]) {
      await eventually(async () => (await shownMessages(p)).map((m) => m.body)).toEqual(expected);
      const shown = await shownMessages(p);
      const seqs = shown.map((m) => m.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      expect(new Set(seqs).size).toBe(seqs.length);
      expect(new Set(shown.map((m) => m.id)).size).toBe(shown.length);
    }
  });

  it('lists notifications in the inbox and marks them read', async () => {
    await b.page.getByRole('button', { name: 'Back' }).click();
    await b.page.getByTestId('inbox-tab').click();
    await eventually(() => b.page.getByTestId('notification').count()).toBeGreaterThanOrEqual(6);
    const unread = () => b.page.locator('[data-testid="notification"].unread').count();
    expect(await unread()).toBeGreaterThan(0);
    await b.page.getByRole('button', { name: 'Mark all read' }).click();
    await eventually(unread).toBe(0);
    await eventually(() => b.page.getByTestId('inbox-tab').locator('.badge').count()).toBe(0);
    await b.page.getByRole('button', { name: 'Chats' }).click();
  });

  it('creates a group and pages its history by scrolling up', async () => {
    await a.page.getByRole('button', { name: 'New' }).click();
    await a.page.getByLabel('Group').check();
    await a.page.getByLabel('Members (user ids, comma separated)').fill(`${bob}, ${carol}`);
    await a.page.getByLabel('Title').fill('Launch plan');
    await a.page.getByRole('button', { name: 'Start' }).click();
    await eventually(() => a.page.getByRole('heading', { name: 'Launch plan' }).count()).toBe(1);
    await eventually(() => conversationItem(b, 'Launch plan').count(), 10_000).toBe(1);
    const group =
      (await a.page.locator('[data-testid="conversation"].selected').getAttribute('data-id')) ?? '';

    const total = 130;
    for (let i = 1; i <= total; i++)
      await cluster.http(carol, 'POST', `/v1/conversations/${group}/messages`, {
        messageId: randomUUID(),
        body: `history ${i}`,
      });
    await eventually(
      () => conversationItem(b, 'Launch plan').getByTestId('unread-badge').textContent(),
      20_000,
    ).toBe(String(total));
    // Bob opens the page again (what a live socket delivered is gone), opens the group on his phone and
    // scrolls up until the beginning.
    await b.page.reload();
    await conversationItem(b, 'Launch plan').click();
    const list = b.page.getByTestId('messages');
    await eventually(async () => (await shownMessages(b)).length).toBe(50);
    for (let i = 0; i < 20 && (await shownMessages(b)).length < total; i++) {
      await list.evaluate((el) => {
        el.scrollTop = 0;
      });
      await b.page.waitForTimeout(300);
    }
    const shown = await shownMessages(b);
    expect(shown.map((m) => m.body)).toEqual(Array.from({ length: total }, (_, i) => `history ${i + 1}`));
    await eventually(() => b.page.getByTestId('unread-total').getAttribute('data-count')).toBe('0');
  });

  it('replies in a thread: the other side sees the count live, opens the thread, and finds the reply by search', async () => {
    // Bob on his phone, Alice on her desktop, both in their direct conversation.
    await b.page.getByRole('button', { name: 'Back' }).click();
    await conversationItem(b, alice).click();
    await conversationItem(a, bob).click();
    await eventually(async () => (await shownMessages(b)).some((m) => m.body === 'hi alice')).toBe(true);
    expect(await within(b, 'hi alice').getByTestId('thread-summary').count()).toBe(0);

    await within(a, 'hi alice').getByRole('button', { name: 'Reply in thread' }).click();
    await eventually(() => a.page.getByTestId('thread-root').textContent()).toContain('hi alice');
    const reply = a.page.getByRole('textbox', { name: 'Thread reply' });
    await reply.fill('the quokkas are ready');
    await reply.press('Enter');
    await eventually(() => a.page.getByTestId('thread-message').allTextContents()).toEqual([
      expect.stringContaining('the quokkas are ready'),
    ]);
    // Bob, looking at the conversation, sees the count appear on his message — and not the reply itself.
    await eventually(() => within(b, 'hi alice').getByTestId('thread-summary').textContent()).toMatch(
      /^1 reply · last \d\d:\d\d/,
    );
    for (const p of [a, b])
      expect((await shownMessages(p)).map((m) => m.body)).not.toContain('the quokkas are ready');

    // He opens the thread: on a phone it takes the whole width.
    await within(b, 'hi alice').getByTestId('thread-summary').click();
    await eventually(() => b.page.getByTestId('thread-message').allTextContents()).toEqual([
      expect.stringContaining('the quokkas are ready'),
    ]);
    expect(await b.page.getByTestId('thread-root').textContent()).toContain('hi alice');
    expect(await b.page.getByTestId('messages').isVisible()).toBe(false);
    // A further reply reaches the open thread live, and the count on the root in Alice's timeline.
    await reply.fill('second thread reply');
    await reply.press('Enter');
    await eventually(() => b.page.getByTestId('thread-message').count()).toBe(2);
    await eventually(() => b.page.getByTestId('thread-count').textContent()).toBe('2 replies');
    await eventually(() => within(a, 'hi alice').getByTestId('thread-summary').textContent()).toMatch(
      /^2 replies/,
    );
    await b.page.getByRole('button', { name: 'Close thread' }).click();
    await a.page.getByRole('button', { name: 'Close thread' }).click();

    // Bob searches a word of the reply: one result, the word marked, and it opens the thread.
    await b.page.getByRole('button', { name: 'Back' }).click();
    await b.page.getByRole('searchbox', { name: 'Search messages' }).fill('quokkas');
    await eventually(async () => {
      await b.page.getByRole('button', { name: 'Search', exact: true }).click();
      return b.page.getByTestId('search-result').count();
    }).toBe(1);
    const hit = b.page.getByTestId('search-result');
    expect(await hit.locator('mark').allTextContents()).toEqual(['quokkas']);
    expect(await hit.getByTestId('search-snippet').textContent()).toBe(`${alice}: the quokkas are ready`);
    await hit.click();
    await eventually(() => b.page.getByTestId('thread-message').first().textContent()).toContain(
      'the quokkas are ready',
    );
    await b.page.getByRole('button', { name: 'Close thread' }).click();
    await b.page.getByRole('button', { name: 'Back' }).click();
    await b.page.getByRole('button', { name: 'Back to chats' }).click();
    await conversationItem(b, alice).click();
  });

  it('takes the screenshots of the README (with WEB_SCREENSHOTS_DIR set)', async () => {
    const dir = process.env.WEB_SCREENSHOTS_DIR;
    if (!dir) return;
    mkdirSync(resolve(dir), { recursive: true });
    await conversationItem(a, bob).click();
    // The desktop shows a thread open beside the conversation.
    await within(a, 'hi alice').getByTestId('thread-summary').click();
    await a.page.getByTestId('thread-message').first().waitFor();
    await a.page.getByRole('textbox', { name: 'Message' }).pressSequentially('see you at', { delay: 10 });
    await b.page.getByRole('button', { name: 'Back' }).click();
    await conversationItem(b, alice).click();
    await b.page.getByRole('textbox', { name: 'Message' }).pressSequentially('on my way', { delay: 10 });
    await a.page.waitForTimeout(500);
    await a.page.screenshot({ path: resolve(dir, 'web-desktop.png') });
    await b.page.screenshot({ path: resolve(dir, 'web-360.png') });
  });

  it('shows a person offline once their page closes', async () => {
    await b.context.close();
    await eventually(
      () => a.page.getByTestId(`presence-${bob}`).first().getAttribute('data-status'),
      10_000,
    ).toBe('offline');
  });

  it('logged no console errors (but the browser’s own refused connections while the gateway was down)', () => {
    const port = cluster.gateways[0]!.port;
    const expectedOutage = (e: ConsoleEntry) =>
      outages.some((o) => e.at >= o.from && e.at <= o.to) &&
      e.type === 'console' &&
      e.text.includes(`WebSocket connection to 'ws://127.0.0.1:${port}/v1/ws' failed`);
    expect([...a.errors, ...b.errors].filter((e) => !expectedOutage(e))).toEqual([]);
  });
});
