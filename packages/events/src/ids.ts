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

export const USER_ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const userIdSchema = z.string().regex(USER_ID_RE, 'must be 1-64 characters of [A-Za-z0-9_.:@-]');

/** Lengths in the contract count Unicode code points, not UTF-16 units. */
export const codePointLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** A time as the server writes it (events, responses): ISO-8601 UTC with milliseconds. */
export const instantSchema = z.iso.datetime({ precision: 3 });

/** ISO-8601 UTC with milliseconds, the only time format on the wire. */
export const isoTimeSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

export const seqSchema = z.number().int().min(0);

/** A global log position as the server hands it out: 32 lower-case hex digits, opaque to clients. */
export const positionSchema = z.string().regex(/^[0-9a-f]{32}$/, 'must be a position returned by the server');
