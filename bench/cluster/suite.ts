/**
 * The cluster-benchmark suites behind `npm run bench` and `npm run bench:full`: runs a list of
 * points (each a fresh three-replica set, see cluster-bench.ts), prints a table, and writes
 * bench/results/<date>-<commit>.json (quick) or <date>-<commit>-full.json, plus an SVG chart of
 * throughput and p99 latency against requests in flight beside it.
 *
 *  quick (`npm run bench`, about two minutes): embedded load, 16-byte values, closed loop at
 *    1, 64, 1,024 and 8,192 in flight; client load (two load generators, 128-byte values) at 256
 *    in flight; then an open-loop embedded point at 70 % of the best closed-loop figure. Warm-up
 *    3 s and measurement 10 s per point (the benchmark's defaults are 10 s and 30 s: these are
 *    shortened so the suite fits in two minutes; its figures are indicative, not headlines).
 *    One run per point.
 *  full (`npm run bench:full`, about two and a half hours): embedded load at 16 B / 128 B /
 *    1 KiB values × in flight 1, 4, 16, …, 65,536; client load at 128 B × 256, 1,024, 4,096;
 *    the open-loop point at 70 % of the 16-byte peak; each 5 runs (warm-up 10 s, measure 30 s);
 *    the headline of a point is the median of its runs with min and max. Then one run each of
 *    pipeline depth 1 / 8 / 128 and batch count limit 256 / 4,096 at 16 B × 4,096 in flight.
 *  Flags: --runs N, --warmup S, --duration S override the suite's; --dir D as for paxline bench.
 *
 * A point that fails (a replica crashed, no primary) is recorded with its error and the suite
 * goes on; the exit status is 1 when any point failed or was invalid.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { progressPrinter } from '../../src/cli/bench.js';
import { parseFlags } from '../../src/cli/flags.js';
import { renderChart, type ChartSeries } from './chart.js';
import { runClusterBench, type BenchPoint, type BenchResult } from './cluster-bench.js';

interface PointSpec extends Omit<BenchPoint, 'warmupS' | 'durationS' | 'dir'> {
  readonly label: string;
  readonly runs?: number;
  /** Open loop at this fraction of the best closed-loop embedded 16-byte opsPerSec so far. */
  readonly rateOfPeak?: number;
}

interface PointOutcome {
  readonly label: string;
  readonly point: BenchPoint | null;
  readonly runs: BenchResult[];
  readonly errors: string[];
  readonly median: { opsPerSec: number; p50Ms: number; p99Ms: number; p999Ms: number; fsyncP99Ms: number } | null;
  readonly opsPerSecMin: number | null;
  readonly opsPerSecMax: number | null;
}

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const RESULTS = join(ROOT, 'bench', 'results');

const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function quickPoints(): PointSpec[] {
  return [
    ...[1, 64, 1024, 8192].map((inflight): PointSpec => ({ label: `embedded 16 B x${inflight}`, load: 'embedded', commandBytes: 16, inflight })),
    { label: 'client 128 B x256', load: 'client', commandBytes: 128, inflight: 256 },
    { label: 'embedded 16 B open loop 70%', load: 'embedded', commandBytes: 16, inflight: 8192, rateOfPeak: 0.7 },
  ];
}

function fullPoints(): PointSpec[] {
  const inflights = Array.from({ length: 9 }, (_, i) => 4 ** i);
  const out: PointSpec[] = [];
  for (const bytes of [16, 128, 1024]) {
    for (const inflight of inflights) out.push({ label: `embedded ${bytes} B x${inflight}`, load: 'embedded', commandBytes: bytes, inflight });
  }
  for (const inflight of [256, 1024, 4096]) out.push({ label: `client 128 B x${inflight}`, load: 'client', commandBytes: 128, inflight });
  out.push({ label: 'embedded 16 B open loop 70%', load: 'embedded', commandBytes: 16, inflight: 65_536, rateOfPeak: 0.7 });
  for (const pipelineDepth of [1, 8, 128]) out.push({ label: `embedded 16 B x4096 pipelineDepth ${pipelineDepth}`, load: 'embedded', commandBytes: 16, inflight: 4096, pipelineDepth, runs: 1 });
  for (const batchCountMax of [256, 4096]) out.push({ label: `embedded 16 B x4096 batchCountMax ${batchCountMax}`, load: 'embedded', commandBytes: 16, inflight: 4096, batchCountMax, runs: 1 });
  return out;
}

