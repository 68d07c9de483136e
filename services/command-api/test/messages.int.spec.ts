import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

const POSITION = /^[0-9a-f]{32}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let h: Harness;
let id: string;
beforeAll(async () => {
  h = await startHarness('messages');
  id = await h.createGroup('alice', ['bob', 'carol']);
});
afterAll(() => h?.close());

const messages = (conversationId = id) => `/v1/conversations/${conversationId}/messages`;

describe('POST /v1/conversations/{id}/messages', () => {
  it('sends: 201 with messageId, conversationId, seq, sentAt, position; one MessageSent with the trimmed body', async () => {
    const messageId = randomUUID();
    const res = await h.call('alice', 'POST', messages(), {
      messageId: messageId.toUpperCase(),
      body: '  hello  ',
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      messageId,
      conversationId: id,
      seq: expect.any(Number),
      sentAt: expect.stringMatching(ISO_MS),
      position: expect.stringMatching(POSITION),
    });
    const events = await h.stream(`conversation-${id}`);
    const event = events.find((e) => e.data.messageId === messageId);
    expect(event).toMatchObject({
      type: 'MessageSent',
      revision: res.body.seq,
      position: res.body.position,
      data: {
        conversationId: id,
        messageId,
        senderId: 'alice',
        body: 'hello',
        replyTo: null,
        sentAt: res.body.sentAt,
      },
      metadata: { userId: 'alice', schemaVersion: 1 },
    });
  });

  it('answers a repeat with the same content 200 and the original result, appending nothing', async () => {
    const messageId = randomUUID();
    const first = await h.call('bob', 'POST', messages(), { messageId, body: 'once' });
    await h.send('alice', id, 'in between');
    const before = await h.logSize();
    const again = await h.call('bob', 'POST', messages(), { messageId, body: ' once ' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(await h.logSize()).toBe(before);
  });

  it('answers 409 when the messageId is reused with another body, replyTo or sender; nothing appended', async () => {
    const messageId = randomUUID();
    const first = await h.call('bob', 'POST', messages(), { messageId, body: 'original' });
    const before = await h.logSize();
    const otherBody = await h.call('bob', 'POST', messages(), { messageId, body: 'changed' });
    expect(otherBody.status).toBe(409);
    expect(otherBody.body.error.code).toBe('conflict');
    const otherReply = await h.call('bob', 'POST', messages(), {
      messageId,
      body: 'original',
      replyTo: first.body.messageId,
    });
    expect(otherReply.status).toBe(409);
    const otherSender = await h.call('carol', 'POST', messages(), { messageId, body: 'original' });
    expect(otherSender.status).toBe(409);
    expect(await h.logSize()).toBe(before);
  });

  it('accepts replyTo naming a message of the conversation, 400 otherwise', async () => {
    const parent = await h.send('alice', id, 'parent');
    const reply = await h.call('bob', 'POST', messages(), {
      messageId: randomUUID(),
      body: 're',
      replyTo: parent.body.messageId,
    });
    expect(reply.status).toBe(201);
    const events = await h.stream(`conversation-${id}`);
    expect(events.at(-1)?.data.replyTo).toBe(parent.body.messageId);

    const other = await h.createGroup('alice', ['bob']);
    const elsewhere = await h.send('alice', other, 'elsewhere');
    const before = await h.logSize();
    for (const replyTo of [randomUUID(), elsewhere.body.messageId]) {
      const res = await h.call('bob', 'POST', messages(), { messageId: randomUUID(), body: 're', replyTo });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({
        code: 'validation_failed',
        details: [{ path: ['replyTo'], message: expect.any(String) }],
      });
    }
    expect(await h.logSize()).toBe(before);
  });

  it("moves the sender's own read watermark without a receipt event", async () => {
    const conversation = await h.createGroup('alice', ['bob']);
    const sent = await h.send('bob', conversation, 'mine');
    const read = await h.call('bob', 'POST', `/v1/conversations/${conversation}/read`, {
      upToSeq: sent.body.seq,
    });
    expect(read.status).toBe(200);
    expect(read.body).toEqual({ readSeq: sent.body.seq });
    expect(await h.stream(`receipts-${conversation}`)).toEqual([]);
  });
});

describe('PATCH and DELETE /v1/conversations/{id}/messages/{messageId}', () => {
  it('lets the sender edit: 200 {seq, position} of the edit event', async () => {
    const sent = await h.send('alice', id, 'typo');
    const res = await h.call('alice', 'PATCH', `${messages()}/${sent.body.messageId}`, { body: 'fixed' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ seq: sent.body.seq + 1, position: expect.stringMatching(POSITION) });
    const events = await h.stream(`conversation-${id}`);
    expect(events[res.body.seq]).toMatchObject({
      type: 'MessageEdited',
      position: res.body.position,
      data: { conversationId: id, messageId: sent.body.messageId, editorId: 'alice', body: 'fixed' },
    });
  });

  it('lets the sender delete once; deleting again answers the first delete, appending nothing', async () => {
    const sent = await h.send('alice', id, 'regret');
    const first = await h.call('alice', 'DELETE', `${messages()}/${sent.body.messageId}`);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ seq: sent.body.seq + 1, position: expect.stringMatching(POSITION) });
    const events = await h.stream(`conversation-${id}`);
    expect(events[first.body.seq]).toMatchObject({
      type: 'MessageDeleted',
      data: { messageId: sent.body.messageId, deletedBy: 'alice' },
    });
    await h.send('bob', id, 'later');
    const before = await h.logSize();
    const again = await h.call('alice', 'DELETE', `${messages()}/${sent.body.messageId}`, '', {
      'content-type': 'application/json',
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const edit = await h.call('alice', 'PATCH', `${messages()}/${sent.body.messageId}`, { body: 'revive' });
    expect(edit.status).toBe(409);
    expect(edit.body.error.code).toBe('conflict');
    expect(await h.logSize()).toBe(before);
  });

  it('forbids others (403) and answers unknown messages 404; nothing appended', async () => {
    const sent = await h.send('alice', id, 'mine');
    const before = await h.logSize();
    const edit = await h.call('bob', 'PATCH', `${messages()}/${sent.body.messageId}`, { body: 'theirs' });
    expect(edit.status).toBe(403);
    expect(edit.body.error.code).toBe('forbidden');
    const del = await h.call('bob', 'DELETE', `${messages()}/${sent.body.messageId}`);
    expect(del.status).toBe(403);
    const unknownEdit = await h.call('alice', 'PATCH', `${messages()}/${randomUUID()}`, { body: 'x' });
    expect(unknownEdit.status).toBe(404);
    expect(unknownEdit.body.error.code).toBe('not_found');
    const unknownDelete = await h.call('alice', 'DELETE', `${messages()}/${randomUUID()}`);
    expect(unknownDelete.status).toBe(404);
    expect(await h.logSize()).toBe(before);
  });

  it('applies the send rules to an edit body (400)', async () => {
    const sent = await h.send('alice', id, 'x');
    const before = await h.logSize();
    const res = await h.call('alice', 'PATCH', `${messages()}/${sent.body.messageId}`, { body: '   ' });
    expect(res.status).toBe(400);
    expect(res.body.error.details).toEqual([{ path: ['body'], message: expect.any(String) }]);
    expect(await h.logSize()).toBe(before);
  });
});
