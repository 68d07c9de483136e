// What Postgres columns accept, checked before a consumer writes a value taken from an event: a value
// Postgres refuses would fail the whole batch transaction, so a consumer rejects the event instead.

/** Largest `integer` (int4). */
export const INT4_MAX = 2_147_483_647;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** True when a `text` column accepts the string: no U+0000 and no unpaired surrogate. */
export const isStorableText = (text: string): boolean =>
  !text.includes('\u0000') && !LONE_SURROGATE.test(text);

/**
 * The time as ISO-8601 UTC when `timestamptz` stores it as such (years 1–9999: JavaScript also parses
 * year 0 and six-digit years, which Postgres refuses); undefined otherwise.
 */
export const storableTime = (time: string): string | undefined => {
  const ms = Date.parse(time);
  if (Number.isNaN(ms)) return undefined;
  const iso = new Date(ms).toISOString();
  return /^\d{4}-/.test(iso) && !iso.startsWith('0000') ? iso : undefined;
};

/** A value taken from an event that a column would refuse. */
export class UnstorableValueError extends Error {
  override readonly name = 'UnstorableValueError';
}

/**
 * Event data as a consumer stores it: every text field (and text array) checked, and the named time
 * fields normalised to ISO-8601 UTC (null ones left alone). Throws UnstorableValueError naming the
 * field Postgres would refuse. Returns `data` itself when nothing changes, the common case.
 */
export const storableData = <D extends Record<string, unknown>>(
  data: D,
  timeFields: readonly (keyof D & string)[] = [],
): D => {
  for (const [field, value] of Object.entries(data)) {
    const texts: unknown[] = typeof value === 'string' ? [value] : Array.isArray(value) ? value : [];
    if (texts.some((t) => typeof t === 'string' && !isStorableText(t))) {
      throw new UnstorableValueError(
        `${field} holds text Postgres cannot store (U+0000 or an unpaired surrogate)`,
      );
    }
  }
  let out = data;
  for (const field of timeFields) {
    const value = data[field];
    if (value === null || value === undefined) continue;
    const iso = typeof value === 'string' ? storableTime(value) : undefined;
    if (iso === undefined)
      throw new UnstorableValueError(`${field} ${JSON.stringify(value)} is not a time Postgres can store`);
    if (iso !== value) out = { ...out, [field]: iso };
  }
  return out;
};
