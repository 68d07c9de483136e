import { z } from 'zod';
import { codePointLength } from './ids.js';

export const MESSAGE_BODY_MAX = 4000;
export const TITLE_MAX = 200;
export const PREVIEW_MAX = 200;

const isHighSurrogate = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;
const isLowSurrogate = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff;

/**
 * True when `s` has no U+0000 and no unpaired UTF-16 surrogate. Postgres text and jsonb refuse both
 * (and JSON readers turn lone surrogates into U+FFFD), so text that fails here would fail in storage or
 * change on its way through: every text field of the API is checked with this (API.md §2).
 */
export const isStorableText = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (unit === 0) return false;
    if (isLowSurrogate(unit)) return false;
    if (isHighSurrogate(unit)) {
      if (!isLowSurrogate(s.charCodeAt(i + 1))) return false;
      i++;
    }
  }
  return true;
};

export const STORABLE_TEXT_MESSAGE = 'must not contain U+0000 or unpaired UTF-16 surrogates';

/** Any text field of a request or an event: a string `isStorableText` accepts. */
export const textSchema = z.string().refine(isStorableText, STORABLE_TEXT_MESSAGE);

/** Trimmed, storable, 1..max code points, never only whitespace. */
const trimmedText = (max: number) =>
  textSchema
    .transform((s) => s.trim())
    .refine((s) => s.length > 0, 'must not be empty or only whitespace')
    .refine((s) => codePointLength(s) <= max, `must be at most ${max} characters`);

/** A message body: trimmed, 1..4,000 code points, never only whitespace. */
export const messageBodySchema = trimmedText(MESSAGE_BODY_MAX);

export const titleSchema = trimmedText(TITLE_MAX);

/** First PREVIEW_MAX code points of a body, as shown in conversation lists and notifications. */
export const preview = (body: string): string => {
  // A body of at most PREVIEW_MAX UTF-16 units has at most that many code points: the common case,
  // answered without walking the string (this runs for every message a projection applies).
  if (body.length <= PREVIEW_MAX) return body;
  let end = 0;
  for (let n = 0; n < PREVIEW_MAX && end < body.length; n++) {
    const unit = body.charCodeAt(end);
    const pair = isHighSurrogate(unit) && isLowSurrogate(body.charCodeAt(end + 1));
    end += pair ? 2 : 1;
  }
  return body.slice(0, end);
};

/** A character that can occur in a user id (API.md: `[A-Za-z0-9_.:@-]`). */
const isUserIdChar = (unit: number): boolean =>
  (unit >= 0x30 && unit <= 0x39) || // 0-9
  (unit >= 0x41 && unit <= 0x5a) || // A-Z
  (unit >= 0x61 && unit <= 0x7a) || // a-z
  unit === 0x5f || // _
  unit === 0x2e || // .
  unit === 0x3a || // :
  unit === 0x40 || // @
  unit === 0x2d; // -

const MAX_USER_ID = 64;

/**
 * The user ids a body mentions (API.md §2.4): `@<userId>` neither preceded nor followed by a character
 * that can occur in a user id. Each `@` that is not preceded by such a character starts at most one
 * mention, the whole run of user-id characters after it, so the body is read once whatever the group
 * size: `(cc @ann),` and `@ann!` mention `ann`; `@anna` mentions `anna`, not `ann`; `x@ann` and
 * `@ann.` (the id `ann.`) do not mention `ann`.
 */
export const mentionedUserIds = (body: string): Set<string> => {
  const ids = new Set<string>();
  let i = body.indexOf('@');
  while (i !== -1) {
    if (i > 0 && isUserIdChar(body.charCodeAt(i - 1))) {
      i = body.indexOf('@', i + 1);
      continue;
    }
    let end = i + 1;
    while (end < body.length && isUserIdChar(body.charCodeAt(end))) end++;
    const length = end - i - 1;
    if (length >= 1 && length <= MAX_USER_ID) ids.add(body.slice(i + 1, end));
    // Every `@` inside the run is preceded by a user-id character: none starts a mention.
    i = body.indexOf('@', end);
  }
  return ids;
};

/** True when the body mentions `userId` (the rule of `mentionedUserIds`). */
export const mentions = (body: string, userId: string): boolean => mentionedUserIds(body).has(userId);
