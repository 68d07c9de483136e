import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// Summaries of the `--cpu-prof` profiles the services write on exit (with `pnpm bench --cpu-prof`):
// self time per function and per package, to name the bottleneck in the closing note.

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
};
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] };

export type ProfileSummary = {
  file: string;
  totalMs: number;
  busyMs: number;
  topFunctions: { name: string; selfPct: number }[];
  byPackage: { name: string; selfPct: number }[];
};

const packageOf = (url: string): string => {
  if (!url) return '(native / gc)';
  const nm = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const own = /\/work\/main\/((?:services|packages)\/[^/]+)/.exec(url);
  if (own) return own[1]!;
  if (url.startsWith('node:')) return 'node core';
  return url
    .replace(/^file:\/\//, '')
    .split('/')
    .slice(-2)
    .join('/');
};

export const summarizeProfile = (file: string, top = 20): ProfileSummary => {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const idleNodes = new Set(p.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
  // Shares of the busy samples: a service idles most of a bench run (start-up, other scenarios).
  const total = p.samples.filter((id) => !idleNodes.has(id)).length || 1;
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  for (const n of p.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0 || idleNodes.has(n.id)) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url
      .replace(/^file:\/\/\/work\/main\//, '')
      .replace(/.*node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?/, '');
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    byFn.set(key, (byFn.get(key) ?? 0) + hits);
    const pkg = packageOf(url);
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + hits);
  }
  const pct = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, hits]) => ({ name, selfPct: Math.round((hits / total) * 1000) / 10 }));
  const totalMs = Math.round((p.endTime - p.startTime) / 1000);
  return {
    file,
    totalMs,
    busyMs: Math.round((totalMs * total) / (p.samples.length || 1)),
    topFunctions: pct(byFn),
    byPackage: pct(byPkg),
  };
};

/**
 * One summary per service: each writes its profiles into `<dir>/<service>/` (one per thread; the
 * module-loader thread of `--import tsx` writes one too), and the busiest one is its main thread.
 */
export const summarizeProfiles = (dir: string): ProfileSummary[] => {
  const out: ProfileSummary[] = [];
  let services: string[] = [];
  try {
    services = readdirSync(dir);
  } catch {
    return out;
  }
  for (const service of services) {
    try {
      const files = readdirSync(join(dir, service)).filter((f) => f.endsWith('.cpuprofile'));
      const summaries = files.map((f) => summarizeProfile(join(dir, service, f)));
      const busiest = summaries.sort((a, b) => b.busyMs - a.busyMs)[0];
      if (busiest) out.push({ ...busiest, file: service });
    } catch {}
  }
  return out;
};

export const profileText = (s: ProfileSummary): string =>
  [
    `### ${s.file} (${s.totalMs} ms profiled, ${s.busyMs} ms busy; shares of busy time)`,
    `by package: ${s.byPackage.map((p) => `${p.name} ${p.selfPct}%`).join(', ')}`,
    ...s.topFunctions.map((f) => `  ${String(f.selfPct).padStart(5)}%  ${f.name}`),
  ].join('\n');
