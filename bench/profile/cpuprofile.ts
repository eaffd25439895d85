/**
 * Reading V8 .cpuprofile files (written by `node --cpu-prof`, one per thread) for the profiling
 * loop: which thread a file belongs to, its time split (idle, GC, program, JavaScript) and its
 * top functions by self time, optionally restricted to a time window.
 *
 * Clock: a profile's startTime, endTime and timeDeltas are µs of the system's monotonic clock
 * (CLOCK_MONOTONIC), the clock of process.hrtime() — so a window recorded with
 * process.hrtime.bigint() / 1000 in ANY process of this machine cuts every profile at the same
 * instants. Checked on Node 20: a profile's startTime < hrtime read in the script < endTime.
 *
 * What a sample's time means: sample i is charged the interval until sample i + 1 (the last
 * sample the mean interval). A thread blocked in Atomics.wait is still sampled with its JS stack,
 * so that time is charged to the function that waits, not to '(idle)'; '(idle)' is only time the
 * thread spent in its event loop waiting for I/O or messages. The summary therefore counts the
 * self time of BLOCKING_FUNCTIONS (the doorbell's waitSync, whose self time is its Atomics.wait,
 * and the builtin 'wait') as blocked, and of SYNC_IO_FUNCTIONS (a synchronous fdatasync, the
 * thread asleep in the kernel) as sync I/O — both are off-CPU although not '(idle)'.
 */
import { readFileSync } from 'node:fs';

export interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

export interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  hitCount?: number;
  readonly children?: number[];
}

export interface CpuProfile {
  readonly nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Names of thread kinds, as the runtime names its workers (src/runtime/replica.ts). */
export type ThreadKind = 'main' | 'log' | 'apply' | 'consensus' | 'unknown';

/** `CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile`: Node's default file name. */
const FILE_NAME = /^CPU\.\d+\.\d+\.(\d+)\.(\d+)\.\d+\.cpuprofile$/;

export function pidTidOf(fileName: string): { pid: number; tid: number } | null {
  const m = FILE_NAME.exec(fileName);
  return m === null ? null : { pid: Number(m[1]), tid: Number(m[2]) };
}

export function readProfile(path: string): CpuProfile {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas) || p.samples.length !== p.timeDeltas.length) {
    throw new Error(`${path}: not a V8 CPU profile`);
  }
  return p;
}

/**
 * The kind of thread that wrote `p`: a worker is recognised by its entry module
 * (workers/<kind>.worker.js) or else its stage module (src/runtime/<kind>-stage.js) among the
 * profile's frames; thread id 0 is the main thread.
 */
export function threadKindOf(p: CpuProfile, tid: number): ThreadKind {
  if (tid === 0) return 'main';
  const urls = new Set(p.nodes.map((n) => n.callFrame.url));
  for (const kind of ['log', 'apply', 'consensus'] as const) {
    for (const u of urls) if (u.endsWith(`/workers/${kind}.worker.js`)) return kind;
  }
  for (const kind of ['log', 'apply', 'consensus'] as const) {
    for (const u of urls) if (u.endsWith(`/runtime/${kind}-stage.js`)) return kind;
  }
  return 'unknown';
}

/** Per-sample timestamps (µs, monotonic) and the time charged to each sample (µs). */
function sampleTimes(p: CpuProfile): { at: Float64Array; weight: Float64Array } {
  const n = p.samples.length;
  const at = new Float64Array(n);
  let t = p.startTime;
  for (let i = 0; i < n; i++) {
    t += p.timeDeltas[i]!;
    at[i] = t;
  }
  const weight = new Float64Array(n);
  const mean = n > 1 ? (at[n - 1]! - at[0]!) / (n - 1) : 0;
  for (let i = 0; i < n; i++) weight[i] = i + 1 < n ? at[i + 1]! - at[i]! : mean;
  return { at, weight };
}

/** Self time of these functions is a thread blocked in Atomics.wait (see the file comment). */
export const BLOCKING_FUNCTIONS: ReadonlySet<string> = new Set(['wait', 'waitSync']);
/** Self time of these is a thread waiting for the disk in a synchronous call. */
export const SYNC_IO_FUNCTIONS: ReadonlySet<string> = new Set(['fdatasync', 'fsync', 'fdatasyncSync', 'fsyncSync']);

