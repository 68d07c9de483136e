import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const POSITION = /^[0-9a-f]{32}$/;

let h: Harness;
beforeAll(async () => {
  h = await startHarness('readstate');
});
afterAll(() => h?.close());

describe('POST /v1/conversations/{id}/read', () => {
  it('moves the watermark forward (200 {readSeq, position}, one ConversationRead) and never back', async () => {
    const id = await h.createGroup('alice', ['bob']);
    await h.send('alice', id, 'one');
    await h.send('alice', id, 'two');
    const read = await h.call('bob', 'POST', `/v1/conversations/${id}/read`, { upToSeq: 2 });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ readSeq: 2, position: expect.stringMatching(POSITION) });
    const receipts = await h.stream(`receipts-${id}`);
    expect(receipts).toHaveLength(1);
    expect(receipts[0]).toMatchObject({
      type: 'ConversationRead',
      position: read.body.position,
      data: { conversationId: id, userId: 'bob', upToSeq: 2, readAt: expect.any(String) },
    });
    const before = await h.logSize();
    for (const upToSeq of [1, 2]) {
      const res = await h.call('bob', 'POST', `/v1/conversations/${id}/read`, { upToSeq });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ readSeq: 2 });
    }
    expect(await h.logSize()).toBe(before);
  });

  it('refuses upToSeq past the last seq (400), nothing appended', async () => {
    const id = await h.createGroup('alice', ['bob']);
    const before = await h.logSize();
    const res = await h.call('bob', 'POST', `/v1/conversations/${id}/read`, { upToSeq: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: ['upToSeq'] }] });
    expect(await h.logSize()).toBe(before);
  });

  it('starts at 0 for initial members and at the MemberJoined seq for later joiners', async () => {
    const id = await h.createGroup('alice', ['bob']);
    await h.send('alice', id, 'before carol');
    const joined = await h.call('alice', 'POST', `/v1/conversations/${id}/members`, { userId: 'carol' });
    expect(joined.body.seq).toBe(2);
    const initial = await h.call('bob', 'POST', `/v1/conversations/${id}/read`, { upToSeq: 0 });
    expect(initial.body).toEqual({ readSeq: 0 });
    const joiner = await h.call('carol', 'POST', `/v1/conversations/${id}/read`, { upToSeq: 1 });
    expect(joiner.status).toBe(200);
    expect(joiner.body).toEqual({ readSeq: 2 });
  });
});

describe('POST /v1/conversations/{id}/typing', () => {
  it('appends one TypingStarted per user per 3 s; the rest answer throttled', async () => {
    const id = await h.createGroup('alice', ['bob']);
    const first = await h.call('bob', 'POST', `/v1/conversations/${id}/typing`, {});
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ throttled: false });
    const events = await h.stream(`typing-${id}`);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'TypingStarted', data: { conversationId: id, userId: 'bob' } });
    expect(await h.store.getStreamMetadata(`typing-${id}`)).toEqual({ maxAgeSeconds: 3600 });

    const before = await h.logSize();
    const throttled = await h.call('bob', 'POST', `/v1/conversations/${id}/typing`, {});
    expect(throttled.status).toBe(202);
    expect(throttled.body).toEqual({ throttled: true });
    expect(await h.logSize()).toBe(before);

    const other = await h.call('alice', 'POST', `/v1/conversations/${id}/typing`);
    expect(other.body).toEqual({ throttled: false });
    h.advanceClock(3000);
    const later = await h.call('bob', 'POST', `/v1/conversations/${id}/typing`, {});
    expect(later.body).toEqual({ throttled: false });
    expect(await h.stream(`typing-${id}`)).toHaveLength(3);
  });
});

describe('PUT /v1/conversations/{id}/mute', () => {
  it("appends ConversationMuted to the user's stream: a time mutes, null unmutes", async () => {
    const id = await h.createGroup('alice', ['bob']);
    const until = '2030-01-02T03:04:05.678Z';
    const mute = await h.call('bob', 'PUT', `/v1/conversations/${id}/mute`, {
      until: '2030-01-02T04:04:05.678+01:00',
    });
    expect(mute.status).toBe(200);
    expect(mute.body).toEqual({ position: expect.stringMatching(POSITION) });
    const unmute = await h.call('bob', 'PUT', `/v1/conversations/${id}/mute`, { until: null });
    expect(unmute.status).toBe(200);
    const events = await h.stream('user-bob');
    expect(
      events.filter((e) => e.data.conversationId === id).map((e) => [e.type, e.data.until, e.position]),
    ).toEqual([
      ['ConversationMuted', until, mute.body.position],
      ['ConversationMuted', null, unmute.body.position],
    ]);
  });
});
