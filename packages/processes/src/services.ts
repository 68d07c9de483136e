import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { answeredBy, freePort } from '@chat/testkit';
import { type Child, REPO_ROOT, spawnTs } from './children.js';

export type ServiceName = 'command-api' | 'ws-gateway' | 'projector' | 'notifier';

export const serviceExists = (service: ServiceName): boolean =>
  existsSync(join(REPO_ROOT, 'services', service, 'src/main.ts'));

export type RunningService = { name: string; service: ServiceName; port: number; child: Child };

export type ServiceOptions = {
  name: string;
  service: ServiceName;
  env: Record<string, string>;
  /** Listen port; a free one of 127.0.0.1 when omitted. */
  port?: number;
  nodeArgs?: string[];
  /** How long it may take to answer `/readyz` 200. */
  timeoutMs?: number;
};

/** Starts `services/<service>/src/main.ts` on 127.0.0.1 without waiting for it. */
export const spawnService = async (options: ServiceOptions): Promise<RunningService> => {
  const port = options.port ?? (await freePort());
  const child = spawnTs(options.name, `services/${options.service}/src/main.ts`, {
    env: { HOST: '127.0.0.1', ...options.env, PORT: String(port) },
    ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
  });
  return { name: options.name, service: options.service, port, child };
};

/** Resolves once the service answers `/readyz` 200; rejects when it exits first or after `timeoutMs`. */
export const waitUntilReady = async (service: RunningService, timeoutMs = 90_000): Promise<void> => {
  const { child, port, name } = service;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.hasExited()) throw new Error(`${name} exited before it was ready:\n${child.tail()}`);
    const url = `http://127.0.0.1:${port}/readyz`;
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok && (await answeredBy(child.pid, url))) return;
    if (Date.now() > deadline) throw new Error(`${name} not ready on :${port}:\n${child.tail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

/**
 * Starts a service and waits until it is ready, retrying twice: in a shared working tree a service may
 * be mid-edit (a syntax error for a few seconds), which must not sink a 15-minute run.
 */
export const startService = async (options: ServiceOptions): Promise<RunningService> => {
  for (let attempt = 1; ; attempt++) {
    const service = await spawnService(options);
    try {
      await waitUntilReady(service, options.timeoutMs);
      return service;
    } catch (err) {
      await service.child.stop(1000);
      if (attempt >= 3) throw err;
      console.error(`[processes] ${options.name} did not start (attempt ${attempt}); retrying in 15 s`);
      await new Promise((r) => setTimeout(r, 15_000));
    }
  }
};
