/**
 * The cluster benchmark (issue 5): `runClusterBench(point)` starts a real replica set — three
 * replica PROCESSES (replica-proc.ts) on 127.0.0.1, each a full replica of the built-in KV machine
 * with fdatasync on, data in a fresh temporary folder on a real disk (tmpfs is refused) — drives
 * it, and returns one result line.
 *
 * Load:
 *  - 'embedded': the primary's own process runs the load loop on its main thread, calling
 *    replica.replicate() with KV puts, as an application embedding paxline would;
 *  - 'client': LOAD_GENERATORS separate processes (load-proc.ts) send KV puts through the
 *    network client (connectClient), with `inflight` puts outstanding in total.
 * Closed loop by default; with `rateOpsPerSec`, open loop (see load-driver.ts).
 * `commandBytes` is the put's VALUE size (key 16 bytes): see workload.ts.
 *
 * What is measured:
 *  - opsPerSec = puts resolved with the KV machine's result inside the measurement window ÷ the
 *    window's length (each load process's own clock between its two marks). After the window the
 *    load stops, what is outstanding completes, and the coordinator waits until every replica has
 *    executed at least the primary's commit point — so every counted put was executed on all
 *    three replicas — then compares the replicas' state digests (stateDigestsEqual).
 *  - p50 / p99 / p99.9 latency (perf_hooks histogram, µs) of the counted puts, in the process
 *    that sent them; open loop: from the intended send time.
 *  - From each replica's status() at the window's two ends: decreesPerSec (primary's committed
 *    decrees), commandsPerFsync and fsyncsPerSec (primary), elections (won, all replicas: must
 *    be 0, else the run is marked invalid), and every 500 ms during the window the lag of each
 *    replica (primary committed − its executed; maxLagDecrees is the largest sample).
 *  - fsyncMaxMs: each replica's slowest sync step in the window (the log stage's fsync
 *    histogram times the whole step — writes, fdatasync, any metadata sync), as the UPPER BOUND
 *    of the power-of-two bucket it fell in: the true maximum lies in (bound / 2, bound];
 *    latencyMaxMsPerSecond: the slowest counted put completing in each second of the window
 *    (null for a second with none; a tail made of a few stalls shows as a few large entries);
 *    open loop: sendLagP50Ms / sendLagP99Ms, how late the load process sent its puts (actual −
 *    intended send time: its 1 ms pump, its thread's other work — the primary's main thread for
 *    embedded load — and, at the outstanding cap, the wait for a free slot), part of the latency.
 *  - executedPerSecMin: commands executed by each replica between the status snapshots at the
 *    window's two ends ÷ the window, the smallest of the three — what was executed on ALL
 *    replicas in the window (a secondary that lags at its end executes the rest after it, so this
 *    may fall below opsPerSec). The snapshots and the load's marks are taken together over IPC,
 *    a few ms apart: differences from opsPerSec below ~0.1 % mean nothing.
 *  - tail: the counted puts of at least 10 ms, grouped into clusters and matched against the
 *    pauses in the replicas' stall journals (replica.stalls(): slow log groups and rollovers, GC
 *    pauses, checkpoint writes) — see tail.ts for the rules and what they cannot tell.
 *  - cpuUsPerOp: process.cpuUsage() delta (user + system, all threads) of each replica process,
 *    then each load generator, over the window ÷ the window's ops.
 * What is NOT measured: the warm-up (replica start, election, the first warmupS seconds); the
 *  time to drain and verify after the window. fsyncP99Ms is the primary's fsync p99 since the
 *  replica started (warm-up included), as the runtime's status reports it: the upper bound of a
 *  power-of-two bucket of µs, not a window-only figure.
 * The three replicas, their stage workers and the load share this machine's cores: figures are of
 *  the whole set on one host, not of one replica on its own machine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesystemOf } from '../micro/log.js';
import { BENCH_NODE_FLAGS, ChildHandle } from './ipc.js';
import { mergeSummaries, type LatencySummary } from './latency.js';
import { SLOW_MS, type WindowReport } from './load-driver.js';
import { attributeTail, LEAD_MS, type ReplicaStalls, type TailReport } from './tail.js';
import type { StallEvent } from '../../src/runtime/stall-journal.js';
import type { ReplicaStatus } from '../../src/runtime/replica.js';
import type { ReplicaStartArg } from './replica-proc.js';
import { SLOTS_MAX, encodedPutBytes } from './workload.js';
import { freePorts } from '../../src/util/free-ports.js';

export type LoadKind = 'embedded' | 'client';

export interface BenchPoint {
  readonly load: LoadKind;
  /** The put's value size, bytes. Default 16 (embedded), 128 (client). */
  readonly commandBytes?: number;
  /** Closed loop: puts outstanding in total. Open loop: the cap on outstanding puts. */
  readonly inflight: number;
  readonly warmupS: number;
  readonly durationS: number;
  /** Open loop at this many intended puts per second; absent: closed loop. */
  readonly rateOpsPerSec?: number;
  /** Parent folder of the temporary data folder. Default os.tmpdir(). */
  readonly dir?: string;
  readonly pipelineDepth?: number;
  /** ReplicaOptions.secondaryApplyNice (default: the replica's default, 'auto'). */
  readonly secondaryApplyNice?: number | 'auto';
  readonly batchCountMax?: number;
  /** ReplicaOptions.batchDelayMs (default: the replica's default, 0). */
  readonly batchDelayMs?: number;
  readonly batchBytesMax?: number;
  /** Client load: KV clients per load generator. Default: enough for ≤ 512 puts each. */
  readonly clientsPerGenerator?: number;
  /** Log segment size, bytes (createReplica segmentBytes; the soak uses small ones). */
  readonly segmentBytes?: number;
  /** createReplica checkpointEveryDecrees (the soak uses a small interval). */
  readonly checkpointEveryDecrees?: number;
  /**
   * Called at every sample of the measurement window (about every 500 ms) with the replicas'
   * status; bench/cluster/soak.ts samples memory through it. Its time is inside the window.
   */
  readonly monitor?: (tick: MonitorTick) => Promise<void>;
}

