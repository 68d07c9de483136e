import { describe, expect, it } from 'vitest';
import { ChatClient, type WebSocketLike } from './client.js';

// The client's reaction to close codes, against a scripted socket (the transport is the SDK's own port).

class ScriptedSocket implements WebSocketLike {
  static opened: ScriptedSocket[] = [];
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly sent: string[] = [];
  constructor(readonly url: string) {
    ScriptedSocket.opened.push(this);
    queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.onmessage?.({
        data: JSON.stringify({ type: 'hello', userId: 'alice', connectionId: 'c1', heartbeatMs: 30_000 }),
      });
    });
  }
  send(data: string): void {
    this.sent.push(data);
  }
  close(): void {}
  serverCloses(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

const client = () =>
  new ChatClient({
    url: 'ws://gateway.test/v1/ws',
    token: 'token',
    WebSocket: ScriptedSocket,
    reconnect: { baseDelayMs: 1, maxDelayMs: 1 },
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ChatClient close codes', () => {
  it('reconnects after an ordinary close', async () => {
    ScriptedSocket.opened = [];
    const c = client();
    await c.connect();
    ScriptedSocket.opened[0]!.serverCloses(1001);
    await sleep(30);
    expect(ScriptedSocket.opened.length).toBe(2);
    expect(c.state).toBe('open');
    c.close();
  });

  it('stays closed after 4409 (too many sockets): reconnecting would push out another device', async () => {
    ScriptedSocket.opened = [];
    const c = client();
    const closes: number[] = [];
    c.on('close', (e) => closes.push(e.code));
    await c.connect();
    const pending = c.ping();
    ScriptedSocket.opened[0]!.serverCloses(4409);
    await expect(pending).rejects.toThrow(/too many sockets/);
    await sleep(30);
    expect(ScriptedSocket.opened.length).toBe(1);
    expect(c.state).toBe('closed');
    expect(closes).toEqual([4409]);
  });
});
