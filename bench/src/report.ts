import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '@chat/processes';

export type Metric = number | string | boolean | null;

export type Budget = {
  /** What DESIGN.md asks, e.g. "p99 ≤ 25 ms". */
  name: string;
  actual: number | null;
  limit: number;
  /** `max`: actual must be ≤ limit; `min`: actual must be ≥ limit. */
  kind: 'max' | 'min';
};

export type Row = {
  scenario: string;
  case: string;
  metrics: Record<string, Metric>;
  budgets: Budget[];
  /** CPU of the load generator processes together, in cores (1 = one core busy). */
  generatorCores: number | null;
  /** A single generator process at ≥ 75% of a core: the measured rate is the generator's, not the server's. */
  generatorBottleneck: boolean;
  notes?: string;
};

/** A small table of its own, printed after the main one and kept in the results file. */
export type Table = { title: string; header: string[]; rows: string[][]; notes?: string };

export const budgetMet = (b: Budget): boolean | null =>
  b.actual === null || Number.isNaN(b.actual)
    ? null
    : b.kind === 'max'
      ? b.actual <= b.limit
      : b.actual >= b.limit;

export const round = (n: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

const fmt = (v: Metric): string => {
  if (v === null || (typeof v === 'number' && Number.isNaN(v))) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(round(v, 2));
  return String(v);
};

export const markdownTable = (rows: readonly Row[]): string => {
  const lines = ['| scenario | case | results | budget (DESIGN.md) | generator |', '|---|---|---|---|---|'];
  for (const r of rows) {
    const results = Object.entries(r.metrics)
      .map(([k, v]) => `${k} ${fmt(v)}`)
      .join('; ');
    const budgets =
      r.budgets
        .map((b) => {
          const met = budgetMet(b);
          return `${met === null ? '?' : met ? 'met' : '**MISSED**'}: ${b.name} (${fmt(b.actual)})`;
        })
        .join('; ') || '–';
    const gen =
      r.generatorCores === null
        ? '–'
        : `${round(r.generatorCores * 100, 0)}% cpu${r.generatorBottleneck ? ' **bottleneck**' : ''}`;
    lines.push(
      `| ${r.scenario} | ${r.case} | ${results}${r.notes ? ` (${r.notes})` : ''} | ${budgets} | ${gen} |`,
    );
  }
  return lines.join('\n');
};

export const tableText = (t: Table): string =>
  [
    `### ${t.title}`,
    '',
    `| ${t.header.join(' | ')} |`,
    `|${t.header.map(() => '---').join('|')}|`,
    ...t.rows.map((r) => `| ${r.join(' | ')} |`),
    ...(t.notes ? ['', t.notes] : []),
  ].join('\n');

export const BENCH_DIR = join(REPO_ROOT, 'bench');

export const writeResults = (timestamp: string, payload: Record<string, unknown>): string => {
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${timestamp}.json`);
  writeFileSync(file, `${JSON.stringify(payload, null, 2)}\n`);
  return file;
};
