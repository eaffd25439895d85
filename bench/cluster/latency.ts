/**
 * Latency recording for the cluster benchmark: a perf_hooks histogram (HDR, 3 significant
 * figures) of microseconds per operation, and its summary as plain data that crosses IPC.
 *
 * What a sample is: the time from when an operation was sent (closed loop) or was INTENDED to be
 * sent (open loop, see load-driver.ts) to when its promise resolved with the state machine's
 * result, in the process that sent it. Operations that failed are not recorded.
 *
 * Merging: two processes' histograms cannot be added across IPC, so `mergeSummaries` combines
 * their percentile tables (the HDR iteration, finer towards the tail) as weighted CDFs; a merged
 * quantile is exact to the resolution of those tables (≈ 0.1 % at p99.9 and below).
 */
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  /** [percentile 0..100, value µs], increasing: the histogram's own percentile table. */
  readonly table: ReadonlyArray<readonly [number, number]>;
}

/** 60 s: anything slower is clamped (and shows as a 60 s tail). */
const LATENCY_US_MAX = 60_000_000;

export function createLatencyHistogram(): RecordableHistogram {
  return createHistogram({ lowest: 1, highest: LATENCY_US_MAX, figures: 3 });
}

/** Records a duration given in milliseconds (performance.now() differences). */
export function recordMs(h: RecordableHistogram, ms: number): void {
  const us = Math.round(ms * 1000);
  h.record(us < 1 ? 1 : us > LATENCY_US_MAX ? LATENCY_US_MAX : us);
}

export function summarize(h: RecordableHistogram): LatencySummary {
  if (h.count === 0) return { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0, table: [] };
  return {
    count: h.count,
    p50Ms: h.percentile(50) / 1000,
    p99Ms: h.percentile(99) / 1000,
    p999Ms: h.percentile(99.9) / 1000,
    maxMs: h.max / 1000,
    meanMs: h.mean / 1000,
    table: [...h.percentiles.entries()],
  };
}

/** The smallest recorded value v with (fraction of samples ≤ v) ≥ q, from percentile tables. */
function mergedQuantileUs(parts: readonly LatencySummary[], q: number): number {
  const total = parts.reduce((s, p) => s + p.count, 0);
  const candidates = [...new Set(parts.flatMap((p) => p.table.map(([, v]) => v)))].sort((a, b) => a - b);
  for (const v of candidates) {
    let below = 0;
    for (const p of parts) {
      let pct = 0;
      for (const [pc, pv] of p.table) if (pv <= v) pct = pc;
      below += (pct / 100) * p.count;
    }
    if (below >= q * total - 1e-9) return v;
  }
  return candidates.at(-1) ?? 0;
}

export function mergeSummaries(parts: readonly LatencySummary[]): LatencySummary {
  const live = parts.filter((p) => p.count > 0);
  if (live.length <= 1) return live[0] ?? parts[0] ?? summarizeEmpty();
  const count = live.reduce((s, p) => s + p.count, 0);
  return {
    count,
    p50Ms: mergedQuantileUs(live, 0.5) / 1000,
    p99Ms: mergedQuantileUs(live, 0.99) / 1000,
    p999Ms: mergedQuantileUs(live, 0.999) / 1000,
    maxMs: Math.max(...live.map((p) => p.maxMs)),
    meanMs: live.reduce((s, p) => s + p.meanMs * p.count, 0) / count,
    table: [],
  };
}

function summarizeEmpty(): LatencySummary {
  return { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0, meanMs: 0, table: [] };
}
