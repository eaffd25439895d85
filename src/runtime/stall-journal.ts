/**
 * The stall journal: the recent pauses on a replica's threads that can hold commits up, with
 * when they began — the figures that say why a latency tail is what it is (`replica.stalls()`;
 * the benchmark matches them against its slow operations, bench/cluster/tail.ts).
 *
 *   fsync      a log group's write + fdatasync (log thread)
 *   rollover   the same, for a group that moved to a new segment file (header, fdatasync, rename,
 *              directory fsync on top)
 *   gc         a V8 pause of an event-loop thread (main, consensus, apply), PerformanceObserver
 *              'gc' entries; the log thread never returns to its event loop, so its pauses are
 *              not seen (they are short: it allocates little)
 *   checkpoint a checkpoint file written (writer thread: blocks, fdatasync, read-back, rename)
 *
 * Only pauses of at least `stallThresholdMs` are kept (0: the journal is off and no GC observer
 * is installed).
 *
 * Layout: one region per writing thread, so each region has a single writer (as the counters).
 * A region is Float64 slots: [count, then CAPACITY entries of (atMs, ms, code)], entry i at
 * i % CAPACITY. The writer fills the entry, then stores the count. A reader takes the count,
 * copies the last CAPACITY entries, and takes the count again: entries the writer may have
 * overwritten meanwhile are dropped, so what is returned was never torn.
 * `atMs`: performance.timeOrigin + performance.now() of the writing thread (ms since the epoch,
 * fractional), comparable across threads and processes of one host.
 */
import { performance, PerformanceObserver, constants } from 'node:perf_hooks';

export type StallThread = 'main' | 'consensus' | 'log' | 'apply' | 'checkpoint';
export type StallKind = 'fsync' | 'rollover' | 'gc' | 'checkpoint';
/** The V8 collection behind a 'gc' stall. */
export type GcKind = 'minor' | 'major' | 'incremental' | 'weakcb';

export interface StallEvent {
  /** When the pause began, ms since the epoch (fractional). */
  readonly atMs: number;
  /** How long it lasted, ms. */
  readonly ms: number;
  readonly kind: StallKind;
  readonly thread: StallThread;
  /** For kind 'gc'. */
  readonly gc?: GcKind;
}

export const STALL_THREADS: readonly StallThread[] = ['main', 'consensus', 'log', 'apply', 'checkpoint'];
/** Entries kept per thread. */
export const STALL_CAPACITY = 2048;
const ENTRY = 3;
const REGION = 1 + STALL_CAPACITY * ENTRY;

const CODE_FSYNC = 1;
const CODE_ROLLOVER = 2;
const CODE_CHECKPOINT = 3;
/** Codes 10 + k: gc of V8 kind bit k (perf_hooks constants: minor 1, major 4, incremental 8, weakcb 16). */
const CODE_GC = 10;

export function createStallJournal(): SharedArrayBuffer {
  return new SharedArrayBuffer(STALL_THREADS.length * REGION * 8);
}

/** One thread's side of the journal. */
export class StallWriter {
  private readonly slots: Float64Array;

  constructor(journal: SharedArrayBuffer, thread: StallThread, readonly thresholdMs: number) {
    const i = STALL_THREADS.indexOf(thread);
    this.slots = new Float64Array(journal, i * REGION * 8, REGION);
  }

  /** Whether a pause of `ms` is kept (thresholdMs 0: none is). */
  wants(ms: number): boolean {
    return this.thresholdMs > 0 && ms >= this.thresholdMs;
  }

  /** A log group's write + fdatasync that began at `startNow` (this thread's performance.now()). */
  logGroup(startNow: number, ms: number, rolledOver: boolean): void {
    if (this.wants(ms)) this.put(performance.timeOrigin + startNow, ms, rolledOver ? CODE_ROLLOVER : CODE_FSYNC);
  }

  checkpoint(startNow: number, ms: number): void {
    if (this.wants(ms)) this.put(performance.timeOrigin + startNow, ms, CODE_CHECKPOINT);
  }

  gc(startTime: number, ms: number, v8Kind: number): void {
    if (this.wants(ms)) this.put(performance.timeOrigin + startTime, ms, CODE_GC + Math.max(0, Math.log2(v8Kind | 0) | 0));
  }

  private put(atMs: number, ms: number, code: number): void {
    const n = this.slots[0]!;
    const at = 1 + (n % STALL_CAPACITY) * ENTRY;
    this.slots[at] = atMs;
    this.slots[at + 1] = ms;
    this.slots[at + 2] = code;
    this.slots[0] = n + 1;
  }
}

/**
 * Records this thread's GC pauses of at least the writer's threshold; returns the function that
 * stops it. Nothing is installed when the journal is off.
 */
export function observeGc(writer: StallWriter): () => void {
  if (writer.thresholdMs <= 0) return () => {};
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = ((e as { detail?: { kind?: number } }).detail)?.kind ?? 0;
      writer.gc(e.startTime, e.duration, kind);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

const GC_KINDS: Record<number, GcKind> = {
  [Math.log2(constants.NODE_PERFORMANCE_GC_MINOR)]: 'minor',
  [Math.log2(constants.NODE_PERFORMANCE_GC_MAJOR)]: 'major',
  [Math.log2(constants.NODE_PERFORMANCE_GC_INCREMENTAL)]: 'incremental',
  [Math.log2(constants.NODE_PERFORMANCE_GC_WEAKCB)]: 'weakcb',
};

function decode(atMs: number, ms: number, code: number, thread: StallThread): StallEvent {
  if (code === CODE_FSYNC) return { atMs, ms, kind: 'fsync', thread };
  if (code === CODE_ROLLOVER) return { atMs, ms, kind: 'rollover', thread };
  if (code === CODE_CHECKPOINT) return { atMs, ms, kind: 'checkpoint', thread };
  return { atMs, ms, kind: 'gc', thread, gc: GC_KINDS[code - CODE_GC] ?? 'major' };
}

/** The journal's entries that began at or after `sinceMs`, oldest first. */
export function readStalls(journal: SharedArrayBuffer, sinceMs = 0): StallEvent[] {
  const out: StallEvent[] = [];
  STALL_THREADS.forEach((thread, i) => {
    const slots = new Float64Array(journal, i * REGION * 8, REGION);
    const before = slots[0]!;
    const first = Math.max(0, before - STALL_CAPACITY);
    const copy = slots.slice(1);
    const after = slots[0]!;
    // Entries a writer may have reused while we copied: those below after − CAPACITY + 1.
    const safeFrom = Math.max(first, after - STALL_CAPACITY + 1);
    for (let n = safeFrom; n < before; n++) {
      const at = (n % STALL_CAPACITY) * ENTRY;
      if (copy[at]! >= sinceMs) out.push(decode(copy[at]!, copy[at + 1]!, copy[at + 2]!, thread));
    }
  });
  return out.sort((a, b) => a.atMs - b.atMs);
}