export interface WindowUs { readonly startUs: number; readonly endUs: number }

/** A copy of `p` holding only the samples inside `w` (hitCounts recomputed): for flamegraphs. */
export function trimProfile(p: CpuProfile, w: WindowUs): CpuProfile {
  const { at } = sampleTimes(p);
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  const hits = new Map<number, number>();
  let prev = Math.max(p.startTime, w.startUs);
  for (let i = 0; i < p.samples.length; i++) {
    const t = at[i]!;
    if (t < w.startUs || t > w.endUs) continue;
    const id = p.samples[i]!;
    samples.push(id);
    timeDeltas.push(t - prev);
    prev = t;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  const nodes = p.nodes.map((n) => ({ ...n, hitCount: hits.get(n.id) ?? 0 }));
  return { nodes, startTime: Math.max(p.startTime, w.startUs), endTime: Math.min(p.endTime, w.endUs), samples, timeDeltas };
}

export interface FunctionTime {
  readonly name: string;
  /** url:line, the url shortened to the path below the repository's dist/ (or node:…). */
  readonly where: string;
  readonly selfMs: number;
  readonly selfShare: number;
}

export interface ProfileSummary {
  /** Time covered by the samples counted, ms. */
  readonly sampledMs: number;
  readonly samples: number;
  readonly idleShare: number;
  readonly gcShare: number;
  /** '(program)': native code with no JS frame (V8, libuv, the runtime's C++). */
  readonly programShare: number;
  /** Blocked in Atomics.wait (BLOCKING_FUNCTIONS' self time). */
  readonly blockedShare: number;
  /** In a synchronous fdatasync / fsync (SYNC_IO_FUNCTIONS' self time). */
  readonly syncIoShare: number;
  /** Everything else: JavaScript and the builtins it calls — on the CPU, roughly. */
  readonly jsShare: number;
  readonly top: FunctionTime[];
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const i = url.lastIndexOf('/dist/');
  if (i >= 0) return url.slice(i + 6);
  const n = url.lastIndexOf('/node_modules/');
  return n >= 0 ? url.slice(n + 1) : url.replace(/^file:\/\//, '');
}

/** Self time by function over the samples inside `w` (or all samples), top `topN`. */
export function summarizeProfile(p: CpuProfile, w: WindowUs | null, topN: number): ProfileSummary {
  const byId = new Map<number, ProfileNode>(p.nodes.map((n) => [n.id, n]));
  const { at, weight } = sampleTimes(p);
  const self = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  let program = 0;
  let blocked = 0;
  let syncIo = 0;
  let count = 0;
  for (let i = 0; i < p.samples.length; i++) {
    if (w !== null && (at[i]! < w.startUs || at[i]! > w.endUs)) continue;
    const node = byId.get(p.samples[i]!);
    if (node === undefined) continue;
    const us = weight[i]!;
    const f = node.callFrame;
    total += us;
    count++;
    if (f.functionName === '(idle)') idle += us;
    else if (f.functionName === '(garbage collector)') gc += us;
    else if (f.functionName === '(program)') program += us;
    else if (BLOCKING_FUNCTIONS.has(f.functionName)) blocked += us;
    else if (SYNC_IO_FUNCTIONS.has(f.functionName)) syncIo += us;
    const where = f.url === '' ? '' : `${shortUrl(f.url)}:${f.lineNumber + 1}`;
    const key = `${f.functionName}\u0000${where}`;
    const e = self.get(key);
    if (e === undefined) self.set(key, { name: f.functionName === '' ? '(anonymous)' : f.functionName, where, us });
    else e.us += us;
  }
  const share = (x: number): number => (total > 0 ? x / total : 0);
  const top = [...self.values()].sort((a, b) => b.us - a.us).slice(0, topN)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, selfShare: share(e.us) }));
  return {
    sampledMs: total / 1000, samples: count,
    idleShare: share(idle), gcShare: share(gc), programShare: share(program),
    blockedShare: share(blocked), syncIoShare: share(syncIo),
    jsShare: share(total - idle - gc - program - blocked - syncIo), top,
  };
}
