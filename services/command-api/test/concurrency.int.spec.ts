import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('concurrency');
});
afterAll(() => h?.close());

it('50 concurrent sends to one conversation → 50 MessageSent, seq gap-free', async () => {
  const id = await h.createGroup('alice', ['bob', 'carol']);
  const senders = ['alice', 'bob', 'carol'];
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => h.send(senders[i % 3] ?? 'alice', id, `message ${i}`)),
  );
  expect(results.map((r) => r.status)).toEqual(Array(50).fill(201));
  const seqs = results.map((r) => r.body.seq as number).sort((a, b) => a - b);
  expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  const events = await h.stream(`conversation-${id}`);
  expect(events.filter((e) => e.type === 'MessageSent')).toHaveLength(50);
  expect(events.map((e) => e.revision)).toEqual(Array.from({ length: 51 }, (_, i) => i));
  const positions = new Map(events.map((e) => [e.revision, e.position]));
  for (const r of results) expect(r.body.position).toBe(positions.get(r.body.seq));
});

it('20 concurrent retries of one messageId → exactly one event; all 20 answers carry the same seq', async () => {
  const id = await h.createGroup('alice', ['bob']);
  const messageId = randomUUID();
  const results = await Promise.all(
    Array.from({ length: 20 }, () => h.send('bob', id, 'only once', messageId)),
  );
  expect(results.filter((r) => r.status === 201)).toHaveLength(1);
  expect(results.filter((r) => r.status === 200)).toHaveLength(19);
  const first = results.find((r) => r.status === 201)?.body;
  for (const r of results) expect(r.body).toEqual(first);
  const events = await h.stream(`conversation-${id}`);
  expect(events.filter((e) => e.type === 'MessageSent' && e.data.messageId === messageId)).toHaveLength(1);
});

it('two instances writing one conversation stay consistent (version conflicts retried on fresh state)', async () => {
  const other = await h.variant({});
  try {
    const id = await h.createGroup('alice', ['bob']);
    // Warm both caches, then interleave writes so each instance's cache is behind the other's.
    const apps = [h.app, other];
    const token = await h.tokenFor('alice');
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        apps[i % 2]!.inject({
          method: 'POST',
          url: `/v1/conversations/${id}/messages`,
          headers: { authorization: `Bearer ${token}` },
          payload: { messageId: randomUUID(), body: `m${i}` },
        }),
      ),
    );
    expect(results.map((r) => r.statusCode)).toEqual(Array(30).fill(201));
    const seqs = results.map((r) => r.json().seq as number).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // A member added through one instance can act through the other at once.
    const add = await h.call('alice', 'POST', `/v1/conversations/${id}/members`, { userId: 'carol' });
    expect(add.status).toBe(200);
    const carol = await other.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/read`,
      headers: { authorization: `Bearer ${await h.tokenFor('carol')}` },
      payload: { upToSeq: add.body.seq },
    });
    expect(carol.statusCode).toBe(200);
  } finally {
    await other.close();
  }
});
