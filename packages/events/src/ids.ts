import { z } from 'zod';

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Any UUID version, any letter case on input; always lower-case canonical form after parsing. */
export const uuidSchema = z
  .string()
  .regex(UUID_RE, 'must be a UUID')
  .transform((s) => s.toLowerCase());

export const USER_ID_RE = /^[A-Za-z0-9_.:@-]{1,64}$/;
export const userIdSchema = z.string().regex(USER_ID_RE, 'must be 1-64 characters of [A-Za-z0-9_.:@-]');

/** Lengths in the contract count Unicode code points, not UTF-16 units. */
export const codePointLength = (s: string): number => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/** ISO-8601 UTC with milliseconds, the only time format on the wire. */
export const isoTimeSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

export const seqSchema = z.number().int().min(0);
