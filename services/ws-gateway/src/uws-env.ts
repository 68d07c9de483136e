/**
 * uWebSockets.js reads its HTTP header limit from the environment once, when its binary loads, so this
 * module is imported before anything that imports 'uWebSockets.js' (first in gateway.ts). 16 KiB is
 * Node's limit, and so the command-api's: a token the command-api takes fits an upgrade too (API.md §1
 * passes it in the query or in Sec-WebSocket-Protocol). uWS's default of 4 KiB answered an upgrade with
 * a token of a few KiB with its own 431. An operator's own setting wins.
 */
export const UWS_HTTP_MAX_HEADERS_SIZE = 16 * 1024;

process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_HTTP_MAX_HEADERS_SIZE);
