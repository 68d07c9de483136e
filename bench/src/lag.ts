// Projection / notifier lag during a run, read from the services' Prometheus /metrics: every gauge
// whose name mentions "lag" is sampled every 250 ms (p99 and max of the samples), and every lag
// histogram is diffed between the start and the end of the run (p99 from its buckets).

export type LagSeries = {
  metric: string;
  /** Gauge samples, or the histogram's p99 upper bucket bound, in ms (events for *_events metrics). */
  unit: 'ms' | 'events';
  kind: 'gauge' | 'histogram';
  p99: number | null;
  max: number | null;
  samples: number;
};

type Parsed = { name: string; labels: string; value: number };

const parseMetrics = (text: string): Parsed[] => {
  const out: Parsed[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) out.push({ name: m[1]!, labels: m[2] ?? '', value: Number(m[3]) });
  }
  return out;
};

const scale = (name: string): { unit: 'ms' | 'events'; factor: number } =>
  /event|count|position/.test(name) && !/seconds|_ms/.test(name)
    ? { unit: 'events', factor: 1 }
    : { unit: 'ms', factor: /seconds/.test(name) ? 1000 : 1 };

const fetchMetrics = async (url: string): Promise<Parsed[]> => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return res.ok ? parseMetrics(await res.text()) : [];
  } catch {
    return [];
  }
};

const percentile = (values: number[], p: number): number | null => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

/** Samples `metricsUrl` until `signal` aborts; returns one series per lag metric found. */
export const sampleLag = async (metricsUrl: string, signal: AbortSignal): Promise<LagSeries[]> => {
  const first = await fetchMetrics(metricsUrl);
  const gauges = new Map<string, number[]>();
  let last = first;
  while (!signal.aborted) {
    await new Promise((r) => setTimeout(r, 250));
    const now = await fetchMetrics(metricsUrl);
    if (now.length > 0) last = now;
    for (const p of now) {
      // The services' own lag metrics; not Node's event-loop lag (nodejs_eventloop_lag_*).
      if (!/lag/i.test(p.name) || p.name.startsWith('nodejs_') || /_(bucket|sum|count)$/.test(p.name))
        continue;
      const key = `${p.name}${p.labels}`;
      const list = gauges.get(key) ?? [];
      list.push(p.value * scale(p.name).factor);
      gauges.set(key, list);
    }
  }
  const out: LagSeries[] = [];
  for (const [metric, values] of gauges) {
    out.push({
      metric,
      unit: scale(metric).unit,
      kind: 'gauge',
      p99: percentile(values, 99),
      max: Math.max(...values),
      samples: values.length,
    });
  }
  // Histograms: bucket counts at the end minus at the start give the run's own distribution.
  const bucketsOf = (list: Parsed[]) => list.filter((p) => /lag/i.test(p.name) && p.name.endsWith('_bucket'));
  const startCounts = new Map(bucketsOf(first).map((p) => [`${p.name}${p.labels}`, p.value]));
  const byMetric = new Map<string, { le: number; count: number }[]>();
  for (const p of bucketsOf(last)) {
    const le = /le="([^"]+)"/.exec(p.labels)?.[1];
    if (le === undefined) continue;
    const base = p.name.replace(/_bucket$/, '') + p.labels.replace(/,?le="[^"]+"/, '').replace('{}', '');
    const list = byMetric.get(base) ?? [];
    list.push({
      le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le),
      count: p.value - (startCounts.get(`${p.name}${p.labels}`) ?? 0),
    });
    byMetric.set(base, list);
  }
  for (const [metric, buckets] of byMetric) {
    buckets.sort((a, b) => a.le - b.le);
    const total = buckets[buckets.length - 1]?.count ?? 0;
    if (total <= 0) continue;
    const { unit, factor } = scale(metric);
    const at = (p: number) => buckets.find((b) => b.count >= total * p)?.le ?? null;
    const p99 = at(0.99);
    const max = at(1);
    out.push({
      metric: `${metric} (histogram)`,
      unit,
      kind: 'histogram',
      p99: p99 === null ? null : p99 * factor,
      max: max === null ? null : max * factor,
      samples: total,
    });
  }
  return out;
};