function gitCommit(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'nogit', dirty: false };
  }
}

/** The best closed-loop embedded 16-byte median so far (the "peak" for open-loop points). */
function peakOf(done: readonly PointOutcome[]): number {
  const closed = done.filter((o) => o.point?.load === 'embedded' && o.point.commandBytes === 16 && o.point.rateOpsPerSec === undefined
    && o.point.pipelineDepth === undefined && o.point.batchCountMax === undefined && o.point.batchDelayMs === undefined);
  return Math.max(0, ...closed.map((o) => o.median?.opsPerSec ?? 0));
}

async function runPoint(spec: PointSpec, i: number, n: number, base: { runs: number; warmupS: number; durationS: number; dir?: string }, done: readonly PointOutcome[]): Promise<PointOutcome> {
  const { label, runs: specRuns, rateOfPeak, ...rest } = spec;
  let rate: number | undefined;
  if (rateOfPeak !== undefined) {
    const peak = peakOf(done);
    if (peak <= 0) return { label, point: null, runs: [], errors: ['no closed-loop peak to take 70 % of'], median: null, opsPerSecMin: null, opsPerSecMax: null };
    rate = Math.max(1, Math.round(peak * rateOfPeak));
  }
  const point: BenchPoint = {
    ...rest, warmupS: base.warmupS, durationS: base.durationS,
    ...(rate !== undefined ? { rateOpsPerSec: rate } : {}), ...(base.dir !== undefined ? { dir: base.dir } : {}),
  };
  const runs: BenchResult[] = [];
  const errors: string[] = [];
  const nRuns = specRuns ?? base.runs;
  for (let r = 0; r < nRuns; r++) {
    const tag = `[${i + 1}/${n}] ${label}${rate !== undefined ? ` (${rate} ops/s)` : ''}${nRuns > 1 ? ` run ${r + 1}/${nRuns}` : ''}`;
    try {
      runs.push(await runClusterBench(point, progressPrinter(tag)));
    } catch (e) {
      errors.push((e as Error).message);
      process.stderr.write(`${tag}: FAILED: ${(e as Error).message}\n`);
    }
  }
  const ok = runs.filter((x) => x.valid);
  const use = ok.length > 0 ? ok : runs;
  return {
    label, point, runs, errors,
    median: use.length === 0 ? null : {
      opsPerSec: Math.round(median(use.map((x) => x.opsPerSec))),
      p50Ms: median(use.map((x) => x.p50Ms)), p99Ms: median(use.map((x) => x.p99Ms)),
      p999Ms: median(use.map((x) => x.p999Ms)), fsyncP99Ms: median(use.map((x) => x.fsyncP99Ms)),
    },
    opsPerSecMin: use.length === 0 ? null : Math.min(...use.map((x) => x.opsPerSec)),
    opsPerSecMax: use.length === 0 ? null : Math.max(...use.map((x) => x.opsPerSec)),
  };
}

