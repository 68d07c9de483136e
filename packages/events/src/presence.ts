// Presence records in the JetStream KV bucket `natsSubjects(prefix).presenceBucket`, shared by the
// ws-gateway (writer) and the command-api's GET /v1/presence (reader).
//
// - `gw.<gatewayId>`  → `{"at": epochMs}`: the gateway's heartbeat, rewritten every few seconds.
// - `u.<userKey>`     → PresenceRecord: which gateways hold sockets of the user, and when the user's
//   last socket closed. Updated with compare-and-set, so first-online / last-offline are exact.
// A user is online while a gateway with a fresh heartbeat lists them; a crashed gateway stops
// heartbeating and its users read as offline once the heartbeat is older than PRESENCE_STALE_MS.

export type PresenceRecord = { g: Record<string, number>; lastSeenAt: string | null };

export const PRESENCE_HEARTBEAT_MS = 5_000;
export const PRESENCE_STALE_MS = 20_000;

/** KV keys allow `[-/_=.A-Za-z0-9]`, with `.` separating tokens: escape the rest of a userId. */
export const presenceUserKey = (userId: string): string =>
  `u.${userId.replace(/[^A-Za-z0-9_-]/g, (c) => `=${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;

export const presenceGatewayKey = (gatewayId: string): string => `gw.${gatewayId}`;

export const parsePresenceRecord = (text: string | undefined): PresenceRecord => {
  if (!text) return { g: {}, lastSeenAt: null };
  try {
    const v = JSON.parse(text) as Partial<PresenceRecord>;
    return { g: v.g && typeof v.g === 'object' ? v.g : {}, lastSeenAt: v.lastSeenAt ?? null };
  } catch {
    return { g: {}, lastSeenAt: null };
  }
};

/** Online when any listed gateway's heartbeat (epoch ms) is fresh. */
export const isOnline = (
  record: PresenceRecord,
  heartbeatOf: (gatewayId: string) => number | undefined,
  now: number,
  exceptGateway?: string,
): boolean =>
  Object.entries(record.g).some(
    ([gw, n]) => n > 0 && gw !== exceptGateway && now - (heartbeatOf(gw) ?? 0) < PRESENCE_STALE_MS,
  );

/** A presence change between gateways on `<prefix>.presence`. */
export type PresenceMessage = {
  userId: string;
  status: 'online' | 'offline';
  at: string;
  /** The user's conversations when the sender knows them; receivers look them up otherwise. */
  conversationIds?: readonly string[];
};

/** What a gateway publishes on `<prefix>.presence`: the changes of a moment in one message. */
export type PresenceAnnouncement = { changes: PresenceMessage[] };

export const presenceSubject = (prefix: string): string => `${prefix}.presence`;
