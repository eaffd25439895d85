/**
 * The memory soak of the cluster benchmark (issue 5, "Memory"): `runSoak(spec)` runs one
 * open-loop point of runClusterBench at a fixed rate for `soakS` seconds (after a warm-up) with a
 * small log segment and a short checkpoint interval, so that checkpoints and segment rollovers
 * happen inside the run, and samples every replica process's memory every `sampleEveryS`.
 *
 * What is measured:
 *  - per replica process, every sampleEveryS seconds of the measurement window (the first sample
 *    at its start, i.e. right after the warm-up): RSS (all threads of the process) and the main
 *    thread's V8 heapUsed / heapTotal, read over IPC (process.memoryUsage() in the replica);
 *  - the median RSS of the FIRST minute and of the LAST minute of the window, and last ÷ first;
 *    pass when that ratio is within 1 ± TOLERANCE for every replica. A run shorter than five
 *    minutes compares shorter windows: min(60 s, max(sampleEveryS, soakS / 5)) at each end;
 *  - whether a checkpoint happened in the window: status().checkpoints and decrees.checkpoint of
 *    each replica, at the window's start and end (counters of the runtime);
 *  - segment rollover and retention delete: status().log.segmentsCreated / segmentsRetired at the
 *    window's start and end. As a separate, labelled observation the
 *    soak lists each replica's log folder at every sample: a higher newest segment number is a
 *    rollover seen on disk; a higher oldest segment number or fewer segment files is a retired
 *    (deleted or recycled) segment seen on disk.
 *  - each stage thread's V8 heap, in use and physical (pages written at least once, so inside
 *    RSS), from the replica status (every stage samples its own about once a second).
 * Warm-up (SOAK_WARMUP_S_DEFAULT): the benchmark's processes run with a 64 MiB semi-space fixed
 *  from the start (BENCH_NODE_FLAGS), so every thread's young generation is 2 × 64 MiB of
 *  reserved pages that reach RSS only as the thread first writes them: the log stage, which
 *  allocates a few MiB a second, takes about a minute at 200,000 ops/s to have written all of
 *  them (its physical heap climbs from ~16 to ~137 MiB, then moves within ~84–156 MiB). A soak
 *  that starts comparing before that measures V8 filling its reservation, not a leak; at a
 *  lower rate the climb is slower, so give a longer warm-up (the report prints the physical
 *  heaps of the first and last window to check).
 * What is NOT measured: the checkpoint writer thread's heap on its own (only inside RSS); load
 *  generator processes (client load); the warm-up; memory after the window (drain, verify).
 *  The sampling itself (an IPC round trip and a readdir per replica) runs inside the window.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runClusterBench, type BenchPoint, type BenchResult, type MonitorTick, type Progress } from './cluster-bench.js';

/** Allowed drift of the last minute's median RSS from the first minute's, as a fraction. */
export const TOLERANCE = 0.1;
const MINUTE_S = 60;
/** The soak's warm-up unless --warmup says otherwise (see the file comment), seconds. */
export const SOAK_WARMUP_S_DEFAULT = 120;
/** Defaults chosen so a 5-minute run at tens of thousands of ops/s rolls segments and checkpoints. */
export const SOAK_SEGMENT_BYTES_DEFAULT = 8 * 1024 * 1024;
export const SOAK_CHECKPOINT_EVERY_DECREES_DEFAULT = 5000;
const SEGMENT_FILE = /^seg-(\d{8})\.plog$/;

export interface SoakSpec {
  /** The point to run; its durationS is the soak length and rateOpsPerSec is required. */
  readonly point: BenchPoint;
  readonly sampleEveryS: number;
}

export interface MemorySample {
  readonly tS: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly heapTotalBytes: number;
  /** V8 heap in use by each stage thread (replica status, sampled by each stage about once a second). */
  readonly stageHeapUsedBytes: StageHeaps | null;
  /** The same heaps' physical size (written pages, part of RSS), main thread included. */
  readonly heapPhysicalBytes: (StageHeaps & { readonly main: number }) | null;
}

export interface StageHeaps { readonly consensus: number; readonly log: number; readonly apply: number }

export interface LogFolderSample {
  readonly tS: number;
  readonly segments: number;
  readonly oldestSegment: number;
  readonly newestSegment: number;
  readonly freeFiles: number;
}

