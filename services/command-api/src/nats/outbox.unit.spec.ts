import { describe, expect, it } from 'vitest';
import { NatsOutbox } from './outbox.js';

describe('NatsOutbox', () => {
  it('hands the publishes of one turn of the event loop to NATS together, in order, after its promise steps', async () => {
    const calls: { subject: string; tick: number }[] = [];
    let tick = 0;
    const outbox = new NatsOutbox({ publish: (subject) => void calls.push({ subject, tick }) });
    // A live event as the append commits, the reply a few promise steps later (as in the command-api).
    outbox.publish('live', 'event', () => {});
    await Promise.resolve();
    await Promise.resolve();
    outbox.publish('reply', 'ok', () => {});
    expect(calls).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    tick++;
    outbox.publish('next', 'later', () => {});
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([
      { subject: 'live', tick: 0 },
      { subject: 'reply', tick: 0 },
      { subject: 'next', tick: 1 },
    ]);
  });

  it('tells a refused message its own error callback and goes on with the rest; flush sends at once', () => {
    const sent: string[] = [];
    const outbox = new NatsOutbox({
      publish: (subject) => {
        if (subject === 'too-big') throw new Error('MAX_PAYLOAD_EXCEEDED');
        sent.push(subject);
      },
    });
    const errors: unknown[] = [];
    outbox.publish('a', 'x', () => errors.push('a'));
    outbox.publish('too-big', 'x', (err) => errors.push(err));
    outbox.publish('b', 'x', () => errors.push('b'));
    outbox.flush();
    expect(sent).toEqual(['a', 'b']);
    expect(errors).toEqual([new Error('MAX_PAYLOAD_EXCEEDED')]);
    outbox.flush();
    expect(sent).toEqual(['a', 'b']);
  });
});
