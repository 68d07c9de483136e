import { randomUUID } from 'node:crypto';
import { apiErrorBodySchema, ERROR_STATUS, validationIssueSchema } from '@chat/events';
import {
  createDataKeyStore,
  createPostgresEventStore,
  EncryptingEventStore,
  type EventStore,
} from '@chat/eventstore';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import pg from 'pg';
import { z } from 'zod';
import { type Cluster, startCluster } from '../../support/cluster.js';
import { type RawResponse, rawRequest } from './http.js';
import type { Known, Resolve } from './json.js';
import { type Operation, readOperations } from './openapi.js';
import { openSocket, type RecordingSocket, resume } from './sockets.js';
import { CLAIMS, validToken } from './tokens.js';

// The system under attack and what the attacker knows of it. Victims share conversations with the
// attacker (and one that the attacker is not in), keep sockets open and send legitimate commands all
// along; whatever the attacker does, they must see exactly what the log says they should.

export const ATTACKER = 'mallory';
export const VICTIMS = ['victim-a', 'victim-b', 'victim-c'] as const;
/** Text that only the attacker-free conversation holds: no answer to the attacker may contain it. */
export const SECRET = 'secret-6d1f0c2e';
export const ALLOWED_ORIGINS = ['https://app.fuzz.test', 'http://localhost:5173'];

export type Tally = {
  cases: number;
  fiveXx: number;
  crashes: number;
  consumerHalts: number;
  violations: string[];
  /** Answers by operation and status (`sendMessage 201`), to see how deep the cases got. */
  answers: Map<string, number>;
  /** Reported defects of services under rework, tolerated by name and counted (see the summary). */
  knownFindings: Map<string, number>;
};

export type World = {
  cluster: Cluster;
  pool: pg.Pool;
  store: EventStore;
  operations: Operation[];
  /** Conversations: G1 (victim-a's group with the attacker), D (direct victim-a/attacker), G3 (the attacker's group), G2 (victims only). */
  ids: { g1: string; g2: string; g3: string; direct: string };
  known: Record<Known['kind'], (string | number)[]>;
  resolve: Resolve;
  /** Starts a case: a message id resolved after a conversation id is one of that conversation's. */
  beginCase(): void;
  /** Remembers a message of a conversation. */
  learnMessage(conversationId: string, messageId: string, mine: boolean): void;
  victimSockets: RecordingSocket[];
  tally: Tally;
  violation(what: string): void;
  knownFinding(what: string): void;
  /** A request as the attacker (or with `token`), recorded in the tally. */
  call(options: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
  }): Promise<RawResponse>;
  /** Events the attacker (anyone but the victims) appended so far. */
  attackerEvents(): Promise<number>;
  /** The conversations whose stream ever named the user as a member. */
  conversationsOf(userId: string): Promise<string[]>;
  /** Processes that have exited. */
  deadProcesses(): string[];
  /** Re-adds the attacker to the shared conversations when a fuzzed request removed it. */
  repairMembership(): Promise<void>;
  startLegitimateTraffic(): () => Promise<void>;
  stop(): Promise<void>;
};

export const bearer = (user: string, extra: Parameters<typeof validToken>[1] = []) =>
  `Bearer ${validToken(user, extra)}`;

