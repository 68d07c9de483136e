import type { RecordedEvent } from '@chat/eventstore';
import { describe, expect, it } from 'vitest';
import { describeError, EventRejectedError, isTransient, rejectedEvent, storableText } from './failures.js';

const coded = (code: string, message = `error ${code}`) => Object.assign(new Error(message), { code });
const event: RecordedEvent = {
  id: '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
  type: 'ConversationMuted',
  streamId: 'user-bob',
  revision: 3,
  position: `${'0'.repeat(31)}9`,
  occurredAt: '2026-11-27T10:00:00.000Z',
  data: {},
  metadata: { userId: 'bob', correlationId: 'c', causationId: null, schemaVersion: 1 },
};

describe('isTransient', () => {
  it('blames dependencies for connection, resource, concurrency and deployment failures', () => {
    for (const code of ['57P01', '08006', '40001', '40P01', '53100', '55P03', '42P01', 'XX000', '25006']) {
      expect(isTransient(coded(code)), code).toBe(true);
    }
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'CONNECTION_CLOSED', 'DISCONNECT', 'TIMEOUT']) {
      expect(isTransient(coded(code)), code).toBe(true);
    }
    expect(isTransient(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isTransient(new Error('Client has encountered a connection error and is not queryable'))).toBe(
      true,
    );
    expect(isTransient(Object.assign(new Error('x'), { name: 'EventStoreUnavailableError' }))).toBe(true);
  });

  it('may blame the event for data and integrity errors, NATS refusing the message, or anything unknown', () => {
    for (const code of ['22008', '22P02', '22021', '23505', '23502', '54000', 'MAX_PAYLOAD_EXCEEDED']) {
      expect(isTransient(coded(code)), code).toBe(false);
    }
    expect(isTransient(new RangeError('Invalid time value'))).toBe(false);
    expect(isTransient('a string')).toBe(false);
  });

  it('looks through causes and aggregate errors, but never past an event the consumer named', () => {
    expect(isTransient(new Error('batch failed', { cause: coded('57P01') }))).toBe(true);
    expect(isTransient(new AggregateError([new Error('x'), coded('ECONNREFUSED')]))).toBe(true);
    const named = new EventRejectedError(event, 'bad until', { cause: coded('57P01') });
    expect(isTransient(named)).toBe(false);
    expect(rejectedEvent(new Error('wrapped', { cause: named }))).toBe(event);
  });
});

describe('describeError', () => {
  it('names every error of the chain with its code', () => {
    const text = describeError(
      new Error('batch failed', { cause: coded('22008', 'date/time field value out of range') }),
    );
    expect(text).toBe('Error: batch failed\ncaused by Error [22008]: date/time field value out of range');
  });
});

describe('storableText', () => {
  it('escapes U+0000 and replaces unpaired surrogates, keeping pairs', () => {
    expect(storableText('a\u0000b\ud800c\udc00d😀')).toBe('a\\u0000b\ufffdc\ufffdd😀');
  });
});
