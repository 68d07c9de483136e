import { randomUUID } from 'node:crypto';
import type { PostgresEventStore } from '@chat/eventstore';
import { signToken, type TestDatabase } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Gateway } from '../src/gateway.js';
import { gatewayDatabase, startInProcessGateway } from './in-process.js';

let database: TestDatabase;
let store: PostgresEventStore;
let gateway: Gateway;

beforeAll(async () => {
  ({ database, store } = await gatewayDatabase('gwroles'));
  gateway = await startInProcessGateway(database, store);
});

afterAll(async () => {
  await gateway?.stop();
  await store?.close();
  await database?.drop();
});

/** Opens a socket, sends `frames` after `hello`, and collects the answers that carry a ref. */
const answers = (token: string, frames: Record<string, unknown>[]) =>
  new Promise<Record<string, unknown>[]>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/v1/ws?access_token=${token}`);
    const got: Record<string, unknown>[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`answers so far: ${JSON.stringify(got)}`));
    }, 15_000);
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data));
      if (frame.type === 'hello') for (const f of frames) ws.send(JSON.stringify(f));
      else if (frame.ref) got.push(frame);
      if (got.length === frames.length) {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    });
    ws.once('error', reject);
  });

describe('an analyst token on the gateway', () => {
  it('opens a socket, but every command frame is refused with forbidden (ping still answers)', async () => {
    const token = await signToken('ana', { roles: ['analyst'] });
    const conversationId = randomUUID();
    const got = await answers(token, [
      { type: 'send', ref: 's', conversationId, messageId: randomUUID(), body: 'hi' },
      { type: 'read', ref: 'r', conversationId, upToSeq: 0 },
      { type: 'ping', ref: 'p' },
    ]);
    const forbidden = { code: 'forbidden', message: 'the analyst role is read-only' };
    expect(got).toEqual([
      { type: 'error', ref: 's', error: forbidden },
      { type: 'error', ref: 'r', error: forbidden },
      { type: 'pong', ref: 'p' },
    ]);
  });
});