/** Starts every service on a private database and NATS prefix, and sets the victims up. */
export const startWorld = async (): Promise<World> => {
  const cluster = await startCluster({
    label: 'fuzz',
    gateways: 2,
    notifier: true,
    tokenClaims: CLAIMS,
    gatewayEnv: { ALLOWED_ORIGINS: ALLOWED_ORIGINS.join(',') },
    // Rate limits on (their code path is part of every request), with budgets the fuzzer stays under so
    // that no case is answered 429 before its input is read.
    commandApiEnv: { RATE_LIMIT_COMMANDS: '5000', RATE_LIMIT_QUERIES: '5000' },
  });
  const pool = new pg.Pool({ connectionString: cluster.db.url, max: 6 });
  // Read as the services read: through the data keys (README "Erasure"), so stored text is plaintext.
  const store: EventStore = new EncryptingEventStore(
    createPostgresEventStore({ pool, pollIntervalMs: 50 }),
    createDataKeyStore({
      databaseUrl: cluster.db.url,
      master: DEV_DATA_KEY_MASTER,
      logger: createLogger('fuzz', 'silent'),
    }),
  );
  const tally: Tally = {
    cases: 0,
    fiveXx: 0,
    crashes: 0,
    consumerHalts: 0,
    violations: [],
    answers: new Map(),
    knownFindings: new Map(),
  };
  const violation = (what: string) => {
    if (tally.violations.length < 200 && !tally.violations.includes(what)) tally.violations.push(what);
  };
  const as = (user: string) => ({
    post: <T>(path: string, body: unknown) => cluster.http<T>(user, 'POST', path, body),
    get: <T>(path: string) => cluster.http<T>(user, 'GET', path),
  });
  const [a, b] = [as('victim-a'), as('victim-b')];
  const mallory = as(ATTACKER);

  const g1 = randomUUID();
  const g2 = randomUUID();
  const g3 = randomUUID();
  await a.post('/v1/conversations', {
    conversationId: g1,
    kind: 'group',
    title: 'shared',
    members: ['victim-b', ATTACKER],
  });
  await a.post('/v1/conversations', {
    conversationId: g2,
    kind: 'group',
    title: `private ${SECRET}`,
    members: ['victim-b', 'victim-c'],
  });
  await mallory.post('/v1/conversations', {
    conversationId: g3,
    kind: 'group',
    members: ['victim-a', 'victim-b'],
  });
  const { conversationId: direct } = await a.post<{ conversationId: string }>('/v1/conversations', {
    kind: 'direct',
    members: [ATTACKER],
  });
  const known: World['known'] = {
    memberConversation: [g1, direct, g3],
    foreignConversation: [g2],
    message: [],
    ownMessage: [],
    notification: [],
    user: [ATTACKER, ...VICTIMS, 'nobody', 'victim-a:device', 'a'.repeat(64)],
    position: [],
    cursor: [],
    seq: [0, 1, 2, 3, 5, 8],
    stream: [],
  };
  // Message ids by conversation, so that a case naming a conversation and then a message names one of
  // its messages (edits, deletes and replies get past "unknown message").
  const messagesOf = new Map<string, { all: string[]; mine: string[] }>();
  let caseConversation: string | undefined;
  const learnMessage = (conversationId: string, messageId: string, mine: boolean) => {
    known.message.push(messageId);
    if (mine) known.ownMessage.push(messageId);
    const lists = messagesOf.get(conversationId) ?? { all: [], mine: [] };
    for (const list of mine ? [lists.all, lists.mine] : [lists.all]) {
      list.push(messageId);
      if (list.length > 200) list.shift();
    }
    messagesOf.set(conversationId, lists);
  };
  const send = async (who: ReturnType<typeof as>, conversationId: string, body: string) => {
    const r = await who.post<{ messageId: string; position: string; seq: number }>(
      `/v1/conversations/${conversationId}/messages`,
      { messageId: randomUUID(), body },
    );
    learnMessage(conversationId, r.messageId, who === mallory);
    known.position.push(r.position);
    known.seq.push(r.seq);
  };
  await send(a, g1, 'hello @mallory');
  await send(b, g1, 'hi all');
  await send(a, g2, `only for us: ${SECRET}`);
  await send(mallory, g1, 'hello @victim-a');
  await send(mallory, g3, 'mine');
  await send(a, direct, 'direct hello');
  known.stream.push(
    `conversation-${g1}`,
    `conversation-${g2}`,
    `user-${ATTACKER}`,
    `receipts-${g1}`,
    `typing-${g1}`,
  );
  for (const path of ['/v1/conversations?limit=1', '/v1/notifications?limit=1']) {
    const page = await mallory.get<{ nextCursor: string | null; items: { notificationId?: string }[] }>(path);
    if (page.nextCursor) known.cursor.push(page.nextCursor);
  }
  const notifications = await mallory.get<{ items: { notificationId: string }[] }>('/v1/notifications');
  known.notification.push(...notifications.items.map((n) => n.notificationId));
  known.notification.push(randomUUID());

  const resolve: Resolve = (k: Known) => {
    const of = caseConversation === undefined ? undefined : messagesOf.get(caseConversation);
    const ofCase = k.kind === 'message' ? of?.all : k.kind === 'ownMessage' ? of?.mine : undefined;
    const list = ofCase?.length ? ofCase : known[k.kind];
    const value = list.length === 0 ? randomUUID() : (list[k.index % list.length] as string | number);
    if (k.kind === 'memberConversation' || k.kind === 'foreignConversation') caseConversation = String(value);
    return value;
  };

  // Victim sockets: both token transports, both gateways, an allowed Origin on one.
  const [gw1, gw2] = cluster.gateways as [Cluster['gateways'][number], Cluster['gateways'][number]];
  const victimSockets = [
    await openSocket(gw1.url, 'victim-a', 'victim-a@gw1', { token: validToken('victim-a') }),
    await openSocket(gw2.url, 'victim-a', 'victim-a@gw2', {
      token: validToken('victim-a'),
      viaProtocol: true,
      origin: ALLOWED_ORIGINS[0],
    }),
    await openSocket(gw2.url, 'victim-b', 'victim-b@gw2', { token: validToken('victim-b') }),
    await openSocket(gw1.url, 'victim-c', 'victim-c@gw1', { token: validToken('victim-c') }),
  ];
  const conversationsOf = async (userId: string): Promise<string[]> => {
    const { rows } = await pool.query<{ stream_id: string }>(
      `SELECT DISTINCT stream_id FROM es.events
        WHERE stream_id LIKE 'conversation-%'
          AND ((type = 'ConversationStarted' AND data->'members' ? $1) OR (type = 'MemberJoined' AND data->>'userId' = $1))`,
      [userId],
    );
    return rows.map((r) => r.stream_id.slice('conversation-'.length));
  };
  for (const socket of victimSockets) {
    const mine = await conversationsOf(socket.userId);
    await resume(socket, Object.fromEntries(mine.map((id) => [id, -1])));
  }

  const processes = [
    cluster.commandApi,
    cluster.projector,
    ...(cluster.notifier ? [cluster.notifier] : []),
    ...cluster.gateways.map((g) => g.proc),
  ];
  const membersOf = async (conversationId: string) => {
    const members = new Set<string>();
    for (const e of await store.readStream(`conversation-${conversationId}`)) {
      const data = e.data as { members?: string[]; userId?: string };
      if (e.type === 'ConversationStarted') for (const m of data.members ?? []) members.add(m);
      if (e.type === 'MemberJoined' && data.userId) members.add(data.userId);
      if (e.type === 'MemberLeft' && data.userId) members.delete(data.userId);
    }
    return members;
  };

  return {
    cluster,
    pool,
    store,
    operations: await readOperations(cluster.api),
    ids: { g1, g2, g3, direct },
    known,
    resolve,
    beginCase: () => {
      caseConversation = undefined;
    },
    learnMessage,
    victimSockets,
    tally,
    violation,
    knownFinding: (what) => tally.knownFindings.set(what, (tally.knownFindings.get(what) ?? 0) + 1),
    call: ({ method, path, headers, body }) =>
      rawRequest(cluster.api, {
        method,
        path,
        headers: headers ?? {},
        ...(body === undefined ? {} : { body }),
      }),
    async attackerEvents() {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM es.events WHERE NOT (metadata->>'userId' = ANY($1))`,
        [[...VICTIMS]],
      );
      return rows[0]?.n ?? 0;
    },
    conversationsOf,
    deadProcesses: () =>
      processes.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null).map((p) => p.name),
    async repairMembership() {
      for (const id of [g1, g3]) {
        const members = await membersOf(id);
        if (members.has(ATTACKER)) continue;
        const helper = VICTIMS.find((v) => members.has(v));
        if (helper)
          await cluster.http(helper, 'POST', `/v1/conversations/${id}/members`, { userId: ATTACKER });
      }
    },
    startLegitimateTraffic() {
      let running = true;
      const loop = (async () => {
        for (let i = 0; running && i < 100_000; i++) {
          const who = i % 2 === 0 ? 'victim-a' : 'victim-b';
          const target = i % 3 === 0 ? g2 : g1;
          try {
            if (i % 7 === 3) await cluster.http(who, 'POST', `/v1/conversations/${target}/typing`, {});
            else if (i % 5 === 4) {
              const conv = await cluster.http<{ lastSeq: number }>(who, 'GET', `/v1/conversations/${target}`);
              await cluster.http(who, 'POST', `/v1/conversations/${target}/read`, { upToSeq: conv.lastSeq });
            } else {
              const r = await cluster.http<{ messageId: string }>(
                who,
                'POST',
                `/v1/conversations/${target}/messages`,
                {
                  messageId: randomUUID(),
                  body: i % 4 === 0 ? `legit ${i} @mallory ${target === g2 ? SECRET : ''}` : `legit ${i}`,
                },
              );
              if (target === g1) learnMessage(g1, r.messageId, false);
            }
          } catch (err) {
            violation(`a legitimate command of ${who} failed: ${String(err).slice(0, 300)}`);
          }
          await new Promise((r) => setTimeout(r, 150));
        }
      })();
      return async () => {
        running = false;
        await loop;
      };
    },
    async stop() {
      for (const s of victimSockets) s.ws.terminate();
      await store.close();
      await pool.end();
      await cluster.stop();
    },
  };
};

const details400 = z.array(validationIssueSchema);

/** What is wrong with an error answer: the API.md §2 body, a catalogue code matching the status. */
export const errorBodyProblem = (res: RawResponse): string | undefined => {
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch {
    return `status ${res.status} with a body that is not JSON: ${res.text.slice(0, 200)}`;
  }
  const parsed = apiErrorBodySchema.safeParse(json);
  if (!parsed.success) return `status ${res.status} with a body outside API.md §2: ${res.text.slice(0, 300)}`;
  const { code, details } = parsed.data.error;
  if (ERROR_STATUS[code] !== res.status)
    return `status ${res.status} with code ${code} (${ERROR_STATUS[code]})`;
  if (code === 'validation_failed' && !details400.safeParse(details).success)
    return `validation_failed without a list of {path, message}: ${res.text.slice(0, 300)}`;
  if (code === 'rate_limited' && !res.headers['retry-after']) return '429 without Retry-After';
  return undefined;
};
