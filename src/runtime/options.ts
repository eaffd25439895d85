/**
 * Options of a running replica (createReplica), with units in their names, validated once into a
 * frozen object; a bad value throws PAXLINE_BAD_OPTION naming the field.
 *
 * Timers: the network stage ticks the core every `tickMs`; the core counts in ticks, so the
 * millisecond options are converted here (rounded up) and must keep the core's ordering
 * checkQuorum < newLeaderGracePeriod ≤ electionTimeoutMin (validated by the core as well).
 */
import { badOption } from './errors.js';

export interface MemberAddress {
  readonly id: number;
  /** Where peers reach this replica's replica protocol (TCP). */
  readonly host: string;
  readonly port: number;
}

export interface ReplicaOptions {
  /** Names the replica set; frames and data directories of another cluster are refused. */
  readonly clusterId: string;
  readonly replicaId: number;
  /** Every member, this replica included, with its peer address. */
  readonly members: readonly MemberAddress[];
  /** Where the log, promise metadata and checkpoints live (a real disk: fdatasync is used). */
  readonly dataDir: string;
  /**
   * Allow an empty data directory: only for a new cluster. A member whose disk was wiped must not
   * rejoin under its old id with init (it would forget its promises). Default false.
   */
  readonly init?: boolean;
  /** Module path (or file: URL) of the state machine; see src/runtime/state-machine.ts. */
  readonly stateMachine: string;
  /** Passed to the state machine factory (must be structured-cloneable). */
  readonly stateMachineOptions?: unknown;
  /** Core tick period, ms. Default 20. */
  readonly tickMs?: number;
  /** Election timeout drawn in [min, max], ms. Defaults 300 and 600. */
  readonly electionTimeoutMsMin?: number;
  readonly electionTimeoutMsMax?: number;
  /** Primary heartbeat period, ms. Default 40. */
  readonly heartbeatMs?: number;
  /** Decrees in flight at once. Default 32. */
  readonly pipelineDepth?: number;
  /** Commands per decree at most. Default 1024. */
  readonly batchCountMax?: number;
  /** Bytes of commands per decree at most. Default 64 KiB; at most min(ringBytes / 8, 1 MiB). */
  readonly batchBytesMax?: number;
  /**
   * Longest a proposal waits on the primary for others to join its decree, ms: decrees are cut at
   * most once per batchDelayMs, except that commands filling a whole batch (batchCountMax or
   * batchBytesMax) go at once. Fewer, larger decrees cost less CPU per command at moderate load
   * (each decree costs its round of messages, fsyncs and thread wake-ups on every replica); every
   * command may wait up to this long, so a caller with k commands outstanding gets at most about
   * k per batchDelayMs. A replica that is not primary refuses at once, as without it.
   * 0 (default): a decree for each drain of the proposal ring, at once.
   * Measured in profiles/OPTIMIZATIONS.md (41).
   */
  readonly batchDelayMs?: number;
  /** replicate() calls outstanding on this replica before PAXLINE_BUSY. Default 65536. */
  readonly inflightMax?: number;
  /**
   * Pauses at least this long are kept in the stall journal (`replica.stalls()`): log groups'
   * write + fdatasync, segment rollovers, GC pauses of the main, consensus and apply threads,
   * checkpoint writes. ms, fractions allowed; 0 = off (no GC observer is installed). Default 5.
   */
  readonly stallThresholdMs?: number;
  /**
   * Committed decrees the core keeps in memory below the commit point; older ones are served to
   * lagging peers from the log on disk. Default 128 (each may hold up to batchCountMax commands).
   */
  readonly retainDecrees?: number;
  /**
   * Take a checkpoint once this many bytes of decrees (log records) have executed since the last
   * one, drawn anew each time within ±20 % so replicas do not checkpoint together (RSL: every
   * 100 MB of log). 0 = never by bytes. Default 100 MiB.
   */
  readonly checkpointEveryBytes?: number;
  /** Also take a checkpoint every this many executed decrees (0 = never by count). Default 0. */
  readonly checkpointEveryDecrees?: number;
  /** Checkpoints kept. Default 2. */
  readonly checkpointsKept?: number;
  /** Capacity of each inter-stage ring, bytes (a power of two). Default 16 MiB. */
  readonly ringBytes?: number;
  /** Log segment size, bytes. Default 64 MiB; a multiple of 4096, at least 4 × batchBytesMax + 64 KiB. */
  readonly segmentBytes?: number;
  /**
   * Nice increment (0–19; the result capped at 19) of the apply thread while this replica is a
   * secondary with a known primary: its decrees are off the commit path there, so on a host with
   * more runnable threads than cores the commit path's threads come first. Put back when the
   * replica becomes primary — which needs CAP_SYS_NICE or RLIMIT_NICE (src/runtime/thread-nice.ts) —
   * and while the apply stage is behind (its input ring half full, until an eighth).
   * Linux only. Default 'auto': 19 when the process may put the priority back, else 0 (off).
   */
  readonly secondaryApplyNice?: number | 'auto';
}