/** What `BenchPoint.monitor` sees at one sample of the measurement window. */
export interface MonitorTick {
  /** Since the window started, ms. */
  readonly elapsedMs: number;
  /** By replica index (replica id − 1). */
  readonly statuses: readonly Status[];
  readonly replicas: readonly ChildHandle[];
  /** Data folder of each replica, by replica index. */
  readonly dataDirs: readonly string[];
  /** The primary's replica id. */
  readonly primary: number;
}

export interface BenchResult {
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  commandBytes: number;
  encodedCommandBytes: number;
  replicas: 3;
  fsync: true;
  load: LoadKind;
  inflight: number;
  rateOpsPerSec: number | null;
  /** Open loop: operations whose intended send time fell in the window ÷ window (else null). */
  intendedOpsPerSec: number | null;
  /** Open loop: most operations due but waiting for a free slot (inflight cap); else 0. */
  backlogMax: number;
  decreesPerSec: number;
  commandsPerDecree: number;
  commandsPerFsync: number;
  fsyncsPerSec: number;
  fsyncP99Ms: number;
  /** Each replica's slowest sync step in the window, ms: the upper bound of its power-of-two histogram bucket. */
  fsyncMaxMs: number[];
  /** The slowest counted operation completing in each second of the window, ms (all load processes). */
  latencyMaxMsPerSecond: (number | null)[];
  /**
   * Open loop: p50 / p99 of how late puts were sent (actual − intended send time, included in the
   * latency); null for a closed loop.
   */
  sendLagP50Ms: number | null;
  sendLagP99Ms: number | null;
  maxLagDecrees: number[];
  /**
   * Commands each replica executed inside the window ÷ the window, the smallest of the three: the
   * rate at which commands were executed on ALL replicas in the window (a secondary that lags at
   * the window's end executes the rest after it, so this can be below opsPerSec).
   */
  executedPerSecMin: number;
  elections: number;
  busyRejected: number;
  errors: number;
  firstError: string | null;
  cpuUsPerOp: number[];
  cpuProcesses: string[];
  filesystem: string;
  stateDigestsEqual: boolean;
  valid: boolean;
  invalidReasons: string[];
  windowS: number;
  warmupS: number;
  ops: number;
  primary: number;
  options: {
    pipelineDepth: number | null; batchCountMax: number | null; batchBytesMax: number | null;
    batchDelayMs: number | null; secondaryApplyNice: number | 'auto' | null;
  };
  /** Each replica's apply-thread nice value at the window's end (status().applyNice). */
  applyNice: number[];
  node: string;
  /** Node flags of the replica and load-generator processes (BENCH_NODE_FLAGS). */
  nodeFlags: readonly string[];
  startedAt: string;
  /**
   * What the latency tail is made of (tail.ts): the counted puts of at least SLOW_MS (10 ms),
   * in clusters, each matched against the stalls in the replicas' journals (stallThresholdMs 5).
   */
  tail: TailReport;
}

