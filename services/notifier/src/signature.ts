import { createHmac } from 'node:crypto';

// Webhook signatures as Standard Webhooks 1.0 (standardwebhooks.com) defines them, so receivers can
// verify with its libraries as well as with the few lines in the README.

export const WEBHOOK_ID_HEADER = 'webhook-id';
export const WEBHOOK_TIMESTAMP_HEADER = 'webhook-timestamp';
export const WEBHOOK_SIGNATURE_HEADER = 'webhook-signature';

const STANDARD_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Why one `WEBHOOK_SECRET` entry cannot sign (undefined when it can). A `whsec_` secret must decode to
 * 24–64 bytes (the standard's range); a plain one keeps the old rule of at least 16 characters.
 * Whitespace and commas would split the header or the list, so neither may appear.
 */
export const secretProblem = (secret: string): string | undefined => {
  if (/[\s,]/.test(secret)) return 'contains whitespace or a comma';
  if (secret.startsWith(STANDARD_PREFIX)) {
    const encoded = secret.slice(STANDARD_PREFIX.length);
    if (!BASE64.test(encoded)) return 'is not whsec_ followed by base64';
    const bytes = Buffer.from(encoded, 'base64').length;
    if (bytes < 24 || bytes > 64) return `decodes to ${bytes} bytes (24 to 64 needed)`;
    return undefined;
  }
  return secret.length < 16 ? 'is shorter than 16 characters' : undefined;
};

/** The HMAC key: a `whsec_` secret's decoded bytes (as the standard's libraries read it), else the UTF-8 bytes. */
export const signingKey = (secret: string): Buffer =>
  secret.startsWith(STANDARD_PREFIX)
    ? Buffer.from(secret.slice(STANDARD_PREFIX.length), 'base64')
    : Buffer.from(secret, 'utf8');

/**
 * The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for every key,
 * space-separated. Signing with the old and the new key during a rotation lets a receiver that holds
 * either one verify. The id and the timestamp are ours (a UUID, an integer), never a `.` inside them.
 */
export const signWebhook = (
  keys: readonly Buffer[],
  deliveryId: string,
  timestampSeconds: number,
  body: string,
): string =>
  keys
    .map(
      (key) =>
        `v1,${createHmac('sha256', key).update(`${deliveryId}.${timestampSeconds}.${body}`).digest('base64')}`,
    )
    .join(' ');
