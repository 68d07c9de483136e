import { retryDelayMs, retryPolicy } from '@chat/retry';
import { now } from '../history/clock.js';
import type { HistoryWriter } from '../history/file.js';
import type { CommandKind, Via } from '../history/types.js';

// Issuing a command as a client would: each attempt recorded as invoke → ok | fail | unknown, retried
// with the same messageId after an unknown outcome or a refusal that invites a retry (503, 429,
// connection refused), until it succeeds or the client gives up. Over WS (`send`/`read` frames through
// a device's socket) or HTTP (the command-api), whichever the caller picks per attempt.

/** Refusals after which a retry may succeed: the contract says nothing was written. */
const RETRYABLE_CODES = new Set(['unavailable', 'rate_limited', 'refused']);
/** Refusals the contract names: anything else in an error frame does not say whether it took effect. */
const CATALOGUE_CODES = new Set([
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'payload_too_large',
  'rate_limited',
  'unavailable',
]);

export type CommandSpec = {
  op: string;
  cmd: CommandKind;
  user: string;
  token: string;
  conv: string;
  mid?: string;
  body?: string;
  pad?: number;
  upTo?: number;
};

export type Outcome =
  | { k: 'ok'; status?: number; result: Record<string, unknown> }
  | { k: 'fail'; status?: number; code: string }
  | { k: 'unknown'; reason: string };

/** One attempt over one transport. */
export type Transport = (spec: CommandSpec, attempt: number) => Promise<Outcome>;

export type IssueOptions = {
  history: HistoryWriter;
  phase: 'run' | 'resolve';
  maxAttempts: number;
  maxAgeMs: number;
  /** Chooses the transport for each attempt (the socket may be gone by the retry). */
  transport: (attempt: number) => { via: Via; send: Transport };
  /** Attempt numbers start after this (the resolve phase continues a run's numbering). */
  firstAttempt?: number;
};

const COMMAND_RETRY = retryPolicy({
  name: 'chaos-command',
  baseMs: 200,
  maxMs: 4_000,
  maxAttempts: Infinity,
});

export const fullBody = (spec: Pick<CommandSpec, 'body' | 'pad'>): string =>
  `${spec.body ?? ''}${spec.pad ? '😀'.repeat(spec.pad) : ''}`;

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export type Issued = { outcome: Outcome; attempts: number };

/** Runs a command's attempts; resolves with the last outcome once it succeeded or the client gave up. */
export const issue = async (spec: CommandSpec, options: IssueOptions): Promise<Issued> => {
  const { history } = options;
  const started = now();
  const first = options.firstAttempt ?? 1;
  for (let a = first; ; a++) {
    const { via, send } = options.transport(a);
    history.write({
      k: 'invoke',
      t: now(),
      op: spec.op,
      a,
      cmd: spec.cmd,
      via,
      phase: options.phase,
      user: spec.user,
      conv: spec.conv,
      ...(spec.mid ? { mid: spec.mid } : {}),
      ...(a === first && spec.body !== undefined ? { body: spec.body } : {}),
      ...(a === first && spec.pad ? { pad: spec.pad } : {}),
      ...(spec.upTo !== undefined ? { upTo: spec.upTo } : {}),
    });
    const outcome = await send(spec, a).catch(
      (err: unknown): Outcome => ({ k: 'unknown', reason: err instanceof Error ? err.message : String(err) }),
    );
    const t = now();
    switch (outcome.k) {
      case 'ok': {
        const r = outcome.result;
        const seq = num(r.seq);
        const pos = text(r.position);
        const readSeq = num(r.readSeq);
        history.write({
          k: 'ok',
          t,
          op: spec.op,
          a,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
          ...(seq !== undefined ? { seq } : {}),
          ...(pos !== undefined ? { pos } : {}),
          ...(readSeq !== undefined ? { readSeq } : {}),
        });
        return { outcome, attempts: a };
      }
      case 'fail':
        history.write({
          k: 'fail',
          t,
          op: spec.op,
          a,
          code: outcome.code,
          ...(outcome.status !== undefined ? { status: outcome.status } : {}),
        });
        if (!RETRYABLE_CODES.has(outcome.code)) return { outcome, attempts: a };
        break;
      case 'unknown':
        history.write({ k: 'unknown', t, op: spec.op, a, reason: outcome.reason });
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }
    if (a - first + 1 >= options.maxAttempts || now() - started >= options.maxAgeMs) {
      history.write({ k: 'giveup', t: now(), op: spec.op });
      return { outcome, attempts: a };
    }
    await new Promise((r) => setTimeout(r, retryDelayMs(COMMAND_RETRY, a - first + 1)));
  }
};

const request = (spec: CommandSpec): { method: string; path: string; body?: Record<string, unknown> } => {
  const c = encodeURIComponent(spec.conv);
  switch (spec.cmd) {
    case 'send':
      return {
        method: 'POST',
        path: `/v1/conversations/${c}/messages`,
        body: { messageId: spec.mid, body: fullBody(spec) },
      };
    case 'read':
      return { method: 'POST', path: `/v1/conversations/${c}/read`, body: { upToSeq: spec.upTo } };
    case 'leave':
      return { method: 'DELETE', path: `/v1/conversations/${c}/members/${encodeURIComponent(spec.user)}` };
    default: {
      const never: never = spec.cmd;
      throw new Error(`unknown command ${String(never)}`);
    }
  }
};

/** One of the timeouts, at random. */
export const drawTimeout = (timeoutsMs: readonly number[]): number =>
  timeoutsMs[Math.floor(Math.random() * timeoutsMs.length)] ?? 8_000;

/** An attempt over HTTP against the command-api, with no answer after one of `timeoutsMs` unknown. */
export const httpTransport =
  (apiUrl: string, timeoutsMs: readonly number[]): Transport =>
  async (spec) => {
    const { method, path, body } = request(spec);
    let res: Response;
    try {
      res = await fetch(`${apiUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${spec.token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(drawTimeout(timeoutsMs)),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      // Refused: the request never reached a server, so nothing can have been written.
      if (cause?.code === 'ECONNREFUSED') return { k: 'fail', code: 'refused' };
      const name = (err as Error).name;
      return {
        k: 'unknown',
        reason: name === 'TimeoutError' ? 'timeout' : (cause?.code ?? (err as Error).message),
      };
    }
    const raw = await res.text().catch(() => '');
    let parsed: Record<string, unknown> = {};
    try {
      parsed = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {}
    if (res.ok) return { k: 'ok', status: res.status, result: parsed };
    const code = text((parsed.error as Record<string, unknown> | undefined)?.code);
    if (res.status < 500 || res.status === 503)
      return { k: 'fail', status: res.status, code: code ?? `http_${res.status}` };
    return { k: 'unknown', reason: `http ${res.status} ${code ?? ''}`.trim() };
  };

/** What an `ack`/`error` frame (or the socket closing first) says about an attempt. */
export const outcomeOfFrame = (frame: { type: string; [key: string]: unknown }): Outcome => {
  if (frame.type === 'ack') return { k: 'ok', result: (frame.result ?? {}) as Record<string, unknown> };
  if (frame.type === 'closed') return { k: 'unknown', reason: 'socket closed' };
  const code = text((frame.error as Record<string, unknown> | undefined)?.code) ?? 'unknown';
  if (CATALOGUE_CODES.has(code)) return { k: 'fail', code };
  return { k: 'unknown', reason: `error ${code}` };
};
