/**
 * The stall journal: the recent pauses on a replica's threads that can hold commits up, with
 * when they began — the figures that say why a latency tail is what it is (`replica.stalls()`;
 * the benchmark matches them against its slow operations, bench/cluster/tail.ts).
 *
 *   fsync      a log group's sync step on the log thread: its writes and fdatasync, the
 *              preallocation after it, a promise mirrored to the metadata file, a repair mark —
 *              and any wait for a CPU in between
 *   rollover   the same, for a group that moved to a new segment file (its header written and
 *              fdatasynced, the file renamed, the directory fsynced on top; also the rewrite into
 *              a fresh segment after a failed sync). The log thread's housekeeping between groups
 *              (retiring and removing segment files) and failed syncs are not recorded.
 *   gc         a V8 pause of an event-loop thread (main, consensus, apply), PerformanceObserver
 *              'gc' entries; the log thread never returns to its event loop, so its pauses are
 *              not seen (they are short: it allocates little)
 *   checkpoint a checkpoint file written (writer thread: blocks, fdatasync, read-back, rename)
 *
 * Only pauses of at least `stallThresholdMs` are kept (0: the journal is off and no GC observer
 * is installed).
 *
 * Layout: one region per writing thread, so each region has a single writer (as the counters):
 * CAPACITY entries of Float64 (atMs, ms, code), entry n at n % CAPACITY, and the region's count
 * of entries ever written in an Int32 slot at the start of the buffer. The writer fills the entry
 * with plain writes, then publishes it with Atomics.store of the count; a reader Atomics.loads
 * the count (so the entries below it are visible), copies the region, and loads the count again:
 * entries the writer may have reused meanwhile are dropped, so what is returned was never torn.
 * At most CAPACITY − 1 entries per thread come back (the slot being reused is never read).
 * `atMs`: performance.timeOrigin + performance.now() of the writing thread (ms since the epoch,
 * fractional), comparable across threads and processes of one host.
 */
import { performance, PerformanceObserver, constants } from 'node:perf_hooks';

export type StallThread = 'main' | 'consensus' | 'log' | 'apply' | 'checkpoint';
export type StallKind = 'fsync' | 'rollover' | 'gc' | 'checkpoint';
/** The V8 collection behind a 'gc' stall (perf_hooks' NODE_PERFORMANCE_GC_* kinds; 'other': any other). */
export type GcKind = 'minor' | 'major' | 'incremental' | 'weakcb' | 'other';

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
const REGION = STALL_CAPACITY * ENTRY;
/** Bytes before the first region: one Int32 count per thread, padded to 8 bytes. */
const COUNTS_BYTES = Math.ceil((STALL_THREADS.length * 4) / 8) * 8;

const CODE_FSYNC = 1;
const CODE_ROLLOVER = 2;
const CODE_CHECKPOINT = 3;
/** Codes CODE_GC + i: a gc stall of kind GC_KINDS[i]. */
const CODE_GC = 10;
const GC_KINDS: readonly GcKind[] = ['minor', 'major', 'incremental', 'weakcb', 'other'];
const GC_KIND_OF_V8 = new Map<number, GcKind>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);

export function createStallJournal(): SharedArrayBuffer {
  return new SharedArrayBuffer(COUNTS_BYTES + STALL_THREADS.length * REGION * 8);
}

/** One thread's side of the journal. */
export class StallWriter {
  private readonly slots: Float64Array;
  private readonly counts: Int32Array;
  private readonly index: number;

  constructor(journal: SharedArrayBuffer, thread: StallThread, readonly thresholdMs: number) {
    this.index = STALL_THREADS.indexOf(thread);
    this.slots = regionOf(journal, this.index);
    this.counts = new Int32Array(journal, 0, STALL_THREADS.length);
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
    if (this.wants(ms)) this.put(performance.timeOrigin + startTime, ms, CODE_GC + GC_KINDS.indexOf(GC_KIND_OF_V8.get(v8Kind) ?? 'other'));
  }

  private put(atMs: number, ms: number, code: number): void {
    const n = Atomics.load(this.counts, this.index); // this thread is the only writer
    const at = (n % STALL_CAPACITY) * ENTRY;
    this.slots[at] = atMs;
    this.slots[at + 1] = ms;
    this.slots[at + 2] = code;
    Atomics.store(this.counts, this.index, n + 1);
  }
}

function regionOf(journal: SharedArrayBuffer, i: number): Float64Array {
  return new Float64Array(journal, COUNTS_BYTES + i * REGION * 8, REGION);
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

function decode(atMs: number, ms: number, code: number, thread: StallThread): StallEvent {
  if (code === CODE_FSYNC) return { atMs, ms, kind: 'fsync', thread };
  if (code === CODE_ROLLOVER) return { atMs, ms, kind: 'rollover', thread };
  if (code === CODE_CHECKPOINT) return { atMs, ms, kind: 'checkpoint', thread };
  return { atMs, ms, kind: 'gc', thread, gc: GC_KINDS[code - CODE_GC] ?? 'other' };
}

/** The journal's entries that began at or after `sinceMs`, oldest first. */
export function readStalls(journal: SharedArrayBuffer, sinceMs = 0): StallEvent[] {
  const out: StallEvent[] = [];
  const counts = new Int32Array(journal, 0, STALL_THREADS.length);
  STALL_THREADS.forEach((thread, i) => {
    const before = Atomics.load(counts, i);
    const first = Math.max(0, before - STALL_CAPACITY);
    const copy = regionOf(journal, i).slice();
    const after = Atomics.load(counts, i);
    // Entries a writer may have reused while we copied: those below after − CAPACITY + 1.
    const safeFrom = Math.max(first, after - STALL_CAPACITY + 1);
    for (let n = safeFrom; n < before; n++) {
      const at = (n % STALL_CAPACITY) * ENTRY;
      if (copy[at]! >= sinceMs) out.push(decode(copy[at]!, copy[at + 1]!, copy[at + 2]!, thread));
    }
  });
  return out.sort((a, b) => a.atMs - b.atMs);
}
