import uWS from 'uWebSockets.js';
import { randomUUID } from 'node:crypto';

// The baseline for B2: a minimal uWebSockets.js pub/sub server speaking the same frames as the
// ws-gateway (hello, send → ack, event with a MessageSent envelope of the same shape and size), with
// none of the system behind it: the socket's conversations come from the URL (`?user=…&c=id,id`),
// `send` is answered and published at once. It parses each client frame and builds each event frame
// once, then fans it out through uWS's C++ topic tree, as the gateway does.

type Socket = { userId: string; conversationIds: string[] };

const port = Number(process.env.PORT ?? 3101);
const seqs = new Map<string, number>();
let position = 0;
let connectionNo = 0;

const app = uWS.App();
app.ws<Socket>('/v1/ws', {
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 1024 * 1024,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    const userId = req.getQuery('user') ?? '';
    const conversationIds = (req.getQuery('c') ?? '').split(',').filter(Boolean);
    res.upgrade<Socket>(
      { userId, conversationIds },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open: (ws) => {
    const { userId, conversationIds } = ws.getUserData();
    for (const c of conversationIds) ws.subscribe(`c:${c}`);
    ws.subscribe(`u:${userId}`);
    ws.send(
      JSON.stringify({ type: 'hello', userId, connectionId: `bare-${++connectionNo}`, heartbeatMs: 30000 }),
    );
  },
  message: (ws, message) => {
    let frame: { type?: string; ref?: string; conversationId?: string; messageId?: string; body?: string };
    try {
      frame = JSON.parse(Buffer.from(message).toString());
    } catch {
      ws.send(
        JSON.stringify({
          type: 'error',
          ref: null,
          error: { code: 'validation_failed', message: 'bad json' },
        }),
      );
      return;
    }
    const ref = frame.ref ?? null;
    if (frame.type === 'ping') {
      ws.send(JSON.stringify({ type: 'pong', ref }));
      return;
    }
    if (frame.type !== 'send' || !frame.conversationId) return;
    const conversationId = frame.conversationId;
    const seq = (seqs.get(conversationId) ?? 0) + 1;
    seqs.set(conversationId, seq);
    const now = new Date().toISOString();
    const pos = (++position).toString(16).padStart(32, '0');
    const senderId = ws.getUserData().userId;
    const event = {
      type: 'event',
      conversationId,
      seq,
      event: {
        id: randomUUID(),
        type: 'MessageSent',
        streamId: `conversation-${conversationId}`,
        revision: seq,
        position: pos,
        occurredAt: now,
        data: {
          conversationId,
          messageId: frame.messageId,
          senderId,
          body: frame.body,
          replyTo: null,
          sentAt: now,
        },
        metadata: { userId: senderId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
      },
    };
    app.publish(`c:${conversationId}`, JSON.stringify(event));
    ws.send(
      JSON.stringify({
        type: 'ack',
        ref,
        result: { messageId: frame.messageId, conversationId, seq, sentAt: now, position: pos },
      }),
    );
  },
});
app.get('/healthz', (res) => {
  res.end('ok');
});
app.listen('127.0.0.1', port, (listen) => {
  if (!listen) {
    console.error(`bare-uws-server: cannot listen on ${port}`);
    process.exit(1);
  }
  console.log(`bare-uws-server listening on ${port}`);
  const stop = () => {
    uWS.us_listen_socket_close(listen);
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
});
