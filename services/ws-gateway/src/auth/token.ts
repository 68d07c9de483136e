const BEARER_PREFIX = 'bearer.';

/**
 * The token of an upgrade request: `?access_token=` or the `bearer.<jwt>` entry of
 * `Sec-WebSocket-Protocol` (API.md §1). Also says which subprotocol to select in the answer.
 */
export const tokenFromUpgrade = (
  query: string,
  protocolHeader: string,
): { token: string | undefined; protocol: string } => {
  const offered = protocolHeader
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bearer = offered.find((p) => p.startsWith(BEARER_PREFIX))?.slice(BEARER_PREFIX.length);
  const protocol = offered.includes('chat.v1') ? 'chat.v1' : '';
  const fromQuery = new URLSearchParams(query).get('access_token') ?? undefined;
  return { token: fromQuery || bearer || undefined, protocol };
};

/** Browsers send `Origin`; non-browser clients usually do not and are not subject to the list. */
export const originAllowed = (origin: string, allowed: readonly string[] | undefined): boolean =>
  !allowed || allowed.length === 0 || origin === '' || allowed.includes(origin);
