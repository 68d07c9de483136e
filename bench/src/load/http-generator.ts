import { randomUUID } from 'node:crypto';
import { signToken } from '@chat/testkit';
import autocannon, { type Request } from 'autocannon';

// The HTTP command-path generator (B4): autocannon with `connections` concurrent senders, each
// request a new SendMessage (fresh messageId) into the next conversation, as the next member.

export type HttpLoadCommand = {
  url: string;
  jwtSecret: string;
  conversations: { conversationId: string; members: string[] }[];
  connections: number;
  durationS: number;
};

export type HttpLoadReply = {
  created: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  durationS: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
};

const run = async (cmd: HttpLoadCommand): Promise<HttpLoadReply> => {
  const senders: { path: string; auth: string }[] = [];
  const depth = Math.max(...cmd.conversations.map((c) => c.members.length));
  for (let m = 0; m < depth; m++) {
    for (const c of cmd.conversations) {
      const member = c.members[m];
      if (!member) continue;
      senders.push({
        path: `/v1/conversations/${c.conversationId}/messages`,
        auth: `Bearer ${await signToken(member, { secret: cmd.jwtSecret, expiresIn: 3600 })}`,
      });
    }
  }
  let n = 0;
  const setupRequest = (req: Request): Request => {
    const s = senders[n++ % senders.length]!;
    return {
      ...req,
      method: 'POST',
      path: s.path,
      headers: { authorization: s.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ messageId: randomUUID(), body: `bench|http|${Date.now()}|` }),
    };
  };
  const result = await autocannon({
    url: cmd.url,
    connections: cmd.connections,
    duration: cmd.durationS,
    timeout: 10,
    requests: [{ setupRequest }],
  });
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, s]) => [code, Number(s.count)]),
  );
  return {
    created: statusCodes['201'] ?? 0,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    durationS: result.duration,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
  };
};

process.once('message', (cmd: HttpLoadCommand) => {
  run(cmd).then(
    (r) => process.send?.(r, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
