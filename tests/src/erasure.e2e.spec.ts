import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { signToken, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Cluster, startCluster } from './support/cluster.js';

// GDPR erasure by crypto-shredding (README "Erasure"), on the whole system as real processes: ann and
// bob write in a direct and a group conversation (ann titled the group and edited a message), an admin
// erases ann, and then every way out of the system — queries, notifications, a WebSocket `resume`, the
// admin stream read, the export route, `chatctl replay`, a rebuild of the read models from position 0, and SQL over the
// database itself — shows none of ann's text and all of bob's. Ids, times and sizes stay.

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
// `node --import tsx`: one process per chatctl run (the tsx CLI would start a second node to run it).
const TSX_ARGS = ['--import', 'tsx'];
const CHATCTL = join(ROOT, 'packages/chatctl/src/main.ts');

const tag = randomUUID().slice(0, 8);
/** Unique markers: a search of any output for one of ann's finds her text however it was copied. */
const ANN = {
  title: `ann-title-${tag}`,
  direct: `ann-direct-${tag}`,
  group: `ann-group-${tag} @bob`,
  edit: `ann-edit-${tag} @bob`,
};
const BOB = { direct: `bob-direct-${tag}`, group: `bob-group-${tag} @ann` };
const annTexts = Object.values(ANN).map((t) => t.split(' ')[0] as string);
const bobTexts = Object.values(BOB).map((t) => t.split(' ')[0] as string);

let cluster: Cluster;
let admin: string;
let direct: string;
let group: string;
let erasePosition: string;
let annGroupMessage: string;

const expectNoneOfAnnAllOfBob = (text: string, what: string, bobToo = true) => {
  for (const t of annTexts) expect(text, `${what} holds ann's ${t}`).not.toContain(t);
  if (bobToo) for (const t of bobTexts) expect(text, `${what} lacks bob's ${t}`).toContain(t);
};