export interface SoakProcess {
  readonly name: string;
  readonly primary: boolean;
  readonly samples: MemorySample[];
  readonly rssMedianFirstMiB: number;
  readonly rssMedianLastMiB: number;
  readonly heapUsedMedianFirstMiB: number;
  readonly heapUsedMedianLastMiB: number;
  /** The stage threads' V8 heaps, median of the first and the last window, MiB. */
  readonly stageHeapUsedMedianFirstMiB: StageHeaps;
  readonly stageHeapUsedMedianLastMiB: StageHeaps;
  /** The stage threads' V8 heaps in physical memory, median of the first and the last window, MiB. */
  readonly stageHeapPhysicalMedianFirstMiB: StageHeaps;
  readonly stageHeapPhysicalMedianLastMiB: StageHeaps;
  /** Last window's median RSS ÷ first window's. */
  readonly rssRatio: number;
  readonly pass: boolean;
  readonly checkpointsInWindow: number;
  readonly rolloversInWindow: number;
  readonly retirementsInWindow: number;
  readonly checkpointDecreeAtStart: number;
  readonly checkpointDecreeAtEnd: number;
  readonly logFolder: LogFolderSample[];
  readonly rolloversSeenOnDisk: number;
  readonly retiredSegmentsSeenOnDisk: number;
}

export interface SoakResult {
  readonly soak: true;
  readonly soakS: number;
  readonly rateOpsPerSec: number;
  readonly sampleEveryS: number;
  /** Length of the first and last windows compared, s. */
  readonly compareWindowS: number;
  readonly tolerance: number;
  readonly segmentBytes: number;
  readonly checkpointEveryDecrees: number;
  readonly processes: SoakProcess[];
  /** Every replica's RSS ratio within 1 ± tolerance (and at least one sample in each window). */
  readonly pass: boolean;
  readonly events: {
    readonly checkpoint: boolean;
    readonly segmentRollover: boolean;
    readonly retentionDelete: boolean;
    readonly segmentRolloverSeenOnDisk: boolean;
    readonly retentionDeleteSeenOnDisk: boolean;
  };
  readonly bench: BenchResult;
}