export interface ResolvedReplicaOptions {
  readonly clusterId: string;
  readonly replicaId: number;
  readonly members: readonly MemberAddress[];
  readonly dataDir: string;
  readonly init: boolean;
  readonly stateMachine: string;
  readonly stateMachineOptions: unknown;
  readonly tickMs: number;
  readonly electionTimeoutTicksMin: number;
  readonly electionTimeoutTicksMax: number;
  readonly heartbeatTicks: number;
  readonly checkQuorumTicks: number;
  readonly newLeaderGracePeriodTicks: number;
  readonly pipelineDepth: number;
  readonly batchCountMax: number;
  readonly batchBytesMax: number;
  readonly batchDelayMs: number;
  readonly inflightMax: number;
  readonly stallThresholdMs: number;
  readonly retainDecrees: number;
  readonly checkpointEveryBytes: number;
  readonly checkpointEveryDecrees: number;
  readonly checkpointsKept: number;
  readonly ringBytes: number;
  readonly segmentBytes: number;
  readonly secondaryApplyNice: number | 'auto';
  /** Decrees per promise chunk / catch-up reply: keeps those messages under 32 MiB. */
  readonly messageEntriesMax: number;
}

function int(field: string, v: unknown, lo: number, hi = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
    throw badOption(field, `must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
  return v;
}

function stallThreshold(v: unknown): number {
  if (v === undefined) return 5;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 60_000) {
    throw badOption('stallThresholdMs', `must be a number of ms in [0, 60000], got ${String(v)}`);
  }
  return v;
}

function str(field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw badOption(field, `must be a non-empty string, got ${String(v)}`);
  return v;
}

/** Validates secondaryApplyNice: 'auto' (default) or 0–19; a non-zero number only on Linux. */
export function secondaryApplyNiceOption(v: unknown, platform: string): number | 'auto' {
  if (v === undefined || v === 'auto') return 'auto';
  const n = int('secondaryApplyNice', v, 0, 19);
  if (n > 0 && platform !== 'linux') {
    throw badOption('secondaryApplyNice', "must be 0 or 'auto' off Linux (only there is a nice value a thread's own)");
  }
  return n;
}

export function resolveReplicaOptions(o: ReplicaOptions): ResolvedReplicaOptions {
  if (typeof o !== 'object' || o === null) throw badOption('options', 'must be an object');
  const clusterId = str('clusterId', o.clusterId);
  if (Buffer.byteLength(clusterId) > 255) throw badOption('clusterId', 'must be at most 255 bytes of UTF-8');
  const replicaId = int('replicaId', o.replicaId, 0, 1023);
  if (!Array.isArray(o.members) || o.members.length === 0) throw badOption('members', 'must be a non-empty array');
  const ids = new Set<number>();
  const members = o.members.map((m, i) => {
    if (typeof m !== 'object' || m === null) throw badOption(`members[${i}]`, 'must be { id, host, port }');
    const id = int(`members[${i}].id`, m.id, 0, 1023);
    if (ids.has(id)) throw badOption(`members[${i}].id`, `duplicate id ${id}`);
    ids.add(id);
    return Object.freeze({ id, host: str(`members[${i}].host`, m.host), port: int(`members[${i}].port`, m.port, 0, 65535) });
  });
  if (!ids.has(replicaId)) throw badOption('members', `must include replicaId ${replicaId}`);
  const dataDir = str('dataDir', o.dataDir);
  const init = o.init ?? false;
  if (typeof init !== 'boolean') throw badOption('init', 'must be a boolean');
  const stateMachine = str('stateMachine', o.stateMachine);
  const tickMs = int('tickMs', o.tickMs ?? 20, 1, 10_000);
  const ticks = (ms: number): number => Math.max(1, Math.ceil(ms / tickMs));
  const eMin = int('electionTimeoutMsMin', o.electionTimeoutMsMin ?? 300, 1);
  const eMax = int('electionTimeoutMsMax', o.electionTimeoutMsMax ?? 600, eMin);
  const heartbeatMs = int('heartbeatMs', o.heartbeatMs ?? 40, 1);
  const electionTimeoutTicksMin = ticks(eMin);
  if (electionTimeoutTicksMin < 4) {
    throw badOption('electionTimeoutMsMin', `must be at least 4 ticks (${4 * tickMs} ms at tickMs ${tickMs})`);
  }
  const heartbeatTicks = ticks(heartbeatMs);
  // The core's ordering: checkQuorum < grace ≤ electionMin; heartbeats well inside checkQuorum.
  const newLeaderGracePeriodTicks = Math.max(2, Math.floor(electionTimeoutTicksMin * 0.8));
  const checkQuorumTicks = Math.max(1, Math.floor(electionTimeoutTicksMin * 0.6));
  if (heartbeatTicks * 2 > checkQuorumTicks) {
    throw badOption('heartbeatMs', `must be at most 30% of electionTimeoutMsMin (${eMin} ms)`);
  }
  const ringBytes = int('ringBytes', o.ringBytes ?? 16 * 1024 * 1024, 1 << 16, 1 << 30);
  if ((ringBytes & (ringBytes - 1)) !== 0) throw badOption('ringBytes', 'must be a power of two');
  // A decree's batch must fit every ring (with room to spare) and, times the entries a catch-up
  // or promise message carries, a network frame (64 MiB).
  const batchBytesMax = int('batchBytesMax', o.batchBytesMax ?? 64 * 1024, 64, Math.min(ringBytes / 8, 1024 * 1024));
  const segmentBytes = int('segmentBytes', o.segmentBytes ?? 64 * 1024 * 1024, 4096, 1024 * 1024 * 1024);
  if (segmentBytes % 4096 !== 0) throw badOption('segmentBytes', 'must be a multiple of 4096');
  if (segmentBytes < 4 * batchBytesMax + 65536) {
    throw badOption('segmentBytes', `must be at least 4 × batchBytesMax + 64 KiB (${4 * batchBytesMax + 65536}) so a decree always fits a segment`);
  }
  return Object.freeze({
    clusterId, replicaId, members: Object.freeze(members), dataDir, init, stateMachine,
    stateMachineOptions: o.stateMachineOptions ?? null,
    tickMs,
    electionTimeoutTicksMin,
    electionTimeoutTicksMax: Math.max(electionTimeoutTicksMin, ticks(eMax)),
    heartbeatTicks, checkQuorumTicks, newLeaderGracePeriodTicks,
    pipelineDepth: int('pipelineDepth', o.pipelineDepth ?? 32, 1, 4096),
    batchCountMax: int('batchCountMax', o.batchCountMax ?? 1024, 1, 1 << 20),
    batchBytesMax,
    batchDelayMs: int('batchDelayMs', o.batchDelayMs ?? 0, 0, 1000),
    inflightMax: int('inflightMax', o.inflightMax ?? 65536, 1, 1 << 24),
    stallThresholdMs: stallThreshold(o.stallThresholdMs),
    retainDecrees: int('retainDecrees', o.retainDecrees ?? 128, 1),
    checkpointEveryBytes: int('checkpointEveryBytes', o.checkpointEveryBytes ?? 100 * 1024 * 1024, 0),
    checkpointEveryDecrees: int('checkpointEveryDecrees', o.checkpointEveryDecrees ?? 0, 0),
    checkpointsKept: int('checkpointsKept', o.checkpointsKept ?? 2, 1, 100),
    ringBytes,
    segmentBytes,
    secondaryApplyNice: secondaryApplyNiceOption(o.secondaryApplyNice, process.platform),
    messageEntriesMax: Math.max(1, Math.min(64, Math.floor((32 * 1024 * 1024) / batchBytesMax))),
  });
}
