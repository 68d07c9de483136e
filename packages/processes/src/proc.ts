import { execSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

// Process accounting from /proc: CPU as utime+stime ticks (CLK_TCK = 100 on Linux x86-64), RSS from
// VmRSS. Only reading: nothing here signals a process.

export const CLK_TCK = 100;

type ProcStat = { pid: number; comm: string; ppid: number; ticks: number };

const readStat = (pid: number): ProcStat | undefined => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may contain spaces: split after the last ')'.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const rest = text.slice(close + 2).split(' ');
    return {
      pid,
      comm,
      ppid: Number(rest[1]),
      ticks: Number(rest[11]) + Number(rest[12]),
    };
  } catch {
    return undefined;
  }
};

const readCmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
};

export const allProcesses = (): ProcStat[] => {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
};

/** The pid and all its descendants (a service started through a wrapper still counts whole). */
export const processTree = (root: number, all: ProcStat[] = allProcesses()): number[] => {
  const children = new Map<number, number[]>();
  for (const p of all) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (!all.some((p) => p.pid === pid)) continue;
    out.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return out;
};

export const cpuTicks = (pid: number): number | undefined => readStat(pid)?.ticks;

/** Resident set size in bytes (VmRSS), or undefined when the process is gone. */
export const rssBytes = (pid: number): number | undefined => {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
};

export const treeRssBytes = (root: number): number =>
  processTree(root).reduce((sum, pid) => sum + (rssBytes(pid) ?? 0), 0);

const PG_AUX =
  /: (checkpointer|background writer|walwriter|autovacuum launcher|logical replication launcher|archiver|stats collector)/;

/**
 * The Postgres processes that work for `database`: its backends (and autovacuum workers) plus the
 * shared auxiliary processes (WAL writer, checkpointer…). Backends of other databases on the same
 * server (other people's test runs) are left out.
 */
export const postgresPids = (database: string, all: ProcStat[] = allProcesses()): number[] => {
  const pgNames = new Set(all.filter((p) => p.comm === 'postgres').map((p) => p.pid));
  const postmasters = all.filter((p) => p.comm === 'postgres' && !pgNames.has(p.ppid));
  const out: number[] = [];
  for (const pm of postmasters) {
    out.push(pm.pid);
    for (const child of all.filter((p) => p.ppid === pm.pid)) {
      const cmd = readCmdline(child.pid);
      if (cmd.includes(` ${database} `) || cmd.endsWith(` ${database}`) || PG_AUX.test(cmd))
        out.push(child.pid);
    }
  }
  return out;
};

export const natsPids = (all: ProcStat[] = allProcesses()): number[] =>
  all.filter((p) => p.comm === 'nats-server').map((p) => p.pid);

/** A named group of processes whose CPU is measured together; `pids()` is re-evaluated per sample. */
export type CpuGroup = { name: string; pids: () => number[] };

export type CpuSample = { at: number; ticks: Map<string, Map<number, number>>; hostBusyTicks: number };

/**
 * Busy ticks of the whole host, all CPUs, from the `cpu` line of /proc/stat: user + nice + system +
 * irq + softirq. Not idle or iowait (waiting), nor steal (time the hypervisor gave another guest);
 * guest time is already inside user.
 */
export const parseHostBusyTicks = (procStat: string): number => {
  const line = procStat.split('\n').find((l) => l.startsWith('cpu ')) ?? '';
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return user + nice + system + irq + softirq;
};

const hostBusyTicks = (): number => parseHostBusyTicks(readFileSync('/proc/stat', 'utf8'));

export const sampleCpu = (groups: readonly CpuGroup[]): CpuSample => {
  const ticks = new Map<string, Map<number, number>>();
  for (const g of groups) {
    const m = new Map<number, number>();
    for (const pid of g.pids()) {
      const t = cpuTicks(pid);
      if (t !== undefined) m.set(pid, t);
    }
    ticks.set(g.name, m);
  }
  return { at: performance.now(), ticks, hostBusyTicks: hostBusyTicks() };
};