export interface Progress {
  readonly phase: 'start' | 'warmup' | 'measure' | 'verify' | 'done';
  /** Fraction of the current phase, 0..1. */
  readonly fraction: number;
  readonly text: string;
}

export type Status = Omit<ReplicaStatus, 'consensus'>;
interface Cpu { user: number; system: number; rssBytes: number }

const REPLICAS = 3;
const LOAD_GENERATORS = 2;
const HOST = '127.0.0.1';
const STARTUP_TIMEOUT_MS = 90_000;
const PRIMARY_TIMEOUT_MS = 30_000;
const DRAIN_TIMEOUT_MS = 120_000;
const CATCH_UP_TIMEOUT_MS = 120_000;
const SAMPLE_MS = 500;
const PER_CLIENT_INFLIGHT = 512;
const TMPFS = 'tmpfs';

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** For races only: an unref'd timer, so a lost race does not keep the process alive. */
const deadline = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class BenchError extends Error {
  constructor(readonly code: 'PAXLINE_USAGE' | 'PAXLINE_BENCH_FAILED', message: string) {
    super(message);
    this.name = 'BenchError';
  }
}


function validate(p: BenchPoint): void {
  const int = (name: string, v: number, lo: number, hi: number): void => {
    if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new BenchError('PAXLINE_USAGE', `${name} must be an integer in [${lo}, ${hi}], got ${v}`);
  };
  if (p.load !== 'embedded' && p.load !== 'client') throw new BenchError('PAXLINE_USAGE', `load must be 'embedded' or 'client', got '${String(p.load)}'`);
  int('inflight', p.inflight, 1, SLOTS_MAX);
  if (p.commandBytes !== undefined) int('commandBytes', p.commandBytes, 1, 1024 * 1024);
  if (!(p.durationS > 0)) throw new BenchError('PAXLINE_USAGE', `duration must be > 0 s, got ${p.durationS}`);
  if (!(p.warmupS >= 0)) throw new BenchError('PAXLINE_USAGE', `warmup must be ≥ 0 s, got ${p.warmupS}`);
  if (p.rateOpsPerSec !== undefined && !(p.rateOpsPerSec > 0)) throw new BenchError('PAXLINE_USAGE', `rate must be > 0, got ${p.rateOpsPerSec}`);
}

/** Children, data folder and exit hook of one run; `dispose` is idempotent and never throws. */
class RunResources {
  readonly children: ChildHandle[] = [];
  private readonly onExit = (): void => {
    for (const c of this.children) if (c.alive) c.child.kill('SIGKILL');
  };
  failure: Error | null = null;
  private disposed = false;

