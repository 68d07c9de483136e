import { randomBytes, randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandReply, CommandRequest } from '@chat/events';
import { type NatsServerProcess, signToken, startNatsServer, waitFor } from '@chat/testkit';
import { connect, type NatsConnection } from 'nats';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Cluster, startCluster } from './support/cluster.js';

// The system under infra/nats/auth.conf, unmodified, on a private nats-server (own port and storage):
// per-service users with publish/subscribe allow lists. Subjects there are for the default prefix
// `chat`, which this file can use because nobody else talks to its server.

const AUTH_CONF = resolve(dirname(fileURLToPath(import.meta.url)), '../../infra/nats/auth.conf');
// nats-server parses a variable's value as config: a password starting with a letter stays a string.
const password = () => `p${randomBytes(12).toString('hex')}`;
const users = {
  'ws-gateway': { variable: 'CHAT_NATS_GATEWAY_PASSWORD', password: password() },
  'command-api': { variable: 'CHAT_NATS_COMMAND_API_PASSWORD', password: password() },
  projector: { variable: 'CHAT_NATS_PROJECTOR_PASSWORD', password: password() },
  notifier: { variable: 'CHAT_NATS_NOTIFIER_PASSWORD', password: password() },
} as const;
type User = keyof typeof users;
const credentials = (user: User) => ({ NATS_USER: user, NATS_PASSWORD: users[user].password });

let nats: NatsServerProcess;
let url: string;
let cluster: Cluster;
const connections: NatsConnection[] = [];

const connectAs = async (user: User) => {
  const nc = await connect({ servers: url, user, pass: users[user].password, maxReconnectAttempts: 0 });
  connections.push(nc);
  return nc;
};
const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const command = async (nc: NatsConnection, name: string, request: CommandRequest) => {
  const msg = await nc.request(`chat.cmd.${name}`, encode(request), { timeout: 10_000 });
  return JSON.parse(new TextDecoder().decode(msg.data)) as CommandReply;
};
/** The server's log lines naming a permission violation by `user`. */
const violations = (user: User) =>
  nats
    .output()
    .split('\n')
    .filter((line) => line.includes('Violation') && line.includes(`User "${user}"`));
const logSize = async () => {
  const client = new pg.Client({ connectionString: cluster.db.url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM es.events');
    return rows[0]?.n ?? 0;
  } finally {
    await client.end();
  }
};

beforeAll(async () => {
  nats = await startNatsServer({
    args: ['-c', AUTH_CONF],
    env: Object.fromEntries(Object.values(users).map((u) => [u.variable, u.password])),
  });
  url = `nats://127.0.0.1:${nats.port}`;
  cluster = await startCluster({
    label: 'natsauth',
    gateways: 1,
    natsUrl: url,
    prefix: 'chat',
    commandApiEnv: credentials('command-api'),
    projectorEnv: credentials('projector'),
    gatewayEnv: credentials('ws-gateway'),
  });
});

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => {});
  await cluster?.stop();
  await nats?.stop();
});

