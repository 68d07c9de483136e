import * as hdr from 'hdr-histogram-js';

// Latencies are recorded in microseconds; generators ship their histograms to the orchestrator as
// compressed base64, where they are merged.

export type Histogram = hdr.Histogram;

export const newHistogram = (): Histogram =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });

export const encodeHistogram = (h: Histogram): string => hdr.encodeIntoCompressedBase64(h);

export const mergeHistograms = (encoded: readonly string[]): Histogram => {
  const total = newHistogram();
  for (const e of encoded) {
    if (e) total.add(hdr.decodeFromCompressedBase64(e));
  }
  return total;
};

export type LatencySummary = { count: number; p50: number; p90: number; p99: number; max: number };

/** Percentiles in milliseconds (from a microsecond histogram). */
export const summarize = (h: Histogram): LatencySummary => {
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
  };
};

/** Wall-clock microseconds with sub-millisecond resolution, comparable across processes on one host. */
export const nowMicros = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);