  /** Ctrl-C / SIGTERM during a run: kill the replicas, remove the data, exit (128 + signal). */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.onExit();
    rmSync(this.base, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor(readonly base: string) {
    process.on('exit', this.onExit);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  async dispose(graceful: boolean): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (graceful) {
      await Promise.all(this.children.map(async (c) => {
        try {
          await Promise.race([c.call('close', null, 15_000).then(() => c.exited), deadline(15_000)]);
        } catch { /* killed below */ }
      }));
    }
    await Promise.all(this.children.map((c) => c.kill()));
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
    rmSync(this.base, { recursive: true, force: true });
  }
}

export async function runClusterBench(point: BenchPoint, progress: (p: Progress) => void = () => {}): Promise<BenchResult> {
  validate(point);
  const parent = point.dir ?? tmpdir();
  let base: string;
  try {
    base = mkdtempSync(join(parent, 'paxline-bench-'));
  } catch (e) {
    throw new BenchError('PAXLINE_USAGE', `cannot create a data folder in ${parent}: ${(e as Error).message}`);
  }
  const filesystem = filesystemOf(base);
  if (filesystem === TMPFS) {
    rmSync(base, { recursive: true, force: true });
    throw new BenchError('PAXLINE_USAGE', `${parent} is on tmpfs: fdatasync there measures memory, not a disk (use --dir on a real disk)`);
  }
  const res = new RunResources(base);
  let ok = false;
  try {
    const result = await runIn(res, point, filesystem, progress);
    ok = true;
    return result;
  } finally {
    progress({ phase: 'done', fraction: 1, text: ok ? 'stopping replicas' : 'failed: killing replicas' });
    await res.dispose(ok);
  }
}

interface Cluster {
  readonly replicas: ChildHandle[];
  readonly loaders: ChildHandle[];
  /** Client endpoints 'host:port', by replica index. */
  readonly clientAddresses: string[];
  primary: number;
}

async function startCluster(res: RunResources, point: BenchPoint, progress: (p: Progress) => void): Promise<Cluster> {
  const ports = await freePorts(2 * REPLICAS);
  const ids = Array.from({ length: REPLICAS }, (_, i) => i + 1);
  const members = ids.map((id, i) => ({ id, host: HOST, port: ports[2 * i]! }));
  const clientAddresses: Record<number, string> = {};
  ids.forEach((id, i) => { clientAddresses[id] = `${HOST}:${ports[2 * i + 1]!}`; });
  const cluster: Cluster = { replicas: [], loaders: [], clientAddresses: ids.map((id) => clientAddresses[id]!), primary: -1 };
  let primaryKnown: () => void = () => {};
  const primaryPromise = new Promise<void>((resolve) => { primaryKnown = resolve; });
  const onEvent = (name: string, data: unknown): void => {
    const d = data as { replicaId: number; role?: string; message?: string };
    if (name === 'role' && d.role === 'primary') {
      cluster.primary = d.replicaId;
      primaryKnown();
    } else if (name === 'failed') {
      res.failure ??= new BenchError('PAXLINE_BENCH_FAILED', `replica ${d.replicaId} failed: ${d.message ?? ''}`);
    }
  };
  for (const id of ids) {
    const h = new ChildHandle(`replica ${id}`, here('./replica-proc.js'), onEvent);
    res.children.push(h);
    cluster.replicas.push(h);
  }
  const tuning = {
    inflightMax: Math.max(65_536, point.inflight),
    ...(point.pipelineDepth !== undefined ? { pipelineDepth: point.pipelineDepth } : {}),
    ...(point.secondaryApplyNice !== undefined ? { secondaryApplyNice: point.secondaryApplyNice } : {}),
    ...(point.batchCountMax !== undefined ? { batchCountMax: point.batchCountMax } : {}),
    ...(point.batchBytesMax !== undefined ? { batchBytesMax: point.batchBytesMax } : {}),
    ...(point.batchDelayMs !== undefined ? { batchDelayMs: point.batchDelayMs } : {}),
    ...(point.segmentBytes !== undefined ? { segmentBytes: point.segmentBytes } : {}),
    ...(point.checkpointEveryDecrees !== undefined ? { checkpointEveryDecrees: point.checkpointEveryDecrees } : {}),
  };
  progress({ phase: 'start', fraction: 0, text: 'starting 3 replica processes' });
  await Promise.all(cluster.replicas.map((h, i) => h.call('start', {
    clusterId: 'paxline-bench', replicaId: ids[i]!, members, dataDir: join(res.base, `r${ids[i]!}`),
    clientHost: HOST, clientPort: ports[2 * i + 1]!, clientAddresses, tuning,
  } satisfies ReplicaStartArg, STARTUP_TIMEOUT_MS)));
  progress({ phase: 'start', fraction: 0.5, text: 'waiting for a primary' });
  const timedOut = await Promise.race([primaryPromise.then(() => false), deadline(PRIMARY_TIMEOUT_MS).then(() => true)]);
  if (timedOut) throw new BenchError('PAXLINE_BENCH_FAILED', `no primary elected within ${PRIMARY_TIMEOUT_MS} ms`);
  return cluster;
}

async function startLoad(res: RunResources, cluster: Cluster, point: BenchPoint, commandBytes: number): Promise<void> {
  const rate = point.rateOpsPerSec ?? null;
  if (point.load === 'embedded') {
    const primary = cluster.replicas[cluster.primary - 1]!;
    cluster.loaders.push(primary);
    await primary.call('loadStart', { commandBytes, inflight: point.inflight, rateOpsPerSec: rate });
    return;
  }
  for (let g = 0; g < LOAD_GENERATORS; g++) {
    const inflight = Math.floor(point.inflight / LOAD_GENERATORS) + (g < point.inflight % LOAD_GENERATORS ? 1 : 0);
    if (inflight === 0) continue;
    const h = new ChildHandle(`load generator ${g + 1}`, here('./load-proc.js'), () => {});
    res.children.push(h);
    cluster.loaders.push(h);
    const clients = point.clientsPerGenerator ?? Math.max(1, Math.ceil(inflight / PER_CLIENT_INFLIGHT));
    await h.call('loadStart', {
      replicas: cluster.clientAddresses, clients, inflight, commandBytes,
      rateOpsPerSec: rate === null ? null : rate / LOAD_GENERATORS, keyPrefix: String.fromCharCode(97 + g),
    });
  }
}


interface Snapshot {
  readonly statuses: Status[];
  readonly cpus: Cpu[];
}

async function snapshot(cluster: Cluster, processes: ChildHandle[]): Promise<Snapshot> {
  const [statuses, cpus] = await Promise.all([
    Promise.all(cluster.replicas.map((h) => h.call<Status>('status'))),
    Promise.all(processes.map((h) => h.call<Cpu>('cpu'))),
  ]);
  return { statuses, cpus };
}

function checkAlive(res: RunResources): void {
  if (res.failure !== null) throw res.failure;
  for (const c of res.children) {
    if (!c.alive) throw new BenchError('PAXLINE_BENCH_FAILED', `${c.name} exited during the run; its output ended with:\n${c.output}`);
  }
}

/** Waits `seconds`, reporting progress every 250 ms; `tick` runs every SAMPLE_MS. */
async function timedPhase(
  res: RunResources, phase: 'warmup' | 'measure', seconds: number, progress: (p: Progress) => void,
  tick: () => Promise<string>,
): Promise<void> {
  const t0 = performance.now();
  const ms = seconds * 1000;
  let lastTick = -Infinity;
  let text = '';
  for (;;) {
    checkAlive(res);
    const elapsed = performance.now() - t0;
    if (elapsed >= ms) break;
    if (elapsed - lastTick >= SAMPLE_MS) {
      lastTick = elapsed;
      text = await tick();
    }
    progress({ phase, fraction: elapsed / ms, text: `${phase} ${(elapsed / 1000).toFixed(0)}/${seconds} s${text ? `  ${text}` : ''}` });
    await sleep(Math.min(250, ms - elapsed));
  }
}

/** After the window: drain the load, wait for every replica to execute the primary's commits. */
async function verify(res: RunResources, cluster: Cluster, committedAtWindowEnd: number, progress: (p: Progress) => void): Promise<boolean> {
  progress({ phase: 'verify', fraction: 0, text: 'draining outstanding operations' });
  await Promise.all(cluster.loaders.map((h) => h.call('loadDrain', { timeoutMs: DRAIN_TIMEOUT_MS }, DRAIN_TIMEOUT_MS + 5000)));
  const giveUpAt = performance.now() + CATCH_UP_TIMEOUT_MS;
  for (;;) {
    checkAlive(res);
    const s = await Promise.all(cluster.replicas.map((h) => h.call<Status>('status')));
    const committed = s[cluster.primary - 1]!.decrees.committed;
    const executedMin = Math.min(...s.map((x) => x.decrees.executed));
    progress({ phase: 'verify', fraction: 0.5, text: `replicas executed ≥ ${executedMin} of ${committed} committed` });
    if (committed >= committedAtWindowEnd && executedMin >= committed) break;
    if (performance.now() > giveUpAt) {
      throw new BenchError('PAXLINE_BENCH_FAILED', `replicas did not execute the primary's ${committed} committed decrees within ${CATCH_UP_TIMEOUT_MS} ms (executed: ${s.map((x) => x.decrees.executed).join(', ')})`);
    }
    await sleep(100);
  }
  progress({ phase: 'verify', fraction: 0.8, text: 'comparing state digests' });
  const digests = await Promise.all(cluster.replicas.map((h) => h.call<string>('digest', null, 60_000)));
  return digests.every((d) => d === digests[0]);
}

async function runIn(res: RunResources, point: BenchPoint, filesystem: string, progress: (p: Progress) => void): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const commandBytes = point.commandBytes ?? (point.load === 'embedded' ? 16 : 128);
  const cluster = await startCluster(res, point, progress);
  await startLoad(res, cluster, point, commandBytes);
  const processes = [...cluster.replicas, ...cluster.loaders.filter((h) => !cluster.replicas.includes(h))];
  const lastOf = (s: Status[]): Status => s[cluster.primary - 1]!;
  let lastCommands = -1;
  let lastT = 0;
  const rateText = (s: Status[]): string => {
    const now = performance.now();
    const c = lastOf(s).commandsExecuted;
    const text = lastCommands < 0 ? '' : `≈${Math.round(((c - lastCommands) * 1000) / (now - lastT)).toLocaleString('en-US')} commands/s`;
    lastCommands = c;
    lastT = now;
    return text;
  };
  await timedPhase(res, 'warmup', point.warmupS, progress, async () => rateText(await Promise.all(cluster.replicas.map((h) => h.call<Status>('status')))));
  const primaryAtStart = cluster.primary;
  const [start] = await Promise.all([snapshot(cluster, processes), ...cluster.loaders.map((h) => h.call('loadMarkStart'))]);
  const lag = cluster.replicas.map(() => 0);
  const windowT0 = performance.now();
  const windowStartMs = performance.timeOrigin + windowT0;
  const dataDirs = cluster.replicas.map((_, i) => join(res.base, `r${i + 1}`));
  await timedPhase(res, 'measure', point.durationS, progress, async () => {
    const s = await Promise.all(cluster.replicas.map((h) => h.call<Status>('status')));
    const committed = lastOf(s).decrees.committed;
    s.forEach((x, i) => { lag[i] = Math.max(lag[i]!, committed - x.decrees.executed); });
    await point.monitor?.({ elapsedMs: performance.now() - windowT0, statuses: s, replicas: cluster.replicas, dataDirs, primary: cluster.primary });
    return rateText(s);
  });
  const [reports, end] = await Promise.all([
    Promise.all(cluster.loaders.map((h) => h.call<WindowReport>('loadMarkEnd'))),
    snapshot(cluster, processes),
  ]);
  const windowEndMs = performance.timeOrigin + performance.now();
  const stalls = await Promise.all(cluster.replicas.map(async (h, i): Promise<ReplicaStalls> => ({
    replica: i + 1, primary: i + 1 === cluster.primary, stalls: await h.call<StallEvent[]>('stalls', windowStartMs - LEAD_MS - 1000),
  })));
  const digestsEqual = await verify(res, cluster, lastOf(end.statuses).decrees.committed, progress);
  return summarizeRun({
    point, commandBytes, filesystem, startedAt, cluster, processes, start, end, reports, lag, digestsEqual, primaryAtStart,
    stalls, windowStartMs, windowEndMs,
  });
}

