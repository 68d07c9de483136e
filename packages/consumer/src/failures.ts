import type { RecordedEvent } from '@chat/eventstore';

/**
 * Thrown by a consumer's `applyBatch` when it knows which event it cannot apply (its data fails the
 * consumer's checks): the runtime then applies the events around it without searching for it.
 */
export class EventRejectedError extends Error {
  override readonly name = 'EventRejectedError';
  constructor(
    readonly event: RecordedEvent,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`event ${event.id} (${event.type} at ${event.position}): ${message}`, options);
  }
}

// SQLSTATE classes that say nothing about the event being applied: the connection, the server's
// resources or state, the deployment (a missing table or privilege), concurrency (serialization,
// deadlock) and internal errors. Classes 22 (data exception) and 23 (integrity constraint) — what a
// malformed event causes — are deliberately absent: such failures may be the event's fault.
const TRANSIENT_SQLSTATE_CLASSES = new Set([
  '08', // connection exception
  '25', // invalid transaction state (e.g. read-only after a failover)
  '28', // invalid authorization
  '3D', // invalid catalog name (database missing)
  '3F', // invalid schema name
  '40', // transaction rollback: serialization failure, deadlock
  '42', // undefined table/column, insufficient privilege: migrations or grants, not the event
  '53', // insufficient resources: disk full, out of memory, too many connections
  '55', // object not in prerequisite state, lock not available
  '57', // operator intervention: admin shutdown, query cancelled, cannot connect now
  '58', // system error (I/O)
  'F0', // configuration file error
  'XX', // internal error
]);

const TRANSIENT_SYSTEM_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

// nats.js error codes of a connection that is down or slow (not MAX_PAYLOAD_EXCEEDED or BAD_*: those
// are the message's fault).
const TRANSIENT_NATS_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  'CONNECTION_TIMEOUT',
  'DISCONNECT',
  'TIMEOUT',
  'STALE_CONNECTION',
  'AUTHORIZATION_VIOLATION',
  'AUTHENTICATION_EXPIRED',
  'PERMISSIONS_VIOLATION',
]);

// node-postgres reports a dead connection with plain errors that carry no code.
const PG_CONNECTION_MESSAGE =
  /Connection terminated|connection error|is not queryable|timeout exceeded when trying to connect|after calling end on the pool|Query read timeout/i;

const TRANSIENT_ERROR_NAMES = new Set(['EventStoreUnavailableError', 'TimeoutError', 'AbortError']);

/** The error and its causes (and an AggregateError's members), nearest first. */
const causes = function* (error: unknown, depth = 0): Generator<unknown> {
  if (error === undefined || error === null || depth > 8) return;
  yield error;
  if (error instanceof AggregateError) for (const e of error.errors) yield* causes(e, depth + 1);
  if (error instanceof Error) yield* causes(error.cause, depth + 1);
};

/**
 * True when the failure is a dependency's (Postgres, NATS, the event store unreachable or refusing
 * for a reason of its own), so the batch is retried as it is and no event is blamed. Anything else
 * may be the event's fault; the runtime still blames one only when it fails alone while every
 * dependency answers.
 */
export const isTransient = (error: unknown): boolean => {
  for (const e of causes(error)) {
    if (e instanceof EventRejectedError) return false;
    if (typeof e !== 'object' || e === null) continue;
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof code === 'string') {
      if (/^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2))) return true;
      if (TRANSIENT_SYSTEM_CODES.has(code) || TRANSIENT_NATS_CODES.has(code)) return true;
    }
    if (typeof name === 'string' && TRANSIENT_ERROR_NAMES.has(name)) return true;
    if (typeof message === 'string' && PG_CONNECTION_MESSAGE.test(message)) return true;
  }
  return false;
};

/** The event a failure names, when the consumer said which one it could not apply. */
export const rejectedEvent = (error: unknown): RecordedEvent | undefined => {
  for (const e of causes(error)) if (e instanceof EventRejectedError) return e.event;
  return undefined;
};

const ERROR_TEXT_MAX = 2000;

/** One line per error in the cause chain, for the quarantine record and `chatctl`. */
export const describeError = (error: unknown): string => {
  const lines: string[] = [];
  for (const e of causes(error)) {
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      lines.push(`${e.name}${typeof code === 'string' ? ` [${code}]` : ''}: ${e.message}`);
    } else lines.push(String(e));
  }
  const text = lines.join('\ncaused by ');
  return text.length > ERROR_TEXT_MAX ? `${text.slice(0, ERROR_TEXT_MAX)}…` : text;
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text a Postgres `text` column accepts: an error message may quote the event's data, which is
 * exactly what could not be stored (U+0000, a lone surrogate).
 */
export const storableText = (text: string): string =>
  text.replaceAll('\u0000', '\\u0000').replace(LONE_SURROGATE, '\ufffd');
