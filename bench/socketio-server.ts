import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { USER_ID_RE } from '@chat/events';
import { createAdapter } from '@socket.io/redis-adapter';
import { jwtVerify } from 'jose';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { membershipKey } from './src/socketio-contract.js';

// The reference for what teams pick instead of this system: a small, idiomatic Socket.IO 4.8 app with
// the Redis adapter, run as several processes that share one Redis. A socket authenticates with the
// same JWT the gateway verifies (HS256, `sub` + `exp`, 5 s leeway) in the handshake's `auth.token`,
// its conversations are a Redis set per user (`SMEMBERS`, one round trip per connect, as the gateway
// reads its memberships), and it joins one room per conversation and one for the user (as the gateway
// subscribes its user channel). A `send` event is checked against the socket's rooms, broadcast to the
// room through the adapter (the sender's own socket included) and acknowledged. Nothing is stored: no
// durability, no ordering across processes, no replay — exactly what is given up by choosing it.

const port = Number(process.env.PORT ?? 3201);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const secret = new TextEncoder().encode(process.env.JWT_SECRET ?? '');
const serverId = process.env.SERVER_ID ?? 'sio';

type SocketData = { userId: string; conversationIds: string[] };
type SendFrame = { conversationId?: unknown; messageId?: unknown; body?: unknown } | null;
type Ack = (answer: unknown) => void;
type ClientEvents = { send: (frame: SendFrame, ack?: Ack) => void };
type ServerEvents = { event: (payload: { conversationId: string; event: Record<string, unknown> }) => void };

const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
for (const [name, client] of [
  ['pub', pub],
  ['sub', sub],
] as const) {
  client.on('error', (err: unknown) => console.error(`${serverId}: redis ${name} client: ${String(err)}`));
}

const http = createServer((req, res) => {
  // Socket.IO answers /socket.io/ itself; everything else lands here.
  if (req.url === '/healthz') res.writeHead(200).end('ok');
  else res.writeHead(404).end();
});
const io = new Server<ClientEvents, ServerEvents, Record<string, never>, SocketData>(http, {
  serveClient: false,
});

io.use(async (socket, next) => {
  try {
    const token: unknown = socket.handshake.auth?.token;
    if (typeof token !== 'string') throw new Error('no token');
    const { payload } = await jwtVerify(token, secret, {
      algorithms: ['HS256'],
      clockTolerance: 5,
      requiredClaims: ['sub', 'exp'],
    });
    const userId = payload.sub;
    if (typeof userId !== 'string' || !USER_ID_RE.test(userId)) throw new Error('bad subject');
    socket.data = { userId, conversationIds: await pub.sMembers(membershipKey(userId)) };
    next();
  } catch {
    next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  const { userId, conversationIds } = socket.data;
  socket.join([...conversationIds, `user:${userId}`]);
  socket.on('send', (frame, ack) => {
    const answer = typeof ack === 'function' ? ack : () => {};
    const { conversationId, messageId, body } = frame ?? {};
    if (typeof conversationId !== 'string' || typeof messageId !== 'string' || typeof body !== 'string') {
      answer({ error: { code: 'validation_failed', message: 'conversationId, messageId, body required' } });
      return;
    }
    if (!socket.rooms.has(conversationId)) {
      answer({ error: { code: 'forbidden', message: 'not a member of this conversation' } });
      return;
    }
    const now = new Date().toISOString();
    // The same envelope as the gateway's and the bare server's event frames, less what only a durable
    // log has (seq, revision, position).
    io.to(conversationId).emit('event', {
      conversationId,
      event: {
        id: randomUUID(),
        type: 'MessageSent',
        streamId: `conversation-${conversationId}`,
        occurredAt: now,
        data: { conversationId, messageId, senderId: userId, body, replyTo: null, sentAt: now },
        metadata: { userId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
      },
    });
    answer({ result: { messageId, conversationId, sentAt: now } });
  });
});

await Promise.all([pub.connect(), sub.connect()]);
io.adapter(createAdapter(pub, sub));
http.listen(port, '127.0.0.1', () => console.log(`${serverId}: socket.io listening on ${port}`));

const stop = () => {
  io.close();
  void Promise.allSettled([pub.quit(), sub.quit()]).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
