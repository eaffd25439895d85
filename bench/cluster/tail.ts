/**
 * What the latency tail is made of: the window's slow operations (load-driver.ts, ≥ SLOW_MS, by
 * send millisecond) matched against the replicas' stall journals (src/runtime/stall-journal.ts).
 *
 * Slow operations sent less than GAP_MS apart form one CLUSTER: one hiccup and the queue behind
 * it. A stall is NEAR a cluster when it was under way at some point from LEAD_MS before the
 * cluster's first slow operation was sent to LAG_MS after (a stall delays operations already in
 * flight, so the first slow one was often sent a little before it began). Each cluster is given
 * every cause near it:
 *   fsyncQuorum     log groups (fsync or rollover) stalled at the same moment on enough replicas
 *                   that no quorum had its copy durable (2 of 3): on one disk shared by all
 *                   replicas this is the disk itself stalling
 *   fsyncPrimary    … stalled on the primary only, or on no quorum at once; fsyncSecondary: on
 *                   one or more secondaries only, not on a quorum at once
 *   rollover        one of those log groups moved to a new segment file
 *   checkpoint      a checkpoint file was being written (any replica)
 *   gcPrimaryMain / gcPrimaryConsensus / gcPrimaryApply: a GC pause of that thread of the primary
 *   gcSecondary     a GC pause of any thread of a secondary
 *   none            no stall of at least the replicas' stallThresholdMs was near
 * opsByCause counts each cluster's slow operations under each of its causes (so the shares may
 * add up to more than the whole). Only the cluster's start is matched: at high load clusters
 * chain into runs of hundreds of ms, and stalls inside one are not looked at — what its length
 * owes to the stall near its start, to later ones or to the queue is not separated. Stalls
 * shorter than the threshold are not in the journals. Each thread keeps its last 2,047: a journal
 * that was full with its oldest entry inside the window has lost the window's earliest stalls
 * (journalsFull names them; their clusters may show as none).
 */
import { STALL_CAPACITY, type StallEvent } from '../../src/runtime/stall-journal.js';

export const CAUSES = [
  'fsyncQuorum', 'fsyncPrimary', 'fsyncSecondary', 'rollover', 'checkpoint',
  'gcPrimaryMain', 'gcPrimaryConsensus', 'gcPrimaryApply', 'gcSecondary', 'none',
] as const;
export type Cause = typeof CAUSES[number];

export const GAP_MS = 5;
export const LEAD_MS = 20;
export const LAG_MS = 10;
const WORST = 5;
/** Stalls listed per cluster, at most (the earliest near it). */
const STALLS_LISTED = 8;

export interface ReplicaStalls {
  /** Replica id (1-based). */
  readonly replica: number;
  readonly primary: boolean;
  readonly stalls: readonly StallEvent[];
}

export interface TailCluster {
  /** When its first slow operation was sent, s after the window start. */
  readonly atS: number;
  /** From its first slow operation's send time to its last's. */
  readonly spanMs: number;
  readonly ops: number;
  readonly maxMs: number;
  readonly causes: Cause[];
  /** The stalls near it: "r2 log rollover 35.1 ms at -3 ms" (start relative to the cluster's). */
  readonly stalls: string[];
}

export interface TailReport {
  readonly slowMs: number;
  /** Counted operations at least slowMs slow, and their share of all counted ones. */
  readonly slowOps: number;
  readonly slowShare: number;
  readonly clusters: number;
  readonly opsByCause: Record<Cause, number>;
  readonly clustersByCause: Record<Cause, number>;
  /** The largest clusters, by slow operations. */
  readonly worst: TailCluster[];
  /** Stalls in each replica's journal during the window, by "thread kind" ("log fsync", "main gc"; "checkpoint"). */
  readonly stallsPerReplica: Record<string, number>[];
  /** Journals ("r2 log") that were full with their oldest entry after the window's start. */
  readonly journalsFull: string[];
}

/** Whether some moment is inside log stalls of at least `k` different replicas. */
function stalledTogether(intervals: readonly { replica: number; from: number; to: number }[], k: number): boolean {
  for (const a of intervals) {
    const at = new Set<number>();
    for (const b of intervals) if (b.from <= a.from && a.from <= b.to) at.add(b.replica);
    if (at.size >= k) return true;
  }
  return false;
}

const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * `slow`: [send ms since the epoch, count, slowest ms] in time order (several load processes'
 * lists may be concatenated: they are sorted here); `windowStartMs`/`windowEndMs`: the window, ms
 * since the epoch; `countedOps`: every counted operation of the window.
 */
