import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  COMMAND_NAMES,
  type CommandFields,
  type CommandShapes,
  commandShapes,
  createConversationBody,
  muteBody,
  sendMessageBody,
} from './commands.js';
import {
  CONVERSATION_EVENT_TYPES,
  EVENT_STREAM_CATEGORY,
  EVENT_TYPES,
  eventDefinitions,
  eventIssues,
  hasTrait,
  PERSONAL_FIELDS,
  reactionSchema,
  streamIdOf,
} from './events.js';
import { isoTimeSchema, MAX_SEQ } from './ids.js';
import { membersChangedBy } from './membership.js';
import { moderationCommandShapes, moderationQueryShapes } from './moderation-routes.js';
import {
  decodePageCursor,
  encodePageCursor,
  listMessagesQuery,
  messageSchema,
  queryShapes,
} from './queries.js';
import { responseSchemas } from './routes.js';
import { parseStreamId } from './streams.js';
import { natsSubjects, subjectToken } from './subjects.js';
import { isStorableText, mentionedUserIds, mentions, preview } from './text.js';
import { clientFrameSchema, frameCommand } from './ws.js';

const id = '0B1C2D3E-4F50-4617-8293-A4B5C6D7E8F9';

describe('command schemas', () => {
  it('accepts UUIDs in any case and returns them lower-case', () => {
    const parsed = sendMessageBody.parse({ messageId: id, body: 'hi' });
    expect(parsed.messageId).toBe(id.toLowerCase());
  });

  it('counts code points: 4,000 emoji pass, 4,001 fail; whitespace-only fails', () => {
    expect(sendMessageBody.safeParse({ messageId: id, body: '😀'.repeat(4000) }).success).toBe(true);
    expect(sendMessageBody.safeParse({ messageId: id, body: '😀'.repeat(4001) }).success).toBe(false);
    expect(sendMessageBody.safeParse({ messageId: id, body: ' \n\t ' }).success).toBe(false);
    expect(sendMessageBody.parse({ messageId: id, body: '  hi  ' }).body).toBe('hi');
  });

  it('refuses unknown fields', () => {
    const r = createConversationBody.safeParse({ kind: 'group', members: ['bob'], colour: 'red' });
    expect(r.success).toBe(false);
  });

  it('reads client frames by type', () => {
    expect(clientFrameSchema.parse({ type: 'ping', ref: 'r1' })).toEqual({ type: 'ping', ref: 'r1' });
    expect(clientFrameSchema.safeParse({ type: 'dance' }).success).toBe(false);
  });
});

describe('text rules', () => {
  it('finds whole-token mentions only (API.md §2.4: not preceded or followed by [A-Za-z0-9_.:@-])', () => {
    expect(mentions('hi @bob', 'bob')).toBe(true);
    expect(mentions('(cc @ann),', 'ann')).toBe(true);
    expect(mentions('@ann!', 'ann')).toBe(true);
    expect(mentions('@anna', 'ann')).toBe(false);
    expect(mentions('x@ann', 'ann')).toBe(false);
    expect(mentions('@bob, look', 'bob')).toBe(true);
    // A trailing `.` is a user-id character: `@bob.` names the user `bob.`.
    expect(mentions('hi @bob.', 'bob')).toBe(false);
    expect(mentions('hi @bob.', 'bob.')).toBe(true);
    expect(mentions('hi @bob.smith', 'bob')).toBe(false);
    expect(mentions('hi @bob.smith', 'bob.smith')).toBe(true);
    expect(mentions('mail bob@example.com', 'example.com')).toBe(false);
    expect(mentions('@a@b', 'b')).toBe(false);
    expect(mentions('@a@b', 'a@b')).toBe(true);
  });

  it('extracts every mentioned id in one pass, each once (`@@carol` names the id `@carol`); ids over 64 are none', () => {
    expect([...mentionedUserIds('@ann and @bob, again @ann; @@carol @ x@dave @e.')]).toEqual([
      'ann',
      'bob',
      '@carol',
      'e.',
    ]);
    expect([...mentionedUserIds(`@${'a'.repeat(64)} @${'b'.repeat(65)}`)]).toEqual(['a'.repeat(64)]);
    expect([...mentionedUserIds('héllo @jörg @ünal')]).toEqual(['j']);
    expect(mentionedUserIds('no mention here')).toEqual(new Set());
  });

  it('previews at most 200 code points', () => {
    expect([...preview('😀'.repeat(300))]).toHaveLength(200);
    expect(preview('😀'.repeat(300))).toBe('😀'.repeat(200));
    expect(preview(`${'a'.repeat(199)}😀😀`)).toBe(`${'a'.repeat(199)}😀`);
    expect(preview('short 😀 body')).toBe('short 😀 body');
    // A lone surrogate counts as one code point, as string iteration counts it.
    expect(preview(`\ud800${'b'.repeat(250)}`)).toBe(`\ud800${'b'.repeat(199)}`);
  });
});

