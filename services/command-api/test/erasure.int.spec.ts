import { randomUUID } from 'node:crypto';
import { conversationStream, userStream } from '@chat/events';
import {
  createDataKeyStore,
  createEventStore,
  ErasedUserError,
  type EventStore,
  UnknownDataKeyError,
} from '@chat/eventstore';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import { signToken } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// Crypto-shredding (README "Erasure") at the command-api and store level: what the log holds, what every
// read of the store hands out, and the erase route's contract. The whole system is checked end to end in
// tests/src/erasure.e2e.spec.ts.

let h: Harness;
let admin: string;
/** A second store on the same database: another process (a gateway, the projector) with its own cache. */
let other: EventStore;
const logger = createLogger('erasure-test', 'silent');

beforeAll(async () => {
  h = await startHarness('erasure');
  admin = await signToken('root', { roles: ['admin'] });
  other = createEventStore({
    databaseUrl: h.databaseUrl,
    logger,
    scavengeIntervalMs: 0,
    dataKeys: createDataKeyStore({ databaseUrl: h.databaseUrl, master: DEV_DATA_KEY_MASTER, logger }),
  });
});

afterAll(async () => {
  await other?.close();
  await h?.close();
});

const erase = (userId: string, token: string | null = admin) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/admin/users/${encodeURIComponent(userId)}/erase`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

/** The stored JSON of every event, as a SQL client of the database sees it. */
const rawLog = async (): Promise<string> => {
  const { rows } = await h.pool.query<{ data: unknown }>(
    'SELECT data FROM es.events ORDER BY global_position',
  );
  return JSON.stringify(rows.map((r) => r.data));
};

const marker = (who: string) => `${who}-secret-${randomUUID()}`;

describe('personal fields at rest', () => {
  it('stores bodies, edits and titles as v1 ciphertexts under the author key; every read gives the plaintext', async () => {
    const title = marker('title');
    const body = marker('body');
    const edit = marker('edit');
    const c = await h.createGroup('ann', ['bea'], title);
    const messageId = randomUUID();
    expect((await h.send('ann', c, body, messageId)).status).toBe(201);
    const edited = await h.call('ann', 'PATCH', `/v1/conversations/${c}/messages/${messageId}`, {
      body: edit,
    });
    expect(edited.status).toBe(200);

    const raw = await rawLog();
    for (const text of [title, body, edit]) expect(raw).not.toContain(text);
    const { rows } = await h.pool.query<{ data: { body: unknown } }>(
      `SELECT data FROM es.events WHERE type = 'MessageSent' AND stream_id = $1`,
      [conversationStream(c)],
    );
    expect(rows[0]?.data.body).toEqual({ enc: 'v1', kid: expect.any(String), ct: expect.any(String) });

    const events = await h.stream(conversationStream(c));
    expect(events.map((e) => e.data.title ?? e.data.body)).toEqual([title, body, edit]);
    const all = await other.readAll();
    expect(
      all.filter((e) => e.streamId === conversationStream(c)).map((e) => e.data.body ?? e.data.title),
    ).toEqual([title, body, edit]);
  });

  it('reads events stored before encryption (plain strings) as they are', async () => {
    const c = randomUUID();
    const legacy = marker('legacy');
    // Written by the adapter itself (no data keys), as every event before this change was.
    const inner = (h.store as unknown as { inner: EventStore }).inner;
    await inner.append(
      `conversation-${c}`,
      [
        {
          id: randomUUID(),
          type: 'MessageSent',
          data: {
            conversationId: c,
            messageId: randomUUID(),
            senderId: 'old',
            body: legacy,
            replyTo: null,
            sentAt: new Date().toISOString(),
          },
          metadata: { userId: 'old', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
        },
      ],
      'no_stream',
    );
    expect((await other.readStream(`conversation-${c}`))[0]?.data.body).toBe(legacy);
  });

  it('refuses a ciphertext moved to another event (authenticated with the event id)', async () => {
    const c = await h.createGroup('cyd', ['dan'], 'moved');
    await h.send('cyd', c, marker('a'));
    const inner = (h.store as unknown as { inner: EventStore }).inner;
    const [, sent] = await inner.readStream(conversationStream(c));
    const copy = randomUUID();
    await inner.append(
      `conversation-${copy}`,
      [
        {
          id: randomUUID(),
          type: 'MessageSent',
          data: { ...sent?.data },
          metadata: sent?.metadata ?? ({} as never),
        },
      ],
      'no_stream',
    );
    await expect(other.readStream(`conversation-${copy}`)).rejects.toThrow();
  });
});

describe('POST /v1/admin/users/{userId}/erase', () => {
  it('refuses without a token (401) and without the admin role (403), erasing nothing', async () => {
    const c = await h.createGroup('eve', ['fay'], 'kept');
    const body = marker('eve');
    await h.send('eve', c, body);
    const before = await h.logSize();
    expect((await erase('eve', null)).statusCode).toBe(401);
    const refused = await erase('eve', await h.tokenFor('fay'));
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: { code: 'forbidden' } });
    expect((await erase('bad user id!')).statusCode).toBe(400);
    // An oversized body is 413 before the role is looked at, as on every route that takes one.
    const oversized = await h.app.inject({
      method: 'POST',
      url: '/v1/admin/users/eve/erase',
      headers: { authorization: `Bearer ${await h.tokenFor('fay')}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ body: 'x'.repeat(70_000) }),
    });
    expect(oversized.statusCode).toBe(413);
    expect(await h.logSize()).toBe(before);
    expect((await h.stream(conversationStream(c)))[1]?.data.body).toBe(body);
  });

  it('erases: text reads as null with erased: true, in this process and another; ids stay; a repeat answers the same', async () => {
    const c = await h.createGroup('gus', ['hal'], 'gus title');
    const gusBody = marker('gus');
    const halBody = marker('hal');
    const gusMessage = randomUUID();
    await h.send('gus', c, gusBody, gusMessage);
    await h.send('hal', c, halBody);
    await h.call('gus', 'PATCH', `/v1/conversations/${c}/messages/${gusMessage}`, {
      body: marker('gus-edit'),
    });
    // The other process has gus's key in its cache before the erasure.
    expect((await other.readStream(conversationStream(c)))[1]?.data.body).toBe(gusBody);

    const first = await erase('gus');
    expect(first.statusCode).toBe(200);
    const answer = first.json();
    expect(answer).toEqual({ userId: 'gus', erasedAt: expect.any(String), position: expect.any(String) });
    const second = await erase('gus');
    expect(second.statusCode).toBe(200);
    expect(second.json()).toEqual(answer);

    const erased = (await h.stream(userStream('gus'))).filter((e) => e.type === 'UserErased');
    expect(erased).toHaveLength(1);
    expect(erased[0]?.data).toEqual({ userId: 'gus', erasedBy: 'root', erasedAt: answer.erasedAt });

    const expected = [
      { type: 'ConversationStarted', title: null, erased: true, createdBy: 'gus' },
      { type: 'MessageSent', body: null, erased: true, senderId: 'gus' },
      { type: 'MessageSent', body: halBody, senderId: 'hal' },
      { type: 'MessageEdited', body: null, erased: true, editorId: 'gus' },
    ];
    const shape = (events: { type: string; data: Record<string, unknown> }[]) =>
      events.map((e) => ({
        type: e.type,
        ...('title' in e.data ? { title: e.data.title } : { body: e.data.body }),
        ...(e.data.erased ? { erased: e.data.erased } : {}),
        ...Object.fromEntries(
          ['createdBy', 'senderId', 'editorId'].filter((k) => k in e.data).map((k) => [k, e.data[k]]),
        ),
      }));
    expect(shape(await h.stream(conversationStream(c)))).toEqual(expected);
    // Another process drops the key when the erasure is announced (NOTIFY), not at its cache's expiry.
    const deadline = Date.now() + 5000;
    let seen = shape(await other.readStream(conversationStream(c)));
    while (JSON.stringify(seen) !== JSON.stringify(expected) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      seen = shape(await other.readStream(conversationStream(c)));
    }
    expect(seen).toEqual(expected);

    const read = await h.app.inject({
      method: 'GET',
      url: `/v1/admin/streams/${conversationStream(c)}`,
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(read.statusCode).toBe(200);
    expect(read.body).not.toContain(gusBody);
    expect(read.body).toContain(halBody);
  });

  it('refuses new text by an erased user (403, nothing appended); a user with no key can be erased too', async () => {
    const c = await h.createGroup('ida', ['jon'], 'ida title');
    await h.send('ida', c, marker('ida'));
    expect((await erase('ida')).statusCode).toBe(200);
    const before = await h.logSize();
    const refused = await h.send('ida', c, marker('ida-after'));
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: { code: 'forbidden' } });
    expect(await h.logSize()).toBe(before);
    // Text-free commands still work: the user id stays.
    expect((await h.call('ida', 'POST', `/v1/conversations/${c}/read`, { upToSeq: 1 })).status).toBe(200);
    expect((await h.send('jon', c, 'still here')).status).toBe(201);

    const never = await erase('kim');
    expect(never.statusCode).toBe(200);
    await expect(
      (h.store as unknown as { keys: { keyForWriting(u: string): Promise<unknown> } }).keys.keyForWriting(
        'kim',
      ),
    ).rejects.toBeInstanceOf(ErasedUserError);
  });

  it('a ciphertext under a key that neither exists nor was erased is an error, not an erasure', async () => {
    const keys = (h.store as unknown as { keys: { keysForReading(k: string[]): Promise<unknown> } }).keys;
    await expect(keys.keysForReading([randomUUID()])).rejects.toBeInstanceOf(UnknownDataKeyError);
  });
});
