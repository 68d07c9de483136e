/**
 * SendMessage/s through the HTTP API: starts command-api on a fresh database, creates conversations,
 * then drives `POST /v1/conversations/{id}/messages` with unique messageIds from autocannon.
 *
 *   npx tsx services/command-api/bench/send-message.ts [--conversations 100] [--connections 50] [--duration 20]
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { migrateEventStore } from '@chat/eventstore';
import { createTestDatabase, freePort, signToken } from '@chat/testkit';
import { startBenchCommandApi } from './service.js';

type AutocannonResult = {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  non2xx: number;
  errors: number;
  statusCodeStats: Record<string, { count: number }>;
};
type RawRequest = { method: string; path: string; headers: Record<string, string>; body: string };
type Autocannon = (options: Record<string, unknown>) => Promise<AutocannonResult>;

// autocannon is a dependency of the bench package; borrow it from there rather than add it here.
const autocannon = createRequire(new URL('../../../bench/package.json', import.meta.url))(
  'autocannon',
) as Autocannon;

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '100' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '20' },
  },
});
const conversationCount = Number(values.conversations);

const db = await createTestDatabase('bench');
await migrateEventStore(db.url);
const port = await freePort();
const service = await startBenchCommandApi(db.url, port, { RATE_LIMIT_COMMANDS: '0' });

try {
  const base = `http://127.0.0.1:${port}`;
  const conversations: { id: string; authorization: string }[] = [];
  for (let i = 0; i < conversationCount; i++) {
    const sender = `bench-user-${i}`;
    const authorization = `Bearer ${await signToken(sender)}`;
    const res = await fetch(`${base}/v1/conversations`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'group', members: [`bench-peer-${i}`], title: 'bench' }),
    });
    const { conversationId } = (await res.json()) as { conversationId: string };
    conversations.push({ id: conversationId, authorization });
  }
  // The service's own CPU time per command, from its /metrics: tells whether it or the database limits.
  const cpuSeconds = async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    return Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  };
  const cpuBefore = await cpuSeconds();
  let n = 0;
  const result = await autocannon({
    url: base,
    connections: Number(values.connections),
    duration: Number(values.duration),
    requests: [
      {
        method: 'POST',
        setupRequest: (request: RawRequest) => {
          const conversation = conversations[n++ % conversations.length]!;
          return {
            ...request,
            path: `/v1/conversations/${conversation.id}/messages`,
            headers: { authorization: conversation.authorization, 'content-type': 'application/json' },
            body: JSON.stringify({ messageId: randomUUID(), body: `benchmark message ${n}` }),
          };
        },
      },
    ],
  });
  const cpuUsed = (await cpuSeconds()) - cpuBefore;
  const summary = {
    conversations: conversationCount,
    connections: Number(values.connections),
    durationSeconds: Number(values.duration),
    requestsPerSecond: result.requests.average,
    total: result.requests.total,
    latencyMs: {
      p50: result.latency.p50,
      p99: result.latency.p99,
      avg: result.latency.average,
      max: result.latency.max,
    },
    commandApiCpuMicrosPerRequest: Math.round((cpuUsed / Math.max(1, result.requests.total)) * 1e6),
    non2xx: result.non2xx,
    errors: result.errors,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([k, v]) => [k, v.count])),
  };
  console.log(JSON.stringify(summary, null, 2));
} finally {
  await service.stop();
  await db.drop();
}
