import { z } from 'zod';

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const LOWER_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Any UUID version, any letter case on input; always lower-case canonical form after parsing. */
export const uuidSchema = z
  .string()
  .regex(UUID_RE, 'must be a UUID')
  .transform((s) => s.toLowerCase());

/** A UUID as the server writes it (events, responses): lower-case canonical form. */
export const uuidOutputSchema = z.string().regex(LOWER_UUID_RE, 'must be a lower-case UUID');

/** The version nibble of a UUID (its 13th hex digit). */
export const uuidVersion = (uuid: string): number => Number.parseInt(uuid.charAt(14), 16);

export const USER_ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const userIdSchema = z.string().regex(USER_ID_RE, 'must be 1-64 characters of [A-Za-z0-9_.:@-]');

/** Lengths in the contract count Unicode code points, not UTF-16 units. */
export const codePointLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * The instants every reader can store: Postgres `timestamptz`, JavaScript `Date` and ISO-8601 with a
 * four-digit year all hold 1970-01-01..9999-12-31 (API.md §2.3 bounds `mute.until` to it).
 */
export const MIN_INSTANT = '1970-01-01T00:00:00.000Z';
export const MAX_INSTANT = '9999-12-31T23:59:59.999Z';

/** ISO-8601 UTC with milliseconds, the only time format the server writes. */
const INSTANT_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** A canonical instant within MIN_INSTANT..MAX_INSTANT (strings of this form order like the times). */
export const isInstant = (s: string): boolean => {
  if (!INSTANT_RE.test(s) || s < MIN_INSTANT || s > MAX_INSTANT) return false;
  const ms = Date.parse(s);
  // Rolls over impossible dates (02-30, 24:00): only a real instant prints as itself.
  return !Number.isNaN(ms) && new Date(ms).toISOString() === s;
};

/** A time as the server writes it (events, responses, cursors). */
export const instantSchema = z
  .string()
  .refine(
    isInstant,
    `must be an ISO-8601 UTC time with milliseconds between ${MIN_INSTANT} and ${MAX_INSTANT}`,
  );

/**
 * A time from a client: ISO-8601 with any offset, converted to UTC with milliseconds, and within
 * MIN_INSTANT..MAX_INSTANT once converted (an offset can carry 9999-12-31 into year 10000).
 */
export const isoTimeSchema = z.iso.datetime({ offset: true }).transform((s, ctx) => {
  const ms = Date.parse(s);
  const utc = Number.isNaN(ms) ? '' : new Date(ms).toISOString();
  if (isInstant(utc)) return utc;
  ctx.issues.push({
    code: 'custom',
    input: s,
    message: `must lie between ${MIN_INSTANT} and ${MAX_INSTANT} once converted to UTC`,
  });
  return z.NEVER;
});

/**
 * Largest `seq` and numeric query parameter: read models store revisions as 32-bit integers, so larger
 * numbers are refused as input instead of failing in storage (API.md §2: `before`/`after` above 2^31−1).
 */
export const MAX_SEQ = 2 ** 31 - 1;
export const seqSchema = z.number().int().min(0).max(MAX_SEQ);

/** A global log position as the server hands it out: 32 lower-case hex digits, opaque to clients. */
export const positionSchema = z.string().regex(/^[0-9a-f]{32}$/, 'must be a position returned by the server');