function table(outcomes: readonly PointOutcome[]): string {
  const head = ['point', 'ops/s (median)', 'min–max', 'p50 ms', 'p99 ms', 'p99.9 ms', 'cmds/fsync', 'fsync p99 ms', 'elections', 'digests', 'valid'];
  const rows = outcomes.map((o) => {
    const r = o.runs;
    const m = o.median;
    return [
      o.label, m ? m.opsPerSec.toLocaleString('en-US') : 'FAILED',
      r.length > 1 ? `${o.opsPerSecMin!.toLocaleString('en-US')}–${o.opsPerSecMax!.toLocaleString('en-US')}` : '',
      m ? String(m.p50Ms) : '', m ? String(m.p99Ms) : '', m ? String(m.p999Ms) : '',
      r.length ? String(median(r.map((x) => x.commandsPerFsync))) : '', m ? String(m.fsyncP99Ms) : '',
      String(r.reduce((s, x) => s + x.elections, 0)),
      r.length ? (r.every((x) => x.stateDigestsEqual) ? 'equal' : 'DIFFER') : '',
      r.length && o.errors.length === 0 && r.every((x) => x.valid) ? 'yes' : 'NO',
    ];
  });
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]): string => cells.map((s, c) => (c === 0 ? s.padEnd(widths[c]!) : s.padStart(widths[c]!))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function chartSeries(outcomes: readonly PointOutcome[]): ChartSeries[] {
  const map = new Map<string, ChartSeries & { points: ChartSeries['points'][number][] }>();
  for (const o of outcomes) {
    const p = o.point;
    if (p === null || o.median === null || p.rateOpsPerSec !== undefined || p.pipelineDepth !== undefined || p.batchCountMax !== undefined || p.batchDelayMs !== undefined) continue;
    const key = `${p.load} ${p.commandBytes} B`;
    const s = map.get(key) ?? { label: key, points: [] };
    s.points.push({ inflight: p.inflight, opsPerSec: o.median.opsPerSec, opsMin: o.opsPerSecMin!, opsMax: o.opsPerSecMax!, p99Ms: o.median.p99Ms });
    map.set(key, s);
  }
  return [...map.values()];
}

async function main(): Promise<number> {
  const f = parseFlags(process.argv.slice(2), { full: 'boolean', runs: 'number', warmup: 'number', duration: 'number', dir: 'string' });
  const full = f.full === true;
  const base = {
    runs: f.runs ?? (full ? 5 : 1), warmupS: f.warmup ?? (full ? 10 : 3), durationS: f.duration ?? (full ? 30 : 10),
    ...(f.dir !== undefined ? { dir: f.dir } : {}),
  };
  const specs = full ? fullPoints() : quickPoints();
  const { commit, dirty } = gitCommit();
  const startedAt = new Date();
  process.stderr.write(`paxline cluster bench (${full ? 'full' : 'quick'}): ${specs.length} points × ${base.runs} run(s), warm-up ${base.warmupS} s, measure ${base.durationS} s each\n`);
  const outcomes: PointOutcome[] = [];
  for (const [i, spec] of specs.entries()) outcomes.push(await runPoint(spec, i, specs.length, base, outcomes));
  const name = `${startedAt.toISOString().slice(0, 10)}-${commit}${full ? '-full' : ''}`;
  mkdirSync(RESULTS, { recursive: true });
  const jsonPath = join(RESULTS, `${name}.json`);
  const svgPath = join(RESULTS, `${name}.svg`);
  const cpu = cpus();
  const open = outcomes.find((o) => o.point?.rateOpsPerSec !== undefined && o.median !== null);
  writeFileSync(jsonPath, `${JSON.stringify({
    schema: 'paxline-cluster-bench/1', suite: full ? 'full' : 'quick', commit, dirty, startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(), node: process.version,
    machine: { cpus: cpu.length, cpuModel: cpu[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30) },
    settings: base, note: 'measured on a shared machine unless stated otherwise; each point is a fresh 3-replica set',
    points: outcomes,
  }, null, 1)}\n`);
  const caption = [
    `${full ? 'full sweep' : 'quick subset'}; commit ${commit}${dirty ? ' (dirty)' : ''}; ${startedAt.toISOString().slice(0, 10)}; node ${process.version}; ${cpu.length} CPUs`,
    `3 replica processes + load on one host, fdatasync on; warm-up ${base.warmupS} s, measure ${base.durationS} s, ${base.runs} run(s) per point (median, bar = min–max)`,
    'command bytes = the KV put\'s value size (16-byte keys); ops/s = puts executed on all 3 replicas in the window / window',
    ...(open ? [`open loop at ${open.point!.rateOpsPerSec} ops/s (70 % of peak): p99 ${open.median!.p99Ms} ms, fsync p99 ${open.median!.fsyncP99Ms} ms`] : []),
  ];
  writeFileSync(svgPath, renderChart('paxline: committed ops/s and p99 latency vs requests in flight', chartSeries(outcomes), caption));
  console.log(table(outcomes));
  console.log(`\nwrote ${relative(process.cwd(), jsonPath)} and ${relative(process.cwd(), svgPath)}`);
  return outcomes.every((o) => o.errors.length === 0 && o.runs.length > 0 && o.runs.every((r) => r.valid)) ? 0 : 1;
}

process.exitCode = await main();
