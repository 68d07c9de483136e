import uWS from 'uWebSockets.js';
import { randomUUID } from 'node:crypto';
import {
  type CommandName,
  type CommandReply,
  type CommandRequest,
  frameCommand,
  type NatsSubjects,
  WS_CLOSE,
  WS_MAX_FRAME_BYTES,
  WS_PATH,
} from '@chat/events';
import {
  type Identity,
  InvalidTokenError,
  type Logger,
  ROLE_ANALYST,
  type TokenVerifier,
} from '@chat/platform';
import type { Registry } from 'prom-client';
import { originAllowed, tokenFromUpgrade } from './auth/token.js';
import { type FloodLimits, floodCheck } from './client/flood.js';
import {
  errorFrame,
  frame,
  frameType,
  parseClientFrame,
  refOf,
  validateClientFrame,
} from './client/frames.js';
import type { CommandRequests } from './client/requests.js';
import type { Hub } from './hub/hub.js';
import { monotonicMs, type SocketData } from './hub/types.js';
import type { GatewayMetrics } from './metrics/metrics.js';
import { MAX_TOKEN_CHARS } from './uws-env.js';

export type ServerOptions = {
  app: uWS.TemplatedApp;
  hub: Hub;
  /** Forwards socket commands to the command-api (request/reply over NATS). */
  requests: CommandRequests;
  subjects: NatsSubjects;
  verifyToken: TokenVerifier;
  allowedOrigins: readonly string[] | undefined;
  metrics: GatewayMetrics;
  registry: Registry;
  logger: Logger;
  gatewayId: string;
  readiness: () => Promise<Record<string, string>>;
  /** Called once per opened socket. */
  onConnect?: () => void;
  maxBackpressure: number;
  idleTimeoutSeconds: number;
  flood: FloodLimits;
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const unavailable = (message: string): CommandReply => ({
  ok: false,
  status: 503,
  error: { code: 'unavailable', message },
});
const NO_RESPONDERS_REPLY = unavailable('command service unavailable');
const TIMED_OUT_REPLY = unavailable('command timed out');
const UNREADABLE_REPLY = unavailable('unreadable reply from the command service');

/** uWS's `ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT`; the typings lack listen(host, port, options, cb). */
const LISTEN_EXCLUSIVE_PORT = 1;
type ExclusiveListen = {
  listen(
    host: string,
    port: number,
    options: number,
    cb: (listenSocket: uWS.us_listen_socket | false) => void,
  ): uWS.TemplatedApp;
};

/** The uWS app: `/v1/ws` plus `/healthz`, `/readyz` and `/metrics` on the same port. */
export const createServer = (o: ServerOptions) => {
  const app = o.app;
  const logger = o.logger.child({ component: 'server' });
  let connectionCounter = 0;
  let draining = false;

  const sendText = (ws: uWS.WebSocket<SocketData>, text: string) => {
    if (!ws.getUserData().closed) ws.send(text);
  };

  const forward = (
    ws: uWS.WebSocket<SocketData>,
    name: CommandName,
    ack: boolean,
    ref: string | null,
    request: CommandRequest,
  ) => {
    const started = performance.now();
    o.requests.request(o.subjects.command(name), encoder.encode(JSON.stringify(request)), (outcome) => {
      o.metrics.commandRoundTrip.observe((performance.now() - started) / 1000);
      let reply: CommandReply;
      if (outcome.ok) {
        try {
          reply = JSON.parse(decoder.decode(outcome.data)) as CommandReply;
        } catch {
          reply = UNREADABLE_REPLY;
        }
      } else {
        // The reason says it all: no error object (its stack) on a path an overloaded command-api
        // takes for every command at once.
        logger.warn({ reason: outcome.reason, command: name }, 'command forwarding failed');
        reply = outcome.reason === 'no_responders' ? NO_RESPONDERS_REPLY : TIMED_OUT_REPLY;
      }
      if (reply.ok) {
        if (ack) sendText(ws, frame({ type: 'ack', ref, result: reply.result }));
      } else {
        sendText(ws, errorFrame(ref, reply.error));
      }
    });
  };

  const onMessage = (ws: uWS.WebSocket<SocketData>, message: ArrayBuffer, isBinary: boolean) => {
    const data = ws.getUserData();
    if (data.closed || o.hub.holdEarlyFrame(ws, message, isBinary)) return;
    if (message.byteLength > WS_MAX_FRAME_BYTES) {
      data.closed = true;
      ws.end(WS_CLOSE.tooLarge, 'frame too large');
      return;
    }
    const raw = parseClientFrame(message, isBinary);
    // Every frame counts, unreadable ones included; only `ping` has a bucket of its own (flood.ts).
    const kind = !('error' in raw) && frameType(raw.json) === 'ping' ? 'ping' : 'command';
    const verdict = floodCheck(data, kind, monotonicMs(), o.flood);
    if (verdict !== 'accept') {
      sendText(
        ws,
        errorFrame(refOf(raw.json), { code: 'rate_limited', message: 'too many frames; slow down' }),
      );
      if (verdict === 'close') {
        data.closed = true;
        ws.end(WS_CLOSE.policyViolation, 'flooding');
      }
      return;
    }
    if ('error' in raw) {
      o.hub.goLive(ws);
      return sendText(ws, errorFrame(raw.ref, raw.error));
    }
    const parsed = validateClientFrame(raw.json);
    if (!parsed.ok) {
      o.hub.goLive(ws);
      return sendText(ws, errorFrame(parsed.ref, parsed.error));
    }
    const f = parsed.frame;
    const ref = f.ref ?? null;
    if (f.type === 'resume') {
      o.hub.resume(ws, ref, f.positions).catch((err: unknown) => {
        logger.warn({ err }, 'resume failed');
        sendText(ws, errorFrame(ref, { code: 'unavailable', message: 'could not read missed events' }));
      });
      return;
    }
    o.hub.goLive(ws);
    if (f.type === 'ping') return sendText(ws, frame({ type: 'pong', ref }));
    // An analyst token reads; its commands are refused here as the command-api refuses its writes.
    if (data.readOnly) {
      return sendText(ws, errorFrame(ref, { code: 'forbidden', message: 'the analyst role is read-only' }));
    }
    // send, read and typing run the command their shape in @chat/events names, as over HTTP.
    const { name, ack, params, body } = frameCommand(f);
    void forward(ws, name, ack, ref, {
      userId: data.user.userId,
      correlationId: randomUUID(),
      params,
      body,
      budgetMs: o.requests.timeoutMs,
    });
  };

  o.hub.onEarlyFrame = onMessage;
  app.ws<SocketData>(WS_PATH, {
    // uWS drops a socket over maxPayloadLength without a close frame; allow a margin so that frames
    // just over the contract's 16 KiB get the documented 1009 from the message handler.
    maxPayloadLength: 4 * WS_MAX_FRAME_BYTES,
    // Hard limit far above the soft one: the sweep closes slow sockets with 1013 at the soft limit;
    // a burst that still overflows before the next sweep is closed by uWS (1006, no close frame)
    // rather than silently skipped: a skipped frame would be a gap the client never learns about.
    maxBackpressure: Math.max(o.maxBackpressure * 8, 8 * 1024 * 1024),
    closeOnBackpressureLimit: true,
    idleTimeout: o.idleTimeoutSeconds,
    sendPingsAutomatically: true,
    compression: uWS.DISABLED,
    upgrade: (res, req, context) => {
      // Everything from `req` must be copied now: it is stack-allocated and gone after this callback.
      const key = req.getHeader('sec-websocket-key');
      const protocolHeader = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const origin = req.getHeader('origin');
      const query = req.getQuery() ?? '';
      let aborted = false;
      const reject = (
        status: string,
        code: 'unauthorized' | 'forbidden' | 'unavailable',
        message: string,
      ) => {
        if (aborted) return;
        res.cork(() => {
          res
            .writeStatus(status)
            .writeHeader('content-type', 'application/json')
            .end(JSON.stringify({ error: { code, message } }));
        });
      };
      if (draining) return reject('503 Service Unavailable', 'unavailable', 'server going away');
      if (!originAllowed(origin, o.allowedOrigins))
        return reject('403 Forbidden', 'forbidden', 'origin not allowed');
      const { token, protocol } = tokenFromUpgrade(query, protocolHeader);
      if (!token) return reject('401 Unauthorized', 'unauthorized', 'missing token');
      if (token.length > MAX_TOKEN_CHARS) return reject('401 Unauthorized', 'unauthorized', 'token too long');
      const upgrade = (identity: Identity) => {
        const now = monotonicMs();
        const userData: SocketData = {
          user: o.hub.attachUser(identity.userId),
          expiresAt: identity.exp,
          readOnly: identity.roles.includes(ROLE_ANALYST),
          openedAt: now,
          live: false,
          closed: false,
          tokens: o.flood.burst * 1000,
          refillAt: now,
          pingTokens: o.flood.pingBurst * 1000,
          pingRefillAt: now,
          floodSince: 0,
          lastReject: 0,
        };
        res.upgrade(userData, key, protocol, extensions, context);
      };
      // The upgrade happens inside this callback whenever the token can be checked without waiting
      // (HS256 always): uWS 20.57 can close a socket upgraded later, from `res.cork`, right after its
      // open handler (1006, no close frame). Its HttpResponse::cork() tells an upgrade from a plain
      // response only by the socket's address changing; when the adopt realloc shrinks the block in
      // place it reads the HTTP state from memory that is now the WebSocket's (or freed), and if that
      // reads "connection: close, nothing pending" it shuts the new socket down. Upstream:
      // uNetworking/uWebSockets#1928, fixed by #1929. Upgrades here go through uWS's parser instead,
      // which tracks the new socket itself; a user's conversations are read after (Hub.admit).
      let identity: Identity | undefined;
      try {
        identity = o.verifyToken.now(token);
      } catch {
        return reject('401 Unauthorized', 'unauthorized', 'invalid or expired token');
      }
      if (identity) return upgrade(identity);
      // JWKS mode, a token not seen before: only an asynchronous check can tell. The upgrade then runs
      // uncorked, off the path that has the bug (uWS.js prints a warning that it was not corked).
      res.onAborted(() => {
        aborted = true;
      });
      o.verifyToken(token).then(
        (verified) => {
          if (aborted) return;
          if (draining) return reject('503 Service Unavailable', 'unavailable', 'server going away');
          upgrade(verified);
        },
        (err: unknown) => {
          if (!(err instanceof InvalidTokenError)) logger.warn({ err }, 'token verification failed');
          reject('401 Unauthorized', 'unauthorized', 'invalid or expired token');
        },
      );
    },
    open: (ws) => {
      o.onConnect?.();
      o.hub.admit(
        ws,
        frame({
          type: 'hello',
          userId: ws.getUserData().user.userId,
          connectionId: `${o.gatewayId}-${(++connectionCounter).toString(36)}`,
          heartbeatMs: o.idleTimeoutSeconds * 500,
        }),
      );
    },
    message: onMessage,
    close: (ws) => o.hub.close(ws),
  });

  const json = (res: uWS.HttpResponse, status: string, body: unknown, type = 'application/json') => {
    res.cork(() => {
      res
        .writeStatus(status)
        .writeHeader('content-type', type)
        .end(typeof body === 'string' ? body : JSON.stringify(body));
    });
  };
  const asyncRoute = (res: uWS.HttpResponse, work: () => Promise<[string, unknown, string?]>) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    work().then(
      ([status, body, type]) => {
        if (!aborted) json(res, status, body, type);
      },
      (err: unknown) => {
        if (!aborted) json(res, '500 Internal Server Error', { error: String(err) });
      },
    );
  };
  app.get('/healthz', (res) => json(res, '200 OK', { status: 'ok' }));
  app.get('/readyz', (res) =>
    asyncRoute(res, async () => {
      const checks = await o.readiness();
      const ok = !draining && Object.values(checks).every((v) => v === 'ok');
      return [ok ? '200 OK' : '503 Service Unavailable', { status: ok ? 'ready' : 'unavailable', checks }];
    }),
  );
  app.get('/metrics', (res) =>
    asyncRoute(res, async () => ['200 OK', await o.registry.metrics(), o.registry.contentType]),
  );
  app.any('/*', (res) =>
    json(res, '404 Not Found', { error: { code: 'not_found', message: 'no such route' } }),
  );

  let listenSocket: uWS.us_listen_socket | undefined;
  return {
    app,
    listen: (host: string, port: number) =>
      new Promise<number>((resolve, reject) => {
        // Exclusive: uSockets sets SO_REUSEPORT by default, so a second process started on the same
        // port (another gateway, a stale one, another test's) would bind it too and silently take a
        // share of the connections. Now the second one fails to start instead.
        (app as unknown as ExclusiveListen).listen(host, port, LISTEN_EXCLUSIVE_PORT, (s) => {
          if (!s) return reject(new Error(`could not listen on ${host}:${port} (in use?)`));
          listenSocket = s;
          resolve(uWS.us_socket_local_port(s as unknown as uWS.us_socket));
        });
      }),
    /** Stops accepting connections and closes every socket with 1001. */
    stop: () => {
      draining = true;
      if (listenSocket) uWS.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      o.hub.closeAll();
    },
  };
};