const MIB = 1024 * 1024;
const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function logFolderOf(dataDir: string, tS: number): LogFolderSample {
  let names: string[] = [];
  try {
    names = readdirSync(join(dataDir, 'log'));
  } catch { /* not created yet */ }
  const numbers = names.map((n) => SEGMENT_FILE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
  return {
    tS, segments: numbers.length,
    oldestSegment: numbers.length > 0 ? Math.min(...numbers) : 0,
    newestSegment: numbers.length > 0 ? Math.max(...numbers) : 0,
    freeFiles: names.filter((n) => n.startsWith('free-')).length,
  };
}

interface Sampler {
  readonly memory: MemorySample[][];
  readonly folders: LogFolderSample[][];
  first: MonitorTick | null;
  last: MonitorTick | null;
  nextSampleMs: number;
}

function makeMonitor(sampleEveryS: number, s: Sampler): (t: MonitorTick) => Promise<void> {
  return async (t) => {
    s.first ??= t;
    s.last = t;
    if (t.elapsedMs < s.nextSampleMs) return;
    s.nextSampleMs += sampleEveryS * 1000;
    const tS = round(t.elapsedMs / 1000, 2);
    const mems = await Promise.all(t.replicas.map((h) => h.call<{ rssBytes: number; heapUsedBytes: number; heapTotalBytes: number }>('mem')));
    mems.forEach((m, i) => {
      const h = t.statuses[i]?.heapUsedBytes;
      const ph = t.statuses[i]?.heapPhysicalBytes;
      (s.memory[i] ??= []).push({
        tS, rssBytes: m.rssBytes, heapUsedBytes: m.heapUsedBytes, heapTotalBytes: m.heapTotalBytes,
        stageHeapUsedBytes: h === undefined ? null : { consensus: h.consensus, log: h.log, apply: h.apply },
        heapPhysicalBytes: ph === undefined ? null : { main: ph.main, consensus: ph.consensus, log: ph.log, apply: ph.apply },
      });
      (s.folders[i] ??= []).push(logFolderOf(t.dataDirs[i]!, tS));
    });
  };
}

function stageHeaps(
  xs: readonly MemorySample[], mib: (xs: readonly MemorySample[], f: (x: MemorySample) => number) => number,
  of: (x: MemorySample) => StageHeaps | null,
): StageHeaps {
  const ok = xs.filter((x) => of(x) !== null);
  return {
    consensus: mib(ok, (x) => of(x)!.consensus),
    log: mib(ok, (x) => of(x)!.log),
    apply: mib(ok, (x) => of(x)!.apply),
  };
}

function summarizeProcess(i: number, s: Sampler, soakS: number, windowS: number, primary: number): SoakProcess {
  const samples = s.memory[i] ?? [];
  const folder = s.folders[i] ?? [];
  const first = samples.filter((x) => x.tS < windowS);
  const last = samples.filter((x) => x.tS >= soakS - windowS);
  const mib = (xs: readonly MemorySample[], f: (x: MemorySample) => number): number => round(median(xs.map(f)) / MIB, 1);
  const rssFirst = median(first.map((x) => x.rssBytes));
  const rssLast = median(last.map((x) => x.rssBytes));
  const ratio = rssLast / rssFirst;
  let rollovers = 0;
  let retired = 0;
  for (let k = 1; k < folder.length; k++) {
    const a = folder[k - 1]!;
    const b = folder[k]!;
    rollovers += Math.max(0, b.newestSegment - a.newestSegment);
    retired += Math.max(0, b.oldestSegment - a.oldestSegment);
  }
  const s0 = s.first?.statuses[i];
  const s1 = s.last?.statuses[i];
  return {
    name: `replica ${i + 1}`,
    primary: i + 1 === primary,
    samples,
    rssMedianFirstMiB: mib(first, (x) => x.rssBytes),
    rssMedianLastMiB: mib(last, (x) => x.rssBytes),
    heapUsedMedianFirstMiB: mib(first, (x) => x.heapUsedBytes),
    heapUsedMedianLastMiB: mib(last, (x) => x.heapUsedBytes),
    stageHeapUsedMedianFirstMiB: stageHeaps(first, mib, (x) => x.stageHeapUsedBytes),
    stageHeapUsedMedianLastMiB: stageHeaps(last, mib, (x) => x.stageHeapUsedBytes),
    stageHeapPhysicalMedianFirstMiB: stageHeaps(first, mib, (x) => x.heapPhysicalBytes),
    stageHeapPhysicalMedianLastMiB: stageHeaps(last, mib, (x) => x.heapPhysicalBytes),
    rssRatio: round(ratio, 3),
    pass: Number.isFinite(ratio) && Math.abs(ratio - 1) <= TOLERANCE,
    checkpointsInWindow: s0 !== undefined && s1 !== undefined ? s1.checkpoints - s0.checkpoints : 0,
    rolloversInWindow: s0 !== undefined && s1 !== undefined ? s1.log.segmentsCreated - s0.log.segmentsCreated : 0,
    retirementsInWindow: s0 !== undefined && s1 !== undefined ? s1.log.segmentsRetired - s0.log.segmentsRetired : 0,
    checkpointDecreeAtStart: s0?.decrees.checkpoint ?? 0,
    checkpointDecreeAtEnd: s1?.decrees.checkpoint ?? 0,
    logFolder: folder,
    rolloversSeenOnDisk: rollovers,
    retiredSegmentsSeenOnDisk: retired,
  };
}

export async function runSoak(spec: SoakSpec, progress: (p: Progress) => void = () => {}): Promise<SoakResult> {
  const rate = spec.point.rateOpsPerSec;
  if (rate === undefined) throw new Error('the soak runs open loop: give a rate (--rate)');
  if (!(spec.sampleEveryS > 0)) throw new Error(`sampleEveryS must be > 0, got ${spec.sampleEveryS}`);
  const segmentBytes = spec.point.segmentBytes ?? SOAK_SEGMENT_BYTES_DEFAULT;
  const checkpointEveryDecrees = spec.point.checkpointEveryDecrees ?? SOAK_CHECKPOINT_EVERY_DECREES_DEFAULT;
  const sampler: Sampler = { memory: [], folders: [], first: null, last: null, nextSampleMs: 0 };
  const bench = await runClusterBench({
    ...spec.point, segmentBytes, checkpointEveryDecrees, monitor: makeMonitor(spec.sampleEveryS, sampler),
  }, progress);
  const soakS = spec.point.durationS;
  const compareWindowS = Math.min(MINUTE_S, Math.max(spec.sampleEveryS, soakS / 5));
  const processes = [0, 1, 2].map((i) => summarizeProcess(i, sampler, soakS, compareWindowS, bench.primary));
  return {
    soak: true, soakS, rateOpsPerSec: rate, sampleEveryS: spec.sampleEveryS, compareWindowS,
    tolerance: TOLERANCE, segmentBytes, checkpointEveryDecrees,
    processes,
    pass: processes.every((p) => p.pass),
    events: {
      checkpoint: processes.some((p) => p.checkpointsInWindow > 0),
      segmentRollover: processes.some((p) => p.rolloversInWindow > 0),
      retentionDelete: processes.some((p) => p.retirementsInWindow > 0),
      segmentRolloverSeenOnDisk: processes.some((p) => p.rolloversSeenOnDisk > 0),
      retentionDeleteSeenOnDisk: processes.some((p) => p.retiredSegmentsSeenOnDisk > 0),
    },
    bench,
  };
}

/** The human-readable report (`paxline bench --soak` without --json). */
export function formatSoak(r: SoakResult): string {
  const lines: string[] = [];
  const b = r.bench;
  lines.push(`memory soak: ${r.soakS} s open loop at ${r.rateOpsPerSec.toLocaleString('en-US')} ops/s (achieved ${b.opsPerSec.toLocaleString('en-US')}; p99 ${b.p99Ms} ms), ${b.commandBytes}-byte values, after ${b.warmupS} s warm-up`);
  lines.push(`  segments ${r.segmentBytes} bytes, checkpoint every ${r.checkpointEveryDecrees} decrees; RSS sampled every ${r.sampleEveryS} s; first vs last ${r.compareWindowS} s, tolerance ±${r.tolerance * 100} %`);
  lines.push('  process            RSS first  RSS last  ratio  heapUsed first/last  checkpoints  rollovers*  retired*  result');
  for (const p of r.processes) {
    lines.push(`  ${(p.name + (p.primary ? ' (primary)' : '')).padEnd(18)} ${p.rssMedianFirstMiB.toFixed(1).padStart(7)} MiB ${p.rssMedianLastMiB.toFixed(1).padStart(6)} MiB ${p.rssRatio.toFixed(3).padStart(6)}  ${`${p.heapUsedMedianFirstMiB.toFixed(1)} / ${p.heapUsedMedianLastMiB.toFixed(1)} MiB`.padStart(19)}  ${String(p.checkpointsInWindow).padStart(11)}  ${String(p.rolloversSeenOnDisk).padStart(10)}  ${String(p.retiredSegmentsSeenOnDisk).padStart(8)}  ${p.pass ? 'pass' : 'FAIL'}`);
    const a = p.stageHeapUsedMedianFirstMiB;
    const b = p.stageHeapUsedMedianLastMiB;
    lines.push(`    stage heaps in use (first → last window, MiB): consensus ${a.consensus} → ${b.consensus}, log ${a.log} → ${b.log}, apply ${a.apply} → ${b.apply}`);
    const pa = p.stageHeapPhysicalMedianFirstMiB;
    const pb = p.stageHeapPhysicalMedianLastMiB;
    lines.push(`    stage heaps in RSS (physical): consensus ${pa.consensus} → ${pb.consensus}, log ${pa.log} → ${pb.log}, apply ${pa.apply} → ${pb.apply}`);
  }
  lines.push(`  events in the window: checkpoint ${r.events.checkpoint ? 'yes' : 'no'}; segment rollover ${r.events.segmentRollover ? 'yes' : 'no'}, retention delete ${r.events.retentionDelete ? 'yes' : 'no'} (status counters)`);
  lines.push(`  * seen on disk (log folder listed at each sample): rollover ${r.events.segmentRolloverSeenOnDisk ? 'yes' : 'no'}, retired segment ${r.events.retentionDeleteSeenOnDisk ? 'yes' : 'no'}`);
  lines.push(`  bench run ${b.valid ? 'valid' : `INVALID: ${b.invalidReasons.join('; ')}`}; state digests ${b.stateDigestsEqual ? 'equal' : 'DIFFER'}; memory ${r.pass ? 'PASS' : 'FAIL'}`);
  return lines.join('\n');
}
