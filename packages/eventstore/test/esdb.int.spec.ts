import { dockerEngineLikely } from '@chat/testkit';
import { describe } from 'vitest';
import { createEsdbEventStore } from '../src/index.js';
import { describeEventStoreContract } from './contract.js';

// The esdb contract run needs an EventStoreDB / KurrentDB: EVENTSTORE_URL, or a Docker engine for
// testcontainers. Without either it is reported as skipped, with the reason, and never fails.
const url = process.env.EVENTSTORE_URL;
const docker = dockerEngineLikely() && process.env.CHAT_TEST_NO_DOCKER !== '1';
const available = Boolean(url) || docker;
const reason = 'set EVENTSTORE_URL=esdb://… or provide a Docker engine';
if (!available) console.info(`[eventstore] esdb contract suite skipped: ${reason}`);

const startEventStoreDb = async (): Promise<{ url: string; stop: () => Promise<unknown> }> => {
  if (url) return { url, stop: async () => undefined };
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer('eventstore/eventstore:24.10')
    .withEnvironment({
      EVENTSTORE_INSECURE: 'true',
      EVENTSTORE_MEM_DB: 'true',
      EVENTSTORE_RUN_PROJECTIONS: 'None',
    })
    .withExposedPorts(2113)
    .withWaitStrategy(Wait.forHttp('/health/live', 2113).forStatusCode(204))
    .withStartupTimeout(120_000)
    .start();
  return {
    url: `esdb://${container.getHost()}:${container.getMappedPort(2113)}?tls=false`,
    stop: () => container.stop(),
  };
};

describe.skipIf(!available)(`esdb adapter${available ? '' : ` (skipped: ${reason})`}`, () => {
  describeEventStoreContract('esdb', async () => {
    const server = await startEventStoreDb();
    const store = createEsdbEventStore({ connectionString: server.url });
    return {
      store,
      teardown: async () => {
        await store.close();
        await server.stop();
      },
    };
  });
});