describe('NATS with per-service users (infra/nats/auth.conf)', () => {
  it('refuses a client without credentials or with a wrong password', async () => {
    await expect(connect({ servers: url, maxReconnectAttempts: 0 })).rejects.toMatchObject({
      code: 'AUTHORIZATION_VIOLATION',
    });
    await expect(
      connect({ servers: url, user: 'ws-gateway', pass: 'guess', maxReconnectAttempts: 0 }),
    ).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
  });

  it('the real services work under their permissions: commands from the gateway user, the relay publishing, WebSocket and presence', async () => {
    const gatewayUser = await connectAs('ws-gateway');
    const created = await command(gatewayUser, 'createConversation', {
      userId: 'alice',
      body: { kind: 'group', members: ['bob'], title: 'under auth' },
    });
    expect(created).toMatchObject({ ok: true, status: 201 });
    if (!created.ok || !('conversationId' in created.result)) throw new Error('create failed');
    const { conversationId } = created.result;

    // The command-api publishes the conversation's events as it stores them, the relay (projector user)
    // their heads; the gateway user reads both.
    const relayed: string[] = [];
    const sub = gatewayUser.subscribe(`chat.conv.${conversationId}`, {
      callback: (_err, msg) => relayed.push(JSON.parse(new TextDecoder().decode(msg.data)).type),
    });
    const heads: number[] = [];
    const headsSub = gatewayUser.subscribe('chat.heads', {
      callback: (_err, msg) => {
        const seq = JSON.parse(new TextDecoder().decode(msg.data)).heads[conversationId];
        if (typeof seq === 'number') heads.push(seq);
      },
    });
    await gatewayUser.flush();
    const sent = await command(gatewayUser, 'sendMessage', {
      userId: 'alice',
      params: { conversationId },
      body: { messageId: randomUUID(), body: 'over nats' },
    });
    expect(sent).toMatchObject({ ok: true, status: 201 });
    await waitFor(() => relayed.includes('MessageSent'), {
      what: 'the published MessageSent',
      timeoutMs: 30_000,
    });
    await waitFor(() => heads.includes(sent.ok && 'seq' in sent.result ? sent.result.seq : -1), {
      what: "the relay's heads with the message's seq",
      timeoutMs: 30_000,
    });
    sub.unsubscribe();
    headsSub.unsubscribe();

    // A real socket through the real gateway: its command goes over NATS, its event comes back over NATS.
    const gateway = cluster.gateways[0]!;
    const ws = new WebSocket(`${gateway.url}?access_token=${await signToken('bob')}`);
    const frames: { type: string; ref?: string; event?: { type: string } }[] = [];
    ws.on('message', (data) => frames.push(JSON.parse(String(data))));
    await waitFor(() => frames.some((f) => f.type === 'hello'), { what: 'hello', timeoutMs: 30_000 });
    ws.send(
      JSON.stringify({ type: 'send', ref: 'r1', conversationId, messageId: randomUUID(), body: 'over ws' }),
    );
    await waitFor(() => frames.some((f) => f.type === 'ack' && f.ref === 'r1'), {
      what: `the ack (frames: ${JSON.stringify(frames)})`,
      timeoutMs: 30_000,
    });
    await waitFor(() => frames.some((f) => f.type === 'event' && f.event?.type === 'MessageSent'), {
      what: 'the event frame',
      timeoutMs: 30_000,
    });

    // The gateway wrote bob's presence to the KV bucket; the command-api reads it.
    const presence = await waitFor(
      async () => {
        const res = await cluster.http<{ users: { status: string }[] }>(
          'alice',
          'GET',
          '/v1/presence?userIds=bob',
        );
        return res.users[0]?.status === 'online' ? res : undefined;
      },
      { what: 'bob online', timeoutMs: 30_000 },
    );
    expect(presence.users).toEqual([{ userId: 'bob', status: 'online', lastSeenAt: null }]);
    ws.close();

    for (const user of ['ws-gateway', 'command-api', 'projector'] as const)
      expect(violations(user), `${user} stayed within its permissions`).toEqual([]);
  });

  it('another service’s credentials cannot publish a command, nor read conversation or user subjects', async () => {
    const before = await logSize();
    const request: CommandRequest = {
      userId: 'alice',
      body: { kind: 'group', members: ['mallory'], title: 'forged' },
    };
    for (const user of ['command-api', 'projector', 'notifier'] as const) {
      const nc = await connectAs(user);
      nc.publish('chat.cmd.createConversation', encode(request));
      const conv = nc.subscribe('chat.conv.>');
      const personal = nc.subscribe('chat.user.>');
      await nc.flush();
      const refusals = [
        `Publish Violation - User "${user}", Subject "chat.cmd.createConversation"`,
        `Subscription Violation - User "${user}", Subject "chat.conv.>"`,
        `Subscription Violation - User "${user}", Subject "chat.user.>"`,
      ];
      await waitFor(() => refusals.every((r) => violations(user).some((line) => line.includes(r))), {
        what: `the server to refuse ${user}: ${JSON.stringify(violations(user))}`,
      });
      conv.unsubscribe();
      personal.unsubscribe();
    }
    // Only the relay publishes conversation subjects: not even a gateway may.
    const gatewayUser = await connectAs('ws-gateway');
    gatewayUser.publish(`chat.conv.${randomUUID()}`, encode({ type: 'MessageSent' }));
    await gatewayUser.flush();
    await waitFor(
      () =>
        violations('ws-gateway').some((l) =>
          l.includes('Publish Violation - User "ws-gateway", Subject "chat.conv.'),
        ),
      {
        what: 'the gateway user publishing a conversation subject refused',
      },
    );
    expect(await logSize(), 'no forged command was appended').toBe(before);
  });
});