describe('reactions (API.md §2.2.1)', () => {
  it('take 1..32 code points without whitespace, emoji sequences included; storable text only', () => {
    const ok = (r: string) => reactionSchema.safeParse(r).success;
    for (const r of ['👍', 'thumbsup', '👨‍👩‍👧‍👦', '🇫🇷', '+1', 'a/b', '😀'.repeat(32), 'x'.repeat(32)])
      expect(ok(r), r).toBe(true);
    for (const r of [
      '',
      'x'.repeat(33),
      '😀'.repeat(33),
      'thumbs up',
      'tab\there',
      'nbsp\u00a0',
      'line\n',
      'a\u0000',
      '\ud83d',
    ])
      expect(ok(r), JSON.stringify(r)).toBe(false);
  });
});

describe('names', () => {
  it('encodes user ids into single NATS tokens and scopes subjects by prefix', () => {
    expect(subjectToken('a.b:c@d')).toBe('a~2eb~3ac~40d');
    const s = natsSubjects('t_run1');
    expect(s.user('a.b')).toBe('t_run1.user.a~2eb');
    expect(s.presenceBucket).toBe('t_run1_presence');
    expect(() => natsSubjects('bad prefix')).toThrow();
  });

  it('parses stream ids', () => {
    expect(parseStreamId(`receipts-${id}`)).toEqual({ category: 'receipts', id });
    expect(parseStreamId('nope')).toBeNull();
  });
});

describe('storable text (API.md §2: no U+0000, no unpaired surrogates)', () => {
  it('accepts any well-formed text and refuses U+0000 and lone surrogates anywhere', () => {
    for (const ok of ['', 'hi', '😀', 'a😀b', 'e\u0301', '\uffff', '\ud83d\ude00'])
      expect(isStorableText(ok), JSON.stringify(ok)).toBe(true);
    for (const bad of ['\u0000', 'a\u0000', 'a\ud800b', 'ab\ud83d', '\ude00', '\ude00\ud83d', '😀\udc00'])
      expect(isStorableText(bad), JSON.stringify(bad)).toBe(false);
  });

  it('is checked in bodies, titles and frame refs', () => {
    expect(sendMessageBody.safeParse({ messageId: id, body: 'a\u0000' }).success).toBe(false);
    expect(createConversationBody.safeParse({ kind: 'group', members: ['b'], title: '\ud800' }).success).toBe(
      false,
    );
    expect(clientFrameSchema.safeParse({ type: 'ping', ref: 'r\u0000' }).success).toBe(false);
    expect(
      clientFrameSchema.safeParse({ type: 'send', conversationId: id, messageId: id, body: 'x\udfff' })
        .success,
    ).toBe(false);
  });
});

describe('times and numbers', () => {
  it('bounds client times to 1970..9999 once converted to UTC', () => {
    const until = (t: string) => isoTimeSchema.safeParse(t);
    expect(until('2030-01-02T04:04:05.678+01:00').data).toBe('2030-01-02T03:04:05.678Z');
    expect(until('1970-01-01T00:00:00Z').data).toBe('1970-01-01T00:00:00.000Z');
    expect(until('9999-12-31T23:59:59.999Z').data).toBe('9999-12-31T23:59:59.999Z');
    for (const bad of [
      '0000-01-01T00:00:00Z',
      '1969-12-31T23:59:59.999Z',
      '1970-01-01T00:59:59+01:00',
      '9999-12-31T23:59:59.999-00:01',
      '2026-02-30T00:00:00Z',
    ])
      expect(until(bad).success, bad).toBe(false);
    expect(muteBody.safeParse({ until: null }).data).toEqual({ until: null });
  });

  it('reads query integers as decimal digits within 0..2^31−1', () => {
    expect(listMessagesQuery.parse({ before: String(MAX_SEQ) }).before).toBe(MAX_SEQ);
    for (const before of [String(MAX_SEQ + 1), '99999999999', '1e3', '-1', '', ' 1', '0x10'])
      expect(listMessagesQuery.safeParse({ before }).success, before).toBe(false);
  });
});