const api = async (token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`${cluster.api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
};

type Msg = { senderId: string; body: string | null; erased: boolean; deleted: boolean };
const messagesOf = async (conversationId: string, minPosition = erasePosition) =>
  (
    await cluster.http<{ items: Msg[] }>(
      'bob',
      'GET',
      `/v1/conversations/${conversationId}/messages?minPosition=${minPosition}`,
    )
  ).items;

/** The read models as bob sees them: both conversations' messages and his conversation list. */
const readModels = async () => {
  const [d, g, list] = await Promise.all([
    messagesOf(direct),
    messagesOf(group),
    cluster.http<{ items: unknown[] }>('bob', 'GET', `/v1/conversations?minPosition=${erasePosition}`),
  ]);
  return { d, g, list };
};

const checkReadModels = async (when: string) => {
  const { d, g, list } = await readModels();
  expectNoneOfAnnAllOfBob(JSON.stringify({ d, g, list }), `queries ${when}`);
  for (const m of [...d, ...g]) {
    if (m.senderId === 'ann') expect(m).toMatchObject({ body: null, erased: true, deleted: false });
    else expect(m).toMatchObject({ erased: false, body: expect.stringContaining('bob-') });
  }
  const byId = new Map(
    (list.items as { conversationId: string; title: string | null; lastMessage: unknown }[]).map((c) => [
      c.conversationId,
      c,
    ]),
  );
  // ann wrote the direct conversation's last message and the group's title.
  expect(byId.get(direct)?.lastMessage).toMatchObject({ senderId: 'ann', preview: null, erased: true });
  expect(byId.get(group)?.title).toBeNull();
};

beforeAll(async () => {
  cluster = await startCluster({ label: 'erasure', gateways: 1, notifier: true });
  admin = await signToken('root', { roles: ['admin'] });

  direct = (
    await cluster.http<{ conversationId: string }>('ann', 'POST', '/v1/conversations', {
      kind: 'direct',
      members: ['bob'],
    })
  ).conversationId;
  group = (
    await cluster.http<{ conversationId: string }>('ann', 'POST', '/v1/conversations', {
      kind: 'group',
      members: ['bob', 'cat'],
      title: ANN.title,
    })
  ).conversationId;
  const send = (who: string, c: string, body: string, messageId: string = randomUUID()) =>
    cluster.http(who, 'POST', `/v1/conversations/${c}/messages`, { messageId, body });
  await send('bob', direct, BOB.direct);
  await send('bob', group, BOB.group);
  annGroupMessage = randomUUID();
  await send('ann', group, ANN.group, annGroupMessage);
  await cluster.http('ann', 'PATCH', `/v1/conversations/${group}/messages/${annGroupMessage}`, {
    body: ANN.edit,
  });
  const last = await cluster.http<{ position: string }>(
    'ann',
    'POST',
    `/v1/conversations/${direct}/messages`,
    {
      messageId: randomUUID(),
      body: ANN.direct,
    },
  );

  // Before the erasure ann's text is everywhere: in the read models and in bob's notifications.
  await waitFor(
    async () => {
      const n = await cluster.http('bob', 'GET', `/v1/notifications?minPosition=${last.position}`);
      return (
        JSON.stringify(n).includes(ANN.direct) && JSON.stringify(n).includes(ANN.edit.split(' ')[0] as string)
      );
    },
    { what: "bob's notifications of ann's messages", timeoutMs: 30_000 },
  );
  const before = await messagesOf(direct, last.position);
  expect(JSON.stringify(before)).toContain(ANN.direct);

  const erased = await api(admin, 'POST', '/v1/admin/users/ann/erase');
  expect(erased.status, erased.text).toBe(200);
  erasePosition = (JSON.parse(erased.text) as { position: string }).position;
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

describe('after ann is erased', () => {
  it('a repeat answers the same; ann can no longer write text, bob can', async () => {
    const again = await api(admin, 'POST', '/v1/admin/users/ann/erase');
    expect(again.status).toBe(200);
    expect(JSON.parse(again.text)).toMatchObject({ userId: 'ann', position: erasePosition });
    const refused = await api(await signToken('ann'), 'POST', `/v1/conversations/${direct}/messages`, {
      messageId: randomUUID(),
      body: 'after erasure',
    });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'forbidden' } });
  });

  it('queries: bodies null with erased: true, the last-message preview and the title too', async () => {
    await checkReadModels('after the erasure');
  });

  it("notifications: bob's previews of ann's messages are null with erased: true; ann's of bob's stay", async () => {
    const bobs = await cluster.http<{
      items: { actorId: string; preview: string | null; erased: boolean }[];
    }>('bob', 'GET', `/v1/notifications?minPosition=${erasePosition}`);
    expect(bobs.items.length).toBeGreaterThan(0);
    for (const n of bobs.items) expect(n).toMatchObject({ actorId: 'ann', preview: null, erased: true });
    const anns = await cluster.http('ann', 'GET', `/v1/notifications?minPosition=${erasePosition}`);
    expectNoneOfAnnAllOfBob(JSON.stringify([bobs, anns]), 'notifications', false);
    expect(JSON.stringify(anns)).toContain(BOB.direct);
    expect(JSON.stringify(anns)).toContain(BOB.group.split(' ')[0]);
  });

  it('a WebSocket resume from the start replays ann’s events with body null and erased: true', async () => {
    const gateway = cluster.gateways[0];
    if (!gateway) throw new Error('no gateway');
    const resumeOnce = async () => {
      const ws = new WebSocket(`${gateway.url}?access_token=${await signToken('bob')}`);
      const frames: { type: string; event?: { type: string; data: Record<string, unknown> } }[] = [];
      ws.on('message', (data) => frames.push(JSON.parse(String(data))));
      try {
        await waitFor(() => frames.some((f) => f.type === 'hello'), { what: 'hello', timeoutMs: 30_000 });
        ws.send(JSON.stringify({ type: 'resume', ref: 'r', positions: { [direct]: -1, [group]: -1 } }));
        await waitFor(() => frames.some((f) => f.type === 'resumed'), { what: 'resumed', timeoutMs: 30_000 });
        return frames.filter((f) => f.type === 'event');
      } finally {
        ws.close();
      }
    };
    const events = await resumeOnce();
    expectNoneOfAnnAllOfBob(JSON.stringify(events), 'resume');
    const annText = events.filter((f) =>
      ['MessageSent', 'MessageEdited', 'ConversationStarted'].includes(f.event?.type ?? ''),
    );
    for (const f of annText) {
      const d = f.event?.data ?? {};
      const author = d.senderId ?? d.editorId ?? d.createdBy;
      // The direct conversation has no title: nothing of ann's to erase there.
      if (author !== 'ann' || (f.event?.type === 'ConversationStarted' && d.conversationId === direct))
        continue;
      expect(d.erased).toBe(true);
      expect(d.body ?? d.title ?? null).toBeNull();
    }
    // ann: 2 starts, 2 messages and an edit; bob: 2 messages.
    expect(annText.length).toBe(7);
  });

  it('the admin stream read shows the events with ann’s text null', async () => {
    const reads = await Promise.all(
      [`conversation-${direct}`, `conversation-${group}`].map((s) =>
        api(admin, 'GET', `/v1/admin/streams/${s}`),
      ),
    );
    for (const r of reads) expect(r.status).toBe(200);
    expectNoneOfAnnAllOfBob(reads.map((r) => r.text).join('\n'), 'admin stream read');
    expect(reads.map((r) => r.text).join('\n')).toContain('"erased":true');
  });

  it('the export (GET /v1/admin/events, JSON pages and NDJSON) has ann’s text null', async () => {
    const page = await api(admin, 'GET', '/v1/admin/events?limit=10000');
    expect(page.status, page.text).toBe(200);
    expectNoneOfAnnAllOfBob(page.text, 'export JSON page');
    const events = (JSON.parse(page.text) as { events: { type: string; data: Record<string, unknown> }[] })
      .events;
    expect(events.some((e) => e.type === 'UserErased' && e.data.userId === 'ann')).toBe(true);
    expect(events.filter((e) => e.data.erased === true)).toHaveLength(4);
    const ndjson = await fetch(`${cluster.api}/v1/admin/events`, {
      headers: { authorization: `Bearer ${admin}`, accept: 'application/x-ndjson' },
    });
    expect(ndjson.status).toBe(200);
    expectNoneOfAnnAllOfBob(await ndjson.text(), 'export NDJSON');
  });

  it('chatctl replay exports ann’s events with their text null', async () => {
    const { stdout } = await run(process.execPath, [...TSX_ARGS, CHATCTL, 'replay', '--no-progress'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: cluster.db.url, LOG_LEVEL: 'silent' },
      maxBuffer: 64 * 1024 * 1024,
    });
    expectNoneOfAnnAllOfBob(stdout, 'chatctl replay');
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; data: Record<string, unknown> });
    expect(lines.some((e) => e.type === 'UserErased' && e.data.userId === 'ann')).toBe(true);
  });

  it('the event table, read models and notifier tables hold no plaintext of ann (SQL)', async () => {
    const pool = new pg.Pool({ connectionString: cluster.db.url, max: 1 });
    try {
      const dump = async (sql: string) => JSON.stringify((await pool.query(sql)).rows);
      const events = await dump('SELECT type, data, metadata FROM es.events ORDER BY global_position');
      // bob's text is encrypted at rest too: SQL sees ciphertext for both; the check is ann's absence.
      expectNoneOfAnnAllOfBob(events, 'es.events', false);
      expect(events).toContain('"enc":"v1"');
      const tables = await dump(`
        SELECT json_agg(t) FROM (
          SELECT 'm' AS k, to_jsonb(m) AS row FROM read_models.messages m
          UNION ALL SELECT 'c', to_jsonb(c) FROM read_models.conversations c
          UNION ALL SELECT 'n', to_jsonb(n) FROM notifier.notifications n
          UNION ALL SELECT 'o', to_jsonb(o) FROM notifier.outbox o) t`);
      expectNoneOfAnnAllOfBob(tables, 'read-model and notifier tables');
    } finally {
      await pool.end();
    }
  });

  it('chatctl rebuild read-models from position 0 reproduces the erased read models', async () => {
    const { stdout } = await run(
      process.execPath,
      [...TSX_ARGS, CHATCTL, 'rebuild', 'read-models', '--no-progress'],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: cluster.db.url, LOG_LEVEL: 'silent' },
      },
    );
    expect(stdout).toContain('rebuilt read models');
    await checkReadModels('after a rebuild');
  });
});
