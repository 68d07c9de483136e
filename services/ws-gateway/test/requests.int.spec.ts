import { natsUrl, testSubjectPrefix } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandRequests, type RequestOutcome } from '../src/client/requests.js';

// The gateway's own request/reply (instead of nats.js's `request`) must tell the same three outcomes
// apart: the reply, no responders, and a timeout, each exactly once per request.

const prefix = testSubjectPrefix();
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let nats: NatsConnection;
let requests: CommandRequests;

const ask = (subject: string, text: string) =>
  new Promise<RequestOutcome>((resolve) => requests.request(subject, encoder.encode(text), resolve));

beforeAll(async () => {
  nats = await connect({ servers: natsUrl() });
  requests = new CommandRequests(nats, 300);
});

afterAll(async () => {
  requests?.stop();
  await nats?.drain();
});

describe('CommandRequests', () => {
  it('delivers each reply to its own request, also when answered out of order', async () => {
    const held: { respond: (data: Uint8Array) => boolean; text: string }[] = [];
    const sub = nats.subscribe(`${prefix}.echo`, {
      callback: (_err, msg) => {
        held.push({ respond: (d) => msg.respond(d), text: decoder.decode(msg.data) });
        if (held.length === 3) for (const h of held.reverse()) h.respond(encoder.encode(`re:${h.text}`));
      },
    });
    await nats.flush();
    const outcomes = await Promise.all(['a', 'b', 'c'].map((t) => ask(`${prefix}.echo`, t)));
    expect(outcomes.map((o) => (o.ok ? decoder.decode(o.data) : o.reason))).toEqual(['re:a', 're:b', 're:c']);
    sub.unsubscribe();
  });

  it('reports no responders when nobody listens, and a timeout when nobody answers', async () => {
    expect(await ask(`${prefix}.nobody`, 'x')).toEqual({ ok: false, reason: 'no_responders' });

    const sub = nats.subscribe(`${prefix}.silent`, { callback: () => {} });
    await nats.flush();
    const sweeper = setInterval(() => requests.sweep(performance.now()), 50);
    try {
      const started = performance.now();
      let calls = 0;
      const outcome = await new Promise<RequestOutcome>((resolve) =>
        requests.request(`${prefix}.silent`, encoder.encode('x'), (o) => {
          calls++;
          resolve(o);
        }),
      );
      expect(outcome).toEqual({ ok: false, reason: 'timeout' });
      expect(performance.now() - started).toBeGreaterThanOrEqual(290);
      await new Promise((r) => setTimeout(r, 200));
      expect(calls).toBe(1);
    } finally {
      clearInterval(sweeper);
      sub.unsubscribe();
    }
  });
});