interface RunData {
  readonly point: BenchPoint;
  readonly commandBytes: number;
  readonly filesystem: string;
  readonly startedAt: string;
  readonly cluster: Cluster;
  readonly processes: ChildHandle[];
  readonly start: Snapshot;
  readonly end: Snapshot;
  readonly reports: WindowReport[];
  readonly lag: number[];
  readonly digestsEqual: boolean;
  readonly primaryAtStart: number;
  /** Each replica's stall journal, read after the window; the window's ends, ms since the epoch. */
  readonly stalls: ReplicaStalls[];
  readonly windowStartMs: number;
  readonly windowEndMs: number;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** Upper bound (ms) of the highest fsync histogram bucket that grew between two snapshots; 0 if none. */
function slowestBucketMs(before: readonly number[], after: readonly number[]): number {
  for (let k = after.length - 1; k >= 0; k--) if (after[k]! > (before[k] ?? 0)) return 2 ** (k + 1) / 1000;
  return 0;
}

/** Element-wise maximum of arrays of different lengths; null where no array has a number. */
function maxPerIndex(xs: readonly (readonly (number | null)[])[]): (number | null)[] {
  const out: (number | null)[] = [];
  for (const a of xs) {
    a.forEach((v, i) => {
      const cur = out[i] ?? null;
      out[i] = v === null ? cur : cur === null ? v : Math.max(cur, v);
    });
  }
  return Array.from(out, (v) => v ?? null);
}

function summarizeRun(d: RunData): BenchResult {
  const p = d.cluster.primary - 1;
  const s0 = d.start.statuses[p]!;
  const s1 = d.end.statuses[p]!;
  const ops = d.reports.reduce((s, r) => s + r.ops, 0);
  const opsPerSec = d.reports.reduce((s, r) => s + (r.windowMs > 0 ? (r.ops * 1000) / r.windowMs : 0), 0);
  const windowS = d.reports.reduce((s, r) => s + r.windowMs, 0) / d.reports.length / 1000;
  const latency: LatencySummary = mergeSummaries(d.reports.map((r) => r.latency));
  const decrees = s1.decrees.committed - s0.decrees.committed;
  const commands = s1.commandsExecuted - s0.commandsExecuted;
  const fsyncs = s1.log.fsyncs - s0.log.fsyncs;
  const elections = d.end.statuses.reduce((s, x, i) => s + x.elections - d.start.statuses[i]!.elections, 0);
  const invalidReasons: string[] = [];
  if (elections !== 0) invalidReasons.push(`${elections} election(s) during the window`);
  if (d.cluster.primary !== d.primaryAtStart || s1.role !== 'primary') invalidReasons.push('the primary changed during the window');
  if (!d.digestsEqual) invalidReasons.push('state digests differ');
  if (ops === 0) invalidReasons.push('no operation completed in the window');
  const errors = d.reports.reduce((s, r) => s + r.errors, 0);
  const cpuUsPerOp = d.end.cpus.map((c, i) => {
    const c0 = d.start.cpus[i]!;
    return ops > 0 ? round((c.user + c.system - c0.user - c0.system) / ops, 3) : 0;
  });
  const cpuProcesses = d.processes.map((h, i) => (i < REPLICAS ? `${h.name}${i === p ? ' (primary)' : ''}` : h.name));
  return {
    opsPerSec: Math.round(opsPerSec),
    p50Ms: round(latency.p50Ms, 3),
    p99Ms: round(latency.p99Ms, 3),
    p999Ms: round(latency.p999Ms, 3),
    maxMs: round(latency.maxMs, 3),
    commandBytes: d.commandBytes,
    encodedCommandBytes: encodedPutBytes(d.commandBytes),
    replicas: 3,
    fsync: true,
    load: d.point.load,
    inflight: d.point.inflight,
    rateOpsPerSec: d.point.rateOpsPerSec ?? null,
    intendedOpsPerSec: d.point.rateOpsPerSec === undefined ? null
      : Math.round(d.reports.reduce((s, r) => s + (r.windowMs > 0 ? (r.intendedOps * 1000) / r.windowMs : 0), 0)),
    backlogMax: d.reports.reduce((s, r) => s + r.backlogMax, 0),
    decreesPerSec: round(decrees / windowS, 1),
    commandsPerDecree: decrees > 0 ? round(commands / decrees, 1) : 0,
    commandsPerFsync: fsyncs > 0 ? round(commands / fsyncs, 1) : 0,
    fsyncsPerSec: round(fsyncs / windowS, 1),
    fsyncP99Ms: s1.log.fsyncP99Ms,
    fsyncMaxMs: d.end.statuses.map((x, i) => slowestBucketMs(d.start.statuses[i]!.log.fsyncHistogram, x.log.fsyncHistogram)),
    latencyMaxMsPerSecond: maxPerIndex(d.reports.map((r) => r.maxMsPerSecond)),
    ...sendLagOf(d.reports),
    maxLagDecrees: d.lag.map((x) => Math.max(0, x)),
    executedPerSecMin: Math.round(Math.min(...d.end.statuses.map((x, i) =>
      x.commandsExecuted - d.start.statuses[i]!.commandsExecuted)) / windowS),
    elections,
    busyRejected: d.reports.reduce((s, r) => s + r.busyRejected, 0),
    errors,
    firstError: d.reports.find((r) => r.firstError !== null)?.firstError ?? null,
    cpuUsPerOp,
    cpuProcesses,
    filesystem: d.filesystem,
    stateDigestsEqual: d.digestsEqual,
    valid: invalidReasons.length === 0,
    invalidReasons,
    windowS: round(windowS, 3),
    warmupS: d.point.warmupS,
    ops,
    primary: d.cluster.primary,
    options: {
      pipelineDepth: d.point.pipelineDepth ?? null,
      batchCountMax: d.point.batchCountMax ?? null,
      batchBytesMax: d.point.batchBytesMax ?? null,
      batchDelayMs: d.point.batchDelayMs ?? null,
      secondaryApplyNice: d.point.secondaryApplyNice ?? null,
    },
    applyNice: d.end.statuses.map((x) => x.applyNice),
    node: process.version,
    nodeFlags: BENCH_NODE_FLAGS,
    startedAt: d.startedAt,
    tail: attributeTail(d.reports.flatMap((r) => r.slow), d.stalls, d.windowStartMs, d.windowEndMs, ops, SLOW_MS),
  };
}

type SendLag = { sendLagP50Ms: number | null; sendLagP99Ms: number | null };

function sendLagOf(reports: readonly WindowReport[]): SendLag {
  const parts = reports.map((r) => r.sendLag).filter((x): x is LatencySummary => x !== null);
  if (parts.length === 0) return { sendLagP50Ms: null, sendLagP99Ms: null };
  const lag = mergeSummaries(parts);
  return { sendLagP50Ms: round(lag.p50Ms, 3), sendLagP99Ms: round(lag.p99Ms, 3) };
}
