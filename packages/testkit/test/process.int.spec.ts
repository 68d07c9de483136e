import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, listensOn, type ServiceProcess, startService } from '../src/process.js';

const listen = async (port = 0): Promise<Server> => {
  const server = createServer((_request, response) => response.writeHead(200).end());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
};
const portOf = (server: Server) => (server.address() as { port: number }).port;

const servers: Server[] = [];
const children: ServiceProcess[] = [];
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop(1000)));
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

describe('freePort', () => {
  it('never hands out a port twice, though the kernel may offer a closed one again', async () => {
    // One after another, each closed before the next: this host's kernel offered a closed port again
    // within ~100 calls (568 repeats in 3,000).
    const ports: number[] = [];
    for (let i = 0; i < 500; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
  });
});

describe('listensOn', () => {
  it('tells a port this process listens on from one it does not', async () => {
    const server = await listen();
    servers.push(server);
    expect(await listensOn(process.pid, portOf(server))).toBe(true);
    expect(await listensOn(process.pid, await freePort())).toBe(false);
  });
});

describe('startService', () => {
  it("does not take another listener's /readyz on the child's port for the child's: the child's failure to bind is reported", async () => {
    const port = await freePort();
    const squatter = await listen(port);
    servers.push(squatter);
    const started = startService({
      name: 'stand-in',
      entry: 'packages/testkit/test/fixtures/ready-server.ts',
      env: { PORT: String(port), READY_AFTER_MS: '500' },
      ready: { url: `http://127.0.0.1:${port}/readyz` },
      timeoutMs: 30_000,
    });
    started.then((c) => children.push(c)).catch(() => {});
    await expect(started).rejects.toThrow(
      /exited before it was ready[\s\S]*could not listen: listen EADDRINUSE/,
    );
  });

  it('is ready once the child itself answers on its port', async () => {
    const port = await freePort();
    const child = await startService({
      name: 'stand-in',
      entry: 'packages/testkit/test/fixtures/ready-server.ts',
      env: { PORT: String(port) },
      ready: { url: `http://127.0.0.1:${port}/readyz` },
      timeoutMs: 30_000,
    });
    children.push(child);
    expect(await listensOn(child.pid, port)).toBe(true);
    expect(await listensOn(process.pid, port)).toBe(false);
  });
});