export function attributeTail(
  slow: readonly (readonly [number, number, number])[], replicas: readonly ReplicaStalls[],
  windowStartMs: number, windowEndMs: number, countedOps: number, slowMs: number,
): TailReport {
  const buckets = [...slow].sort((a, b) => a[0] - b[0]);
  type Raw = { start: number; end: number; ops: number; maxMs: number };
  const raw: Raw[] = [];
  for (const [at, n, max] of buckets) {
    const last = raw[raw.length - 1];
    if (last !== undefined && at - last.end < GAP_MS) {
      last.end = at;
      last.ops += n;
      last.maxMs = Math.max(last.maxMs, max);
    } else {
      raw.push({ start: at, end: at, ops: n, maxMs: max });
    }
  }
  const inWindow = replicas.map((r) => ({
    ...r,
    stalls: r.stalls.filter((e) => e.atMs + e.ms >= windowStartMs - LEAD_MS && e.atMs <= windowEndMs),
  }));
  const blockingReplicas = replicas.length - Math.floor(replicas.length / 2); // without them, no quorum
  const primaryId = replicas.find((r) => r.primary)?.replica ?? -1;
  const zero = (): Record<Cause, number> => Object.fromEntries(CAUSES.map((c) => [c, 0])) as Record<Cause, number>;
  const opsByCause = zero();
  const clustersByCause = zero();
  const clusters: TailCluster[] = raw.map((c) => {
    const from = c.start - LEAD_MS;
    const to = c.start + LAG_MS;
    const causes = new Set<Cause>();
    const described: [number, string][] = [];
    const logStalls: { replica: number; from: number; to: number }[] = [];
    let logStalledPrimary = false;
    for (const r of inWindow) {
      for (const e of r.stalls) {
        if (e.atMs > to || e.atMs + e.ms < from) continue;
        described.push([e.atMs, `r${r.replica} ${e.thread} ${e.kind === 'gc' ? `gc ${e.gc ?? ''}`.trim() : e.kind} ${round(e.ms, 1)} ms at ${round(e.atMs - c.start, 1)} ms`]);
        if (e.kind === 'fsync' || e.kind === 'rollover') {
          logStalls.push({ replica: r.replica, from: e.atMs, to: e.atMs + e.ms });
          if (r.primary) logStalledPrimary = true;
          if (e.kind === 'rollover') causes.add('rollover');
        } else if (e.kind === 'checkpoint') {
          causes.add('checkpoint');
        } else if (!r.primary) {
          causes.add('gcSecondary');
        } else if (e.thread === 'main') {
          causes.add('gcPrimaryMain');
        } else if (e.thread === 'consensus') {
          causes.add('gcPrimaryConsensus');
        } else if (e.thread === 'apply') {
          causes.add('gcPrimaryApply');
        }
      }
    }
    if (stalledTogether(logStalls, blockingReplicas)) causes.add('fsyncQuorum');
    else if (logStalls.length > 0) {
      if (logStalledPrimary) causes.add('fsyncPrimary');
      if (logStalls.some((s) => s.replica !== primaryId)) causes.add('fsyncSecondary');
    }
    if (causes.size === 0) causes.add('none');
    const list = CAUSES.filter((x) => causes.has(x));
    for (const x of list) {
      opsByCause[x] += c.ops;
      clustersByCause[x]++;
    }
    return {
      atS: round((c.start - windowStartMs) / 1000, 3), spanMs: round(c.end - c.start + 1, 1), ops: c.ops,
      maxMs: round(c.maxMs, 1), causes: list,
      stalls: described.sort((a, b) => a[0] - b[0]).slice(0, STALLS_LISTED).map((x) => x[1]),
    };
  });
  const slowOps = clusters.reduce((s, c) => s + c.ops, 0);
  const stallsPerReplica = inWindow.map((r) => {
    const counts: Record<string, number> = {};
    for (const e of r.stalls) {
      if (e.atMs < windowStartMs) continue;
      const key = e.thread === e.kind ? e.kind : `${e.thread} ${e.kind}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  });
  const journalsFull: string[] = [];
  for (const r of replicas) {
    const byThread = new Map<string, StallEvent[]>();
    for (const e of r.stalls) {
      const list = byThread.get(e.thread);
      if (list === undefined) byThread.set(e.thread, [e]);
      else list.push(e);
    }
    for (const [thread, list] of byThread) {
      if (list.length >= STALL_CAPACITY - 2 && Math.min(...list.map((e) => e.atMs)) > windowStartMs) journalsFull.push(`r${r.replica} ${thread}`);
    }
  }
  return {
    slowMs,
    slowOps,
    slowShare: countedOps > 0 ? round(slowOps / countedOps, 5) : 0,
    clusters: clusters.length,
    opsByCause,
    clustersByCause,
    worst: [...clusters].sort((a, b) => b.ops - a.ops).slice(0, WORST),
    stallsPerReplica,
    journalsFull,
  };
}
