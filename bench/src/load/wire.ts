import type { Target } from './protocol.js';

// How the socket generator speaks to each kind of target over one raw WebSocket, so every target is
// driven by the same code at the same cost: the URL, the handshake, the `send` frame and the reading
// of incoming frames. Frames are classified by scanning the text, never by a full JSON parse (a
// generator that parsed every delivery would saturate long before the servers).

export type SendFields = { conversationId: string; messageId: string; body: string };

export type Incoming =
  /** A delivered message (its body carries the bench marker). */
  | { kind: 'event' }
  /** The answer to the send with this `ref`: acknowledged, or refused. */
  | { kind: 'reply'; ref: string; ok: boolean }
  /** A frame the protocol requires us to answer at once (Engine.IO ping → pong). */
  | { kind: 'answer'; frame: string }
  | { kind: 'other' };

export type HandshakeStep = { answer?: string; ready: boolean };

export type Wire = {
  /** Whether the socket authenticates with the bench's JWT. */
  needsToken: boolean;
  url: (target: Target, user: { userId: string; conversationIds?: string[] }, token: string | null) => string;
  /** Called with each frame until it says `ready`; throws when the server refused the socket. */
  handshake: (frame: string, token: string | null) => HandshakeStep;
  encodeSend: (ref: string, fields: SendFields) => string;
  classify: (frame: string) => Incoming;
};

/** The text after `key` up to the next `"`, `,`, `}` or `|` (undefined when `key` is absent). */
export const field = (s: string, key: string, from = 0): string | undefined => {
  const i = s.indexOf(key, from);
  if (i < 0) return undefined;
  const start = i + key.length;
  let end = start;
  while (end < s.length && s[end] !== '"' && s[end] !== ',' && s[end] !== '}' && s[end] !== '|') end++;
  return s.slice(start, end);
};

const EVENT: Incoming = { kind: 'event' };
const OTHER: Incoming = { kind: 'other' };

/** API.md §4 frames: `{"type":"hello"|"event"|"ack"|"error",…}`; sends are `{"type":"send",ref,…}`. */
const chatFrames = {
  handshake: (frame: string): HandshakeStep => {
    if (frame.includes('"hello"')) return { ready: true };
    throw new Error(`first frame was not hello: ${frame.slice(0, 200)}`);
  },
  encodeSend: (ref: string, fields: SendFields): string => JSON.stringify({ type: 'send', ref, ...fields }),
  classify: (s: string): Incoming => {
    const type = field(s, '"type":"');
    if (type === 'event') return EVENT;
    if (type === 'ack' || type === 'error') {
      const ref = field(s, '"ref":"');
      return ref === undefined ? OTHER : { kind: 'reply', ref, ok: type === 'ack' };
    }
    return OTHER;
  },
};

/** This system's ws-gateway: the JWT in `?access_token=`. */
const gateway: Wire = {
  needsToken: true,
  url: (target, _user, token) => `${target.url}?access_token=${token ?? ''}`,
  ...chatFrames,
};

/** bench/bare-uws-server.ts: the same frames, no auth, the user's conversations in the URL. */
const bare: Wire = {
  needsToken: false,
  url: (target, user) =>
    `${target.url}?user=${encodeURIComponent(user.userId)}&c=${(user.conversationIds ?? []).join(',')}`,
  ...chatFrames,
};

/**
 * Socket.IO 4 over Engine.IO v4, WebSocket transport only: the server opens with `0{sid,…}`, the
 * client connects to the main namespace with `40{"token":…}` (its `auth`), the server answers
 * `40{sid}` or `44{message}` (connect error). Events are `42["name",data]`, an event with an ack id is
 * `42<id>["name",data]` and its ack `43<id>[answer]`. The server pings (`2`); the client must pong (`3`)
 * or be dropped after pingInterval + pingTimeout.
 */
const socketio: Wire = {
  needsToken: true,
  url: (target) => `${target.url}/socket.io/?EIO=4&transport=websocket`,
  handshake: (frame, token) => {
    if (frame.startsWith('40')) return { ready: true };
    if (frame.startsWith('44')) throw new Error(`socket.io connect_error: ${frame.slice(2, 200)}`);
    if (frame.startsWith('0')) return { answer: `40${JSON.stringify({ token })}`, ready: false };
    if (frame === '2') return { answer: '3', ready: false };
    throw new Error(`unexpected socket.io handshake frame: ${frame.slice(0, 200)}`);
  },
  encodeSend: (ref, fields) => `42${ref}${JSON.stringify(['send', fields])}`,
  classify: (s) => {
    if (s === '2') return { kind: 'answer', frame: '3' };
    if (s.startsWith('42["event"')) return EVENT;
    if (s.startsWith('43')) {
      const open = s.indexOf('[', 2);
      if (open < 3) return OTHER;
      return { kind: 'reply', ref: s.slice(2, open), ok: !s.startsWith('[{"error"', open) };
    }
    return OTHER;
  },
};

export const wireFor = (kind: Target['kind']): Wire => {
  switch (kind) {
    case 'gateway':
      return gateway;
    case 'bare':
      return bare;
    case 'socketio':
      return socketio;
    default: {
      const never: never = kind;
      throw new Error(`unknown target kind ${String(never)}`);
    }
  }
};
