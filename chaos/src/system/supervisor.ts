import { type RunningService, type ServiceOptions, spawnService, waitUntilReady } from '@chat/processes';
import { now } from '../history/clock.js';
import type { HistoryWriter } from '../history/file.js';

// Keeps the services of the system under test running, as systemd or Kubernetes would: a process that
// exits is started again on the same port (at once after the nemesis killed it, with a growing pause
// after a crash). Every start, readiness and exit goes to the history; only PIDs it started are signalled.

const READY_TIMEOUT_MS = 120_000;
/** A service that keeps crashing is not started more often than this over a run. */
const MAX_STARTS = 60;

type Supervised = {
  options: ServiceOptions & { port: number };
  current: RunningService | undefined;
  /** The next exit is the nemesis's doing. */
  planned: boolean;
  /** Killed and kept down until `release`. */
  held: boolean;
  starts: number;
  crashes: number;
  ready: boolean;
};

export class Supervisor {
  readonly #services = new Map<string, Supervised>();
  readonly #history: HistoryWriter;
  #stopping = false;

  constructor(history: HistoryWriter) {
    this.#history = history;
  }

  /** Starts a service and waits until it answers /readyz; fails with its output if it exits first. */
  async start(options: ServiceOptions & { port: number }): Promise<void> {
    const s: Supervised = {
      options,
      current: undefined,
      planned: false,
      held: false,
      starts: 0,
      crashes: 0,
      ready: false,
    };
    this.#services.set(options.name, s);
    await waitUntilReady(await this.#spawn(s), READY_TIMEOUT_MS);
  }

  names(): string[] {
    return [...this.#services.keys()];
  }

  port(name: string): number {
    return this.#get(name).options.port;
  }

  pid(name: string): number | undefined {
    const c = this.#get(name).current?.child;
    return c && !c.hasExited() ? c.pid : undefined;
  }

  /** SIGKILL; started again at once, or only at `release` when `hold`. */
  async kill(name: string, options: { hold?: boolean } = {}): Promise<void> {
    const s = this.#get(name);
    s.planned = true;
    s.held = options.hold ?? false;
    await s.current?.child.kill();
  }

  /** Starts a held service again. */
  async release(name: string): Promise<void> {
    const s = this.#get(name);
    if (!s.held) return;
    s.held = false;
    await this.#spawn(s);
  }

  async isReady(name: string): Promise<boolean> {
    const s = this.#get(name);
    if (!s.current || s.current.child.hasExited()) return false;
    return fetch(`http://127.0.0.1:${s.options.port}/readyz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
  }

  async waitReady(name: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.isReady(name)) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  async allReady(): Promise<boolean> {
    const ready = await Promise.all(this.names().map((n) => this.isReady(n)));
    return ready.every(Boolean);
  }

  /** SIGTERM to every service (SIGKILL after the grace), no more restarts. */
  async stopAll(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      [...this.#services.values()].map(async (s) => {
        s.planned = true;
        await s.current?.child.stop(10_000);
      }),
    );
  }

  #get(name: string): Supervised {
    const s = this.#services.get(name);
    if (!s) throw new Error(`no supervised service ${name}`);
    return s;
  }

  async #spawn(s: Supervised): Promise<RunningService> {
    if (this.#stopping) throw new Error(`not starting ${s.options.name}: stopping`);
    s.starts++;
    const service = await spawnService(s.options);
    s.current = service;
    s.ready = false;
    const { name } = s.options;
    const pid = service.child.pid;
    this.#history.write({ k: 'proc', t: now(), name, event: 'spawn', pid });
    void this.#watchReadiness(s, service);
    void service.child.exited.then((code) => {
      const planned = s.planned || this.#stopping;
      s.planned = false;
      this.#history.write({
        k: 'proc',
        t: now(),
        name,
        event: 'exit',
        pid,
        code,
        planned,
        ...(planned ? {} : { tail: service.child.tail().slice(-2000) }),
      });
      if (this.#stopping || s.held || s.current !== service) return;
      if (s.starts >= MAX_STARTS) {
        console.error(`[chaos] ${name} exited ${s.starts} times; not starting it again`);
        return;
      }
      if (!planned) s.crashes++;
      const delay = planned ? 0 : Math.min(5_000, 250 * 2 ** Math.min(s.crashes, 5));
      setTimeout(() => void this.#spawn(s).catch(() => undefined), delay);
    });
    return service;
  }

  async #watchReadiness(s: Supervised, service: RunningService): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline && !service.child.hasExited() && s.current === service) {
      if (await this.isReady(s.options.name)) {
        s.ready = true;
        this.#history.write({
          k: 'proc',
          t: now(),
          name: s.options.name,
          event: 'ready',
          pid: service.child.pid,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
