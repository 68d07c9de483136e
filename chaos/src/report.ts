import type { CheckResult, ClassRow, FaultRow, Verdict } from './checker/index.js';
import type { FaultClass } from './history/types.js';

// The tables `pnpm chaos` prints (markdown, so the README can carry them as they are).

export const CLASS_NAMES: Record<FaultClass | 'none', string> = {
  none: 'outside faults',
  F1: 'F1 SIGKILL command-api',
  F2: 'F2 SIGKILL projector',
  F3: 'F3 SIGKILL notifier',
  F4: 'F4 SIGKILL gateway',
  F5: 'F5 nats-server SIGKILL / SIGSTOP',
  F6: 'F6 Postgres stop -m immediate',
  F8: 'F8 network delay / stall / reset',
  F9: 'F9 xid held 10 s',
  F10: 'F10 idle transaction',
  F12: 'F12 slow readers, reconnect storms',
};

const ms = (v: number | null): string =>
  v === null ? '—' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
const n = (v: number): string => v.toLocaleString('en-US');

export const classTable = (rows: readonly ClassRow[]): string => {
  const lines = [
    '| fault class | faults | attempted | acked | lost | duplicated | unknown→resolved | delivery p50 / p99 | recovery: API / consumers / clients |',
    '|---|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    const recovery =
      r.cls === 'none'
        ? '—'
        : `${ms(r.recovery.apiMs)} / ${ms(r.recovery.lagMs)} / ${ms(r.recovery.clientsMs)}`;
    lines.push(
      `| ${CLASS_NAMES[r.cls]} | ${r.faults || '—'} | ${n(r.attempted)} | ${n(r.acked)} | ${r.lost} | ${r.duplicated} | ${r.unknownResolved} | ${ms(r.p50Ms)} / ${ms(r.p99Ms)} | ${recovery} |`,
    );
  }
  return lines.join('\n');
};

export const faultTable = (faults: readonly FaultRow[]): string => {
  const lines = [
    '| # | class | fault | API back | consumers at head | clients caught up | peak reconnects/s | after the step |',
    '|---|---|---|---|---|---|---:|---|',
  ];
  for (const f of faults) {
    const r = f.recovery;
    lines.push(
      `| ${f.id} | ${f.cls} | ${f.name}${f.detail ? ` (${f.detail})` : ''}${f.healDetail ? ` → ${f.healDetail}` : ''} | ${ms(r.apiMs)} | ${ms(r.lagMs)} | ${ms(r.clientsMs)}${r.notCaughtUp ? ` (${r.notCaughtUp} never)` : ''} | ${r.peakReconnectsPerSecond} | ${f.recoveredDetail ?? '—'} |`,
    );
  }
  return lines.join('\n');
};

export const checkTable = (checks: readonly CheckResult[]): string => {
  const lines = ['| # | check | checked | violations | result |', '|---|---|---:|---:|---|'];
  for (const c of checks) {
    const figures = Object.entries(c.figures)
      .map(([k, v]) => `${k} ${n(v)}`)
      .join(', ');
    const result = c.count === 0 ? 'ok' : c.severity === 'invariant' ? '**VIOLATED**' : 'finding';
    lines.push(
      `| ${c.id} | ${c.name}${figures ? ` (${figures})` : ''} | ${n(c.checked)} | ${n(c.count)} | ${result} |`,
    );
  }
  return lines.join('\n');
};

/** The history excerpts that show each violation (the first few of each check). */
export const violationText = (verdict: Verdict, perCheck = 3): string => {
  const out: string[] = [];
  for (const c of verdict.checks) {
    if (c.count === 0) continue;
    out.push(
      `\n### ${c.id} ${c.name}: ${c.count} ${c.severity === 'invariant' ? 'violation(s)' : 'finding(s)'}`,
    );
    for (const v of c.violations.slice(0, perCheck)) {
      out.push(`- ${v.what}`);
      for (const e of v.excerpt) out.push(`    ${JSON.stringify(e)}`);
    }
  }
  return out.join('\n');
};
