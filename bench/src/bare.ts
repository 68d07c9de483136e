import { type Child, spawnTs } from '@chat/processes';
import { freePort } from '@chat/testkit';

/**
 * Starts a bench server script on a free port of 127.0.0.1 (`PORT` in its environment) and waits until
 * its `/healthz` answers; stops it again when it does not come up.
 */
export const startBenchServer = async (
  name: string,
  entry: string,
  env: Record<string, string> = {},
): Promise<{ child: Child; port: number }> => {
  const port = await freePort();
  const child = spawnTs(name, entry, { env: { ...env, PORT: String(port) } });
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 400 || child.hasExited()) throw new Error(`${name} did not start:\n${child.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { child, port };
};

/** Starts `bench/bare-uws-server.ts` (the bare uWebSockets.js baseline) and waits until it answers. */
export const startBareServer = async (name: string): Promise<{ child: Child; url: string }> => {
  const { child, port } = await startBenchServer(name, 'bench/bare-uws-server.ts');
  return { child, url: `ws://127.0.0.1:${port}/v1/ws` };
};
