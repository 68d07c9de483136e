/**
 * uWebSockets.js reads its HTTP header limit from the environment once, when its binary loads, so this
 * module is imported before anything that imports 'uWebSockets.js' (first in gateway.ts). At uWS's
 * default of 4 KiB an upgrade with a token of a few KiB, which the command-api takes (Node's 16 KiB of
 * headers), got uWS's own 431 and body. 64 KiB lets uWS hand any request up to that size to the upgrade
 * handler, which refuses a token longer than MAX_TOKEN_CHARS with the API's 401 body (server.ts). An
 * operator's own setting wins.
 */
export const UWS_HTTP_MAX_HEADERS_SIZE = 64 * 1024;

/** Longer than any token the command-api can take (its headers stop at Node's 16 KiB): refused, 401. */
export const MAX_TOKEN_CHARS = 16 * 1024;

process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_HTTP_MAX_HEADERS_SIZE);
