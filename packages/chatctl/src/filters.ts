import type { RecordedEvent } from '@chat/eventstore';
import { envelopeLine, isValidPosition } from '@chat/eventstore';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type EventSelection = {
  streamPrefixes?: string[];
  types?: string[];
  fromPosition?: string;
  toPosition?: string;
  since?: number;
  until?: number;
};

/** An `--<name>` ISO-8601 time in epoch ms, or a usage error naming the flag. */
export const parseTime = (name: string, value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`--${name}: not an ISO-8601 time: ${value}`);
  return t;
};

const position = (name: string, value: string | undefined): string | undefined => {
  if (value === undefined) return undefined;
  const p = value.toLowerCase();
  if (!isValidPosition(p)) throw new UsageError(`--${name}: not a position (32 hex digits): ${value}`);
  return p;
};

const list = (values: string[] | undefined): string[] | undefined => {
  const out = (values ?? []).flatMap((v) => v.split(',')).filter((v) => v.length > 0);
  return out.length > 0 ? out : undefined;
};

/** The shared filter flags of `replay` and `tail`, validated. */
export const selectionFrom = (values: {
  'stream-prefix'?: string[] | undefined;
  types?: string[] | undefined;
  'from-position'?: string | undefined;
  'to-position'?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}): EventSelection => {
  const s: EventSelection = {};
  const prefixes = list(values['stream-prefix']);
  const types = list(values.types);
  const from = position('from-position', values['from-position']);
  const to = position('to-position', values['to-position']);
  const since = parseTime('since', values.since);
  const until = parseTime('until', values.until);
  if (prefixes) s.streamPrefixes = prefixes;
  if (types) s.types = types;
  if (from) s.fromPosition = from;
  if (to) s.toPosition = to;
  if (since !== undefined) s.since = since;
  if (until !== undefined) s.until = until;
  return s;
};

/** Time filters run client-side (the store filters by stream and type). */
export const matchesTime = (s: EventSelection, e: RecordedEvent): boolean => {
  if (s.since === undefined && s.until === undefined) return true;
  const t = Date.parse(e.occurredAt);
  return (s.since === undefined || t >= s.since) && (s.until === undefined || t < s.until);
};

export const storeFilter = (s: EventSelection) => ({
  ...(s.streamPrefixes ? { streamPrefixes: s.streamPrefixes } : {}),
  ...(s.types ? { eventTypes: s.types } : {}),
});

/** One NDJSON line: the envelope of API.md §3 (the store hands out events upcast to the current schema). */
export const toLine = envelopeLine;
