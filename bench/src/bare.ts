import { freePort } from '@chat/testkit';
import { type Child, spawnTs } from './children.js';

/** Starts `bench/bare-uws-server.ts` (the bare uWebSockets.js baseline) and waits until it answers. */
export const startBareServer = async (name: string): Promise<{ child: Child; url: string }> => {
  const port = await freePort();
  const child = spawnTs(name, 'bench/bare-uws-server.ts', { env: { PORT: String(port) } });
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 200 || child.hasExited()) throw new Error(`bare server did not start:\n${child.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { child, url: `ws://127.0.0.1:${port}/v1/ws` };
};
