import { randomUUID } from 'node:crypto';
import { signToken } from '@chat/testkit';
import pg from 'pg';
import type { SocketSpec } from './load/protocol.js';

// The B1/B2 population: `conversations` groups of `members` users each, every user in exactly one
// group. Ids are random UUIDs so the bare server and the real system use the same ones.

export type Population = {
  conversations: { conversationId: string; members: string[] }[];
  membersPerConversation: number;
};

export const userId = (conversation: number, member: number): string =>
  `bench-c${String(conversation).padStart(3, '0')}-m${String(member).padStart(2, '0')}`;

export const makePopulation = (conversations: number, members: number): Population => ({
  conversations: Array.from({ length: conversations }, (_, c) => ({
    conversationId: randomUUID(),
    members: Array.from({ length: members }, (_, m) => userId(c, m)),
  })),
  membersPerConversation: members,
});

/**
 * One socket per member, member-major (all conversations' member 0, then member 1, …), so that
 * consecutive sends of a generator go to different conversations. `targets` sockets are spread evenly.
 */
export const populationSockets = (
  p: Population,
  options: { targets?: number; memberLimit?: number } = {},
): SocketSpec[] => {
  const out: SocketSpec[] = [];
  const members = Math.min(options.memberLimit ?? p.membersPerConversation, p.membersPerConversation);
  for (let m = 0; m < members; m++) {
    for (const c of p.conversations) {
      out.push({
        userId: c.members[m]!,
        conversationIds: [c.conversationId],
        target: Math.floor(out.length / 2) % (options.targets ?? 1),
      });
    }
  }
  return out;
};

const post = async (url: string, token: string, body: unknown): Promise<Record<string, unknown>> => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (res.status >= 300) throw new Error(`POST ${url} → ${res.status} ${JSON.stringify(json)}`);
  return json;
};

/** Creates every conversation through the HTTP API (as its member 0). */
export const createConversations = async (p: Population, apiUrl: string, secret: string): Promise<void> => {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      const c = p.conversations[i];
      if (!c) return;
      const token = await signToken(c.members[0]!, { secret });
      await post(`${apiUrl}/v1/conversations`, token, {
        conversationId: c.conversationId,
        kind: 'group',
        title: `bench ${i}`,
        members: c.members.slice(1),
      });
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
};

/**
 * The gateway loads a user's conversations from the read model on upgrade: wait until the projector
 * has every bench membership (read straight from its table; the query API may not exist yet).
 */
export const waitForMemberships = async (p: Population, databaseUrl: string): Promise<void> => {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const ids = p.conversations.map((c) => c.conversationId);
    const want = ids.length * p.membersPerConversation;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const r = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM read_models.members WHERE active AND conversation_id = ANY($1)',
        [ids],
      );
      if (Number(r.rows[0]?.n) >= want) return;
      if (Date.now() > deadline)
        throw new Error(`read model has ${r.rows[0]?.n}/${want} bench memberships after 60 s`);
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    await client.end();
  }
};