describe('page cursors', () => {
  const at = '2026-01-02T03:04:05.678Z';
  const cursorId = '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9';

  it('decode what the read models encode (base64url JSON [time, id]) and nothing else', () => {
    const nodeEncoded = Buffer.from(JSON.stringify([at, cursorId])).toString('base64url');
    expect(encodePageCursor({ at, id: cursorId })).toBe(nodeEncoded);
    expect(decodePageCursor(nodeEncoded)).toEqual({ at, id: cursorId });
    const forged = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    for (const raw of [
      'garbage!',
      'a',
      forged([at, 'not-a-uuid']),
      forged([at, cursorId.toUpperCase()]),
      forged(['0000-01-01T00:00:00.000Z', cursorId]),
      forged(['2', cursorId]),
      forged([at, cursorId, 1]),
      forged({ at, id: cursorId }),
      Buffer.from([0xff, 0xfe]).toString('base64url'),
    ])
      expect(decodePageCursor(raw), raw).toBeNull();
  });
});

describe('direct conversation ids', () => {
  it('are version-5 UUIDs, which a group may not take as its own id', () => {
    const v5 = '2c1f4a0e-8d3b-5c6a-9f1e-0a2b3c4d5e6f';
    const group = createConversationBody.safeParse({ conversationId: v5, kind: 'group', members: ['bob'] });
    expect(group.error?.issues).toMatchObject([{ path: ['conversationId'] }]);
    expect(
      createConversationBody.safeParse({ conversationId: id, kind: 'group', members: ['bob'] }).success,
    ).toBe(true);
    expect(
      createConversationBody.safeParse({ conversationId: v5, kind: 'direct', members: ['bob'] }).success,
    ).toBe(true);
  });
});

describe('route shapes', () => {
  it('name every command by its key, and document every status of every route', () => {
    for (const name of COMMAND_NAMES) expect(commandShapes[name].name).toBe(name);
    for (const [name, shape] of Object.entries(queryShapes)) expect(shape.name).toBe(name);
    expect(Object.keys(responseSchemas(commandShapes.sendMessage)).sort()).toEqual([
      '200',
      '201',
      '400',
      '401',
      // A blocked sender in a direct conversation (issue 16).
      '403',
      '404',
      '409',
      '413',
      '429',
      '503',
    ]);
    for (const [name, shape] of Object.entries({ ...moderationCommandShapes, ...moderationQueryShapes }))
      expect(shape.name).toBe(name);
  });

  it('build the send, read and typing frames from their commands, and split them back', () => {
    const frame = clientFrameSchema.parse({
      type: 'send',
      ref: 'r1',
      conversationId: id,
      messageId: id,
      body: ' hi ',
    });
    expect(frameCommand(frame as Extract<typeof frame, { type: 'send' }>)).toEqual({
      name: 'sendMessage',
      ack: true,
      params: { conversationId: id.toLowerCase() },
      body: { messageId: id.toLowerCase(), body: 'hi' },
    });
    const typing = clientFrameSchema.parse({ type: 'typing', conversationId: id });
    expect(frameCommand(typing as Extract<typeof typing, { type: 'typing' }>)).toEqual({
      name: 'typing',
      ack: false,
      params: { conversationId: id.toLowerCase() },
      body: {},
    });
    expect(
      clientFrameSchema.safeParse({ type: 'read', conversationId: id, upToSeq: MAX_SEQ + 1 }).success,
    ).toBe(false);
    expect(clientFrameSchema.safeParse({ type: 'typing', conversationId: id, extra: 1 }).success).toBe(false);
  });
});

