import { randomUUID } from 'node:crypto';
import { waitFor } from '@chat/testkit';
import { afterAll, beforeAll, it } from 'vitest';
import { connectClient, sleep } from './support/clients.js';
import { type Cluster, createGroup, startCluster } from './support/cluster.js';

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ label: 'scratch', gateways: 2, gatewayEnv: { GW_DEBUG: '1' } });
});
afterAll(async () => {
  await cluster?.stop();
});
for (let i = 0; i < 4; i++)
  it('debug typing', async () => {
    const a = `a-${randomUUID().slice(0, 6)}`;
    const b = `b-${randomUUID().slice(0, 6)}`;
    const group = await createGroup(cluster, a, [b]);
    const a1 = await connectClient(cluster.gateways[0]!.url, a);
    const a2 = await connectClient(cluster.gateways[1]!.url, a);
    const b1 = await connectClient(cluster.gateways[1]!.url, b);
    void a2;
    a1.client.on('error', (e) => console.log('A error', e));
    b1.client.on('error', (e) => console.log('B error', e));
    console.log('typing sent', a1.client.typing(group));
    const t0 = Date.now();
    await waitFor(() => b1.typing.length > 0, { timeoutMs: 8000 }).catch(() => console.log('no typing'));
    console.log('typing after', Date.now() - t0);
    console.log('B typing', b1.typing, 'A typing', a1.typing);
    const sent = await b1.client.send({ conversationId: group, body: 'read me' });
    console.log('sent', sent);
    console.log('read', await a1.client.markRead(group, Number(sent.seq)));
    await sleep(1500);
    console.log('receipts', a1.receipts, b1.receipts);
    console.log(
      'A events',
      a1.events.map((e) => e.seq),
      'B events',
      b1.events.map((e) => e.seq),
    );
    console.log(
      'GW1',
      cluster.gateways[1]!.proc.output()
        .split('\n')
        .filter((l) => l.includes(group) || l.includes('DBG'))
        .join('\n'),
    );
    console.log(
      'GW0',
      cluster.gateways[0]!.proc.output()
        .split('\n')
        .filter((l) => l.includes('DBG'))
        .join('\n'),
    );

    await waitFor(() => true);
  });
