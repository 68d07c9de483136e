export const STREAM_PREFIX = {
  conversation: 'conversation-',
  receipts: 'receipts-',
  typing: 'typing-',
  user: 'user-',
  /** A moderation report (issue 16): its filing and resolution, read by moderators only. */
  report: 'report-',
} as const;
export type StreamCategory = keyof typeof STREAM_PREFIX;

export const conversationStream = (conversationId: string) =>
  `${STREAM_PREFIX.conversation}${conversationId}`;
export const receiptsStream = (conversationId: string) => `${STREAM_PREFIX.receipts}${conversationId}`;
export const typingStream = (conversationId: string) => `${STREAM_PREFIX.typing}${conversationId}`;
export const userStream = (userId: string) => `${STREAM_PREFIX.user}${userId}`;
export const reportStream = (reportId: string) => `${STREAM_PREFIX.report}${reportId}`;

/** Retention of typing streams (stream metadata max age; the Postgres adapter scavenges). */
export const TYPING_MAX_AGE_SECONDS = 3600;

export const parseStreamId = (streamId: string): { category: StreamCategory; id: string } | null => {
  for (const [category, prefix] of Object.entries(STREAM_PREFIX) as [StreamCategory, string][]) {
    if (streamId.startsWith(prefix) && streamId.length > prefix.length) {
      return { category, id: streamId.slice(prefix.length) };
    }
  }
  return null;
};