describe('event schemas', () => {
  it('refuse what a projection could not store', () => {
    const muted = (until: string | null) =>
      eventIssues({
        type: 'ConversationMuted',
        data: { conversationId: id.toLowerCase(), userId: 'u', until },
      });
    expect(muted(null)).toEqual([]);
    expect(muted('2030-01-01T00:00:00.000Z')).toEqual([]);
    expect(muted('0000-01-01T00:00:00.000Z')).not.toEqual([]);
    expect(muted('2030-01-01T00:00:00Z')).not.toEqual([]);
    const sent = (body: string) =>
      eventIssues({
        type: 'MessageSent',
        data: {
          conversationId: id.toLowerCase(),
          messageId: id.toLowerCase(),
          senderId: 'u',
          body,
          replyTo: null,
          sentAt: '2030-01-01T00:00:00.000Z',
        },
      });
    expect(sent('hi')).toEqual([]);
    expect(sent('a\u0000')).not.toEqual([]);
    expect(sent('a\ud800')).not.toEqual([]);
  });

  it('name the stream each type is appended to; conversation events are the conversation stream’s', () => {
    const c = id.toLowerCase();
    expect(
      streamIdOf({
        type: 'ConversationRead',
        data: { conversationId: c, userId: 'u', upToSeq: 1, readAt: '' },
      }),
    ).toBe(`receipts-${c}`);
    expect(
      streamIdOf({ type: 'ConversationMuted', data: { conversationId: c, userId: 'u.1', until: null } }),
    ).toBe('user-u.1');
    expect(streamIdOf({ type: 'MemberJoined', data: { conversationId: c, userId: 'u', addedBy: 'v' } })).toBe(
      `conversation-${c}`,
    );
    const onConversation = (Object.keys(EVENT_STREAM_CATEGORY) as (keyof typeof EVENT_STREAM_CATEGORY)[])
      .filter((type) => EVENT_STREAM_CATEGORY[type] === 'conversation')
      .sort();
    expect([...CONVERSATION_EVENT_TYPES].sort()).toEqual(onConversation);
  });
});

describe('erasure shapes (README "Erasure")', () => {
  const at = '2026-01-01T00:00:00.000Z';
  const id = '11111111-1111-4111-8111-111111111111';

  it('events, messages, previews and notifications read an erased text as null with erased: true', () => {
    expect(
      eventIssues({
        type: 'MessageSent',
        data: {
          conversationId: id,
          messageId: id,
          senderId: 'ann',
          body: null,
          erased: true,
          replyTo: null,
          sentAt: at,
        },
      }),
    ).toEqual([]);
    expect(
      eventIssues({ type: 'UserErased', data: { userId: 'ann', erasedBy: 'root', erasedAt: at } }),
    ).toEqual([]);
    expect(messageSchema.shape.body.safeParse(null).success).toBe(true);
    expect(messageSchema.shape.erased.safeParse(true).success).toBe(true);
    expect(PERSONAL_FIELDS.MessageSent).toEqual([{ field: 'body', author: 'senderId' }]);
    expect(Object.keys(PERSONAL_FIELDS).sort()).toEqual([
      'ConversationStarted',
      'MessageEdited',
      'MessageSent',
    ]);
  });
});

describe('event traits (one entry per event type in eventDefinitions)', () => {
  const c = '11111111-1111-4111-8111-111111111111';

  it('relays a membership change to the members it changes, as its unread trait says', () => {
    const membership = EVENT_TYPES.filter((type) => eventDefinitions[type].relay === 'membership');
    expect(membership).toEqual(['ConversationStarted', 'MemberJoined', 'MemberLeft']);
    const started = {
      type: 'ConversationStarted' as const,
      data: {
        conversationId: c,
        kind: 'group' as const,
        title: null,
        createdBy: 'ann',
        members: ['bob', 'ann'],
      },
    };
    expect(hasTrait(started, 'relay', 'membership') && membersChangedBy(started)).toEqual(['ann', 'bob']);
    expect(hasTrait(started, 'unread', 'joins')).toBe(true);
    const left = {
      type: 'MemberLeft' as const,
      data: { conversationId: c, userId: 'bob', removedBy: 'ann' },
    };
    expect(hasTrait(left, 'unread', 'leaves') && membersChangedBy(left)).toEqual(['bob']);
  });

  it('answers no for a type this build does not know (a later contract version)', () => {
    const later = { type: 'PollCreated', data: {} } as unknown as Parameters<typeof hasTrait>[0];
    expect(hasTrait(later, 'stream', 'conversation')).toBe(false);
  });

  it('gives a decider the fields of a command shape, optional ones settled to null, without the stream key', () => {
    expectTypeOf<CommandFields<CommandShapes['sendMessage'], 'conversationId'>>().toEqualTypeOf<{
      messageId: string;
      body: string;
      replyTo: string | null;
      threadRootId: string | null;
    }>();
    expectTypeOf<CommandFields<CommandShapes['removeReaction'], 'conversationId'>>().toEqualTypeOf<{
      messageId: string;
      reaction: string;
    }>();
    expectTypeOf<CommandFields<CommandShapes['typing'], 'conversationId'>>().toEqualTypeOf<
      Record<never, never>
    >();
  });
});