/**
 * Samples `groups` every `everyMs` until stopped and returns a closing sample that keeps, for every
 * process seen meanwhile, its last ticks: short-lived processes (a client's Postgres backends that end
 * with its pool) still count, up to the last poll before they went.
 */
export const watchCpu = (groups: readonly CpuGroup[], everyMs = 250) => {
  const first = sampleCpu(groups);
  const seen = new Map<string, Map<number, number>>();
  const poll = (): CpuSample => {
    const s = sampleCpu(groups);
    for (const [name, ticks] of s.ticks) {
      const acc = seen.get(name) ?? new Map<number, number>();
      for (const [pid, t] of ticks) acc.set(pid, t);
      seen.set(name, acc);
    }
    return s;
  };
  poll();
  const timer = setInterval(poll, everyMs);
  return {
    first,
    stop(): CpuSample {
      clearInterval(timer);
      const last = poll();
      return { at: last.at, ticks: seen, hostBusyTicks: last.hostBusyTicks };
    },
  };
};

export type CpuUsage = {
  /** CPU seconds spent by the group in the window. */
  cpuSeconds: number;
  /** Share of one core over the window (1 = one core fully busy). */
  cores: number;
};

/**
 * CPU used between two samples per group. A process that appeared during the window counts with all
 * its ticks (it started inside the window); one that vanished is lost (its last ticks are unknown).
 */
/** The pseudo-group holding the whole host's busy CPU (everything, also other people's processes). */
export const HOST = '(host)';
/**
 * The pseudo-group "host less load": the whole host's busy CPU minus the load generators and the bench
 * orchestrator, i.e. everything that served the load (servers, Postgres, NATS, Redis, the kernel's
 * network work charged to no process) plus whatever else ran on the host.
 */
export const HOST_LESS_LOAD = '(host less load)';

/** Adds HOST_LESS_LOAD to a usage map: HOST minus the named load groups (never below zero). */
export const withHostLessLoad = (
  usage: Map<string, CpuUsage>,
  loadGroups: readonly string[],
): Map<string, CpuUsage> => {
  const host = usage.get(HOST) ?? { cpuSeconds: 0, cores: 0 };
  const load = loadGroups.map((n) => usage.get(n) ?? { cpuSeconds: 0, cores: 0 });
  usage.set(HOST_LESS_LOAD, {
    cpuSeconds: Math.max(0, host.cpuSeconds - load.reduce((s, u) => s + u.cpuSeconds, 0)),
    cores: Math.max(0, host.cores - load.reduce((s, u) => s + u.cores, 0)),
  });
  return usage;
};

export const cpuBetween = (a: CpuSample, b: CpuSample): Map<string, CpuUsage> => {
  const seconds = (b.at - a.at) / 1000;
  const out = new Map<string, CpuUsage>();
  for (const [name, end] of b.ticks) {
    const start = a.ticks.get(name) ?? new Map<number, number>();
    let ticks = 0;
    for (const [pid, t] of end) ticks += t - (start.get(pid) ?? 0);
    const cpuSeconds = ticks / CLK_TCK;
    out.set(name, { cpuSeconds, cores: seconds > 0 ? cpuSeconds / seconds : 0 });
  }
  const hostSeconds = (b.hostBusyTicks - a.hostBusyTicks) / CLK_TCK;
  out.set(HOST, { cpuSeconds: hostSeconds, cores: seconds > 0 ? hostSeconds / seconds : 0 });
  return out;
};

export const openFileLimit = (): number => {
  const m = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
};

/** The host a run measured on, for its results file. */
export const machine = () => ({
  cores: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  openFileLimit: openFileLimit(),
  node: process.version,
});

/** The first line a command prints (a tool's version, a commit), or `unknown` when it fails. */
export const firstLineOf = (cmd: string): string => {
  try {
    return (
      execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')[0] ?? ''
    );
  } catch {
    return 'unknown';
  }
};
