import type { CommandName } from './commands.js';

// NATS subjects. Everything hangs off one prefix (`NATS_SUBJECT_PREFIX`, default `chat`) so that
// test runs and tenants sharing a NATS server never see each other's traffic.

export const DEFAULT_SUBJECT_PREFIX = 'chat';
const TOKEN_RE = /^[A-Za-z0-9_-]+$/;

/** User ids may contain `.`, `:` and `@`, which NATS treats specially: encode them into one token. */
export const subjectToken = (id: string): string =>
  id.replace(/[^A-Za-z0-9_-]/g, (c) => `~${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

export const natsSubjects = (prefix: string = DEFAULT_SUBJECT_PREFIX) => {
  if (!prefix.split('.').every((t) => TOKEN_RE.test(t)))
    throw new Error(`invalid NATS subject prefix "${prefix}"`);
  return {
    prefix,
    /** Every event of a conversation: its stream's events, receipts and typing. */
    conversation: (conversationId: string) => `${prefix}.conv.${subjectToken(conversationId)}`,
    allConversations: `${prefix}.conv.*`,
    /** Per-user messages: membership changes, unread counts, notifications. */
    user: (userId: string) => `${prefix}.user.${subjectToken(userId)}`,
    allUsers: `${prefix}.user.*`,
    /**
     * `{"heads":{"<conversationId>": seq}}`: the last seq of each conversation in a batch of the log, from
     * the relay when the writer publishes conversation events itself (LIVE_PUBLISH_FROM=command-api).
     * A gateway behind one reads the rest from the store: what a writer stored but never published (it
     * died between its commit and its publish) is delivered all the same.
     */
    heads: `${prefix}.heads`,
    /** Command request/reply (the ws-gateway → command-api path). */
    command: (name: CommandName) => `${prefix}.cmd.${name}`,
    allCommands: `${prefix}.cmd.*`,
    /** JetStream KV bucket holding presence (bucket names allow no dots). */
    presenceBucket: `${prefix.replace(/\./g, '_')}_presence`,
  };
};
export type NatsSubjects = ReturnType<typeof natsSubjects>;
