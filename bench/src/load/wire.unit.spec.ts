import { HOST, HOST_LESS_LOAD, parseHostBusyTicks, withHostLessLoad } from '@chat/processes';
import { describe, expect, it } from 'vitest';
import { wireFor } from './wire.js';

describe('socket.io wire (Engine.IO v4 over a raw WebSocket)', () => {
  const wire = wireFor('socketio');

  it('opens at /socket.io/ with the WebSocket transport only', () => {
    expect(wire.url({ kind: 'socketio', url: 'ws://127.0.0.1:4000' }, { userId: 'u' }, 't')).toBe(
      'ws://127.0.0.1:4000/socket.io/?EIO=4&transport=websocket',
    );
  });

  it('answers the open packet with a namespace connect carrying the token, and is ready on 40', () => {
    const open = '0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}';
    expect(wire.handshake(open, 'jwt')).toEqual({ answer: '40{"token":"jwt"}', ready: false });
    expect(wire.handshake('40{"sid":"y"}', 'jwt')).toEqual({ ready: true });
  });

  it('fails the handshake on a connect error', () => {
    expect(() => wire.handshake('44{"message":"unauthorized"}', 'jwt')).toThrow(/unauthorized/);
  });

  it('sends `send` as an event with an ack id', () => {
    expect(wire.encodeSend('17', { conversationId: 'c', messageId: 'm', body: 'b' })).toBe(
      '4217["send",{"conversationId":"c","messageId":"m","body":"b"}]',
    );
  });

  it.each([
    ['2', { kind: 'answer', frame: '3' }],
    ['42["event",{"conversationId":"c"}]', { kind: 'event' }],
    ['4317[{"result":{"messageId":"m"}}]', { kind: 'reply', ref: '17', ok: true }],
    ['433[{"error":{"code":"forbidden"}}]', { kind: 'reply', ref: '3', ok: false }],
    ['42["other",{}]', { kind: 'other' }],
    ['41', { kind: 'other' }],
  ])('classifies %s', (frame, expected) => {
    expect(wire.classify(frame)).toEqual(expected);
  });
});

describe('chat wire (gateway and bare server)', () => {
  // v1 and v1.1 gateways: unread and notification frames are neither deliveries nor replies.
  it.each([
    ['{"type":"ack","ref":"5","result":{}}', { kind: 'reply', ref: '5', ok: true }],
    ['{"type":"error","ref":"6","error":{}}', { kind: 'reply', ref: '6', ok: false }],
    ['{"type":"event","conversationId":"c","seq":1}', { kind: 'event' }],
    ['{"type":"unread","conversationId":"c","unreadCount":1,"total":1}', { kind: 'other' }],
    ['{"type":"notification","notification":{}}', { kind: 'other' }],
  ])('classifies %s', (frame, expected) => {
    expect(wireFor('gateway').classify(frame)).toEqual(expected);
  });

  it('sends `send` as a JSON frame', () => {
    expect(wireFor('bare').encodeSend('1', { conversationId: 'c', messageId: 'm', body: 'b' })).toBe(
      '{"type":"send","ref":"1","conversationId":"c","messageId":"m","body":"b"}',
    );
  });

  it('authenticates the gateway by token and the bare server by user and conversations', () => {
    const target = { url: 'ws://127.0.0.1:1/v1/ws' };
    const user = { userId: 'u 1', conversationIds: ['a', 'b'] };
    expect(wireFor('gateway').url({ ...target, kind: 'gateway' }, user, 'jwt')).toBe(
      'ws://127.0.0.1:1/v1/ws?access_token=jwt',
    );
    expect(wireFor('bare').url({ ...target, kind: 'bare' }, user, null)).toBe(
      'ws://127.0.0.1:1/v1/ws?user=u%201&c=a,b',
    );
    expect(() => wireFor('gateway').handshake('{"type":"event"}', 'jwt')).toThrow(/not hello/);
  });
});

describe('host CPU', () => {
  it('counts user, nice, system, irq and softirq of the cpu line; not idle, iowait or steal', () => {
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice
    const stat = 'cpu  100 2 30 5000 40 5 6 700 0 0\ncpu0 50 1 15 2500 20 2 3 350 0 0\n';
    expect(parseHostBusyTicks(stat)).toBe(143);
  });

  it('subtracts the load groups from the host', () => {
    const usage = new Map([
      [HOST, { cpuSeconds: 10, cores: 1.0 }],
      ['gen0', { cpuSeconds: 3, cores: 0.3 }],
      ['orchestrator', { cpuSeconds: 1, cores: 0.1 }],
      ['server', { cpuSeconds: 4, cores: 0.4 }],
    ]);
    const out = withHostLessLoad(usage, ['gen0', 'orchestrator']).get(HOST_LESS_LOAD)!;
    expect(out.cpuSeconds).toBeCloseTo(6);
    expect(out.cores).toBeCloseTo(0.6);
  });
});
