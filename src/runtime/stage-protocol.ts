/**
 * What the stages of one replica share (DESIGN §1): the SharedArrayBuffer rings between them,
 * a block of counters, and the byte layouts of ring messages. Created by the main thread and
 * handed to every worker in its workerData.
 *
 *   main ──proposals──► network+consensus ──persist──► log-fsync ──durable──► network+consensus
 *                        │ ──execute──► apply ──completions──► main
 *   network+consensus ──logReads──► log-fsync ──logReadReplies──► network+consensus
 *   (fetches of decrees compacted from the core's memory are answered from the log)
 *
 * Ring messages (little-endian):
 *   proposal    u32 origin replica | u32 incarnation | f64 request seq | command bytes
 *               (the request id travels inside the decree, so a completion is matched by it,
 *               never by decree number: a decree refilled by a new primary resolves nobody)
 *   persist     f64 record seq | codec/records.ts encoding of the core's LogRecord
 *   durable     f64 durable seq (every record ≤ it is on disk)
 *   execute     codec/records.ts encoding of an accept record (decree, ballot, value)
 *   logRead     f64 peer | f64 fromDecree | f64 toDecree | f64 committed
 *   logReadReply f64 peer | f64 committed | u32 count | count × (u32 length | records.ts learned record)
 *   completion  u8 kind | f64 id | result bytes (kind: COMPLETION_*)
 *
 * Counters: Float64 slots, each written by one stage only (single writer; readers may see a
 * value one update old, never a torn one on the 64-bit platforms Node supports).
 */
import { getHeapStatistics } from 'node:v8';
import { createDoorbell } from '../ring/doorbell.js';
import { createRingBuffer } from '../ring/spsc-ring.js';
import { createStallJournal } from './stall-journal.js';

export const REQUEST_HEADER_BYTES = 16;

export const COMPLETION_RESULT = 1;
export const COMPLETION_READ = 2;
export const COMPLETION_READ_ERROR = 3;
/** A replicate() that executed but whose result cannot be delivered (too large for the ring). */
export const COMPLETION_ERROR = 4;

/** C_ROLE's codes. */
export const ROLE_SECONDARY = 0;
export const ROLE_PREPARING = 1;
export const ROLE_PRIMARY = 2;

/** Counter slots. */
export const C_COMMITTED = 0; // consensus
export const C_ROLE = 1; // consensus: ROLE_SECONDARY, ROLE_PREPARING or ROLE_PRIMARY
export const C_PRIMARY = 2; // consensus: known primary id or -1
export const C_BALLOT = 3; // consensus
export const C_DURABLE_SEQ = 4; // log
export const C_APPENDED_SEQ = 5; // log
export const C_FSYNCS = 6; // log
export const C_LOG_BYTES = 7; // log
export const C_EXECUTED = 8; // apply
export const C_COMMANDS_EXECUTED = 9; // apply
export const C_CHECKPOINTS = 10; // apply
export const C_CHECKPOINT_DECREE = 11; // apply
export const C_DECREES_PROPOSED = 12; // consensus
export const C_ELECTIONS = 13; // consensus
export const C_LOG_FAILURES = 14; // log
export const C_MESSAGES_SENT = 15; // consensus
export const C_MESSAGES_RECEIVED = 16; // consensus
export const C_LOG_READS = 17; // log: catch-up reads answered from the log
export const C_RETENTION_FLOOR = 18; // consensus: every member durably committed up to here
export const C_OLDEST_CHECKPOINT = 19; // apply: decree of the oldest checkpoint kept (0 = none)
export const C_SEGMENTS_RETIRED = 20; // log
export const C_SEGMENTS_CREATED = 21; // log: rollovers (new or recycled segment files)
/** V8 heap in use by each stage's thread, bytes, refreshed about every HEAP_SAMPLE_MS. */
export const C_HEAP_CONSENSUS = 22;
export const C_HEAP_LOG = 23;
export const C_HEAP_APPLY = 24;
// 25–27: the same heaps' physical size (HEAP_PHYSICAL_OFFSET)
export const C_APPLY_NICE = 28; // apply: the apply thread's nice value (secondaryApplyNice, thread-nice.ts)
export const HEAP_SAMPLE_MS = 1000;
/**
 * The same threads' V8 heaps in physical memory (pages written at least once: what they add to
 * RSS), at C_HEAP_* + HEAP_PHYSICAL_OFFSET. A young generation fixed large by the process's
 * flags (--min-semi-space-size) reaches RSS only as the thread first writes its pages, which a
 * thread that allocates little (the log stage) takes a while to do.
 */
export const HEAP_PHYSICAL_OFFSET = 3;

/** Writes this thread's V8 heap in use into counter `slot` (one of C_HEAP_*), and its physical size beside it. */
export function sampleHeap(counters: Float64Array, slot: number): void {
  const h = getHeapStatistics();
  counters[slot] = h.used_heap_size;
  counters[slot + HEAP_PHYSICAL_OFFSET] = h.total_physical_size;
}

/** Samples now and every HEAP_SAMPLE_MS, for a stage with an event loop; returns the timer. */
export function startHeapSampling(counters: Float64Array, slot: number): NodeJS.Timeout {
  sampleHeap(counters, slot);
  return setInterval(() => sampleHeap(counters, slot), HEAP_SAMPLE_MS);
}
/** fsync latency histogram: slot FSYNC_HIST + k counts fdatasyncs of [2^k, 2^(k+1)) µs. */
export const C_FSYNC_HIST = 32;
export const FSYNC_HIST_BUCKETS = 24;
export const COUNTER_SLOTS = C_FSYNC_HIST + FSYNC_HIST_BUCKETS;

/** Int32 flag slots. */
export const F_STOP = 0; // main: every stage winds down
export const F_CANDIDACY_BLOCKED = 1; // apply: 1 while the state machine's canBecomePrimary() is false
/** apply: F_PEER_BLOCKED + i is 1 while acceptMessageFrom(members[i].id) is false. */
export const F_PEER_BLOCKED = 4;
export const FLAG_SLOTS = F_PEER_BLOCKED + 1024;

export interface StageShared {
  readonly proposals: SharedArrayBuffer;
  readonly persist: SharedArrayBuffer;
  readonly durable: SharedArrayBuffer;
  readonly execute: SharedArrayBuffer;
  readonly logReads: SharedArrayBuffer;
  readonly logReadReplies: SharedArrayBuffer;
  /** The log stage's doorbell: rung with persist records and log reads. */
  readonly logDoorbell: SharedArrayBuffer;
  readonly completions: SharedArrayBuffer;
  readonly counters: SharedArrayBuffer;
  readonly flags: SharedArrayBuffer;
  /** stall-journal.ts: one region per thread. */
  readonly stalls: SharedArrayBuffer;
}

export function createStageShared(ringBytes: number): StageShared {
  const counters = new SharedArrayBuffer(COUNTER_SLOTS * 8);
  new Float64Array(counters)[C_PRIMARY] = -1;
  return {
    proposals: createRingBuffer(ringBytes),
    persist: createRingBuffer(ringBytes * 2),
    durable: createRingBuffer(1 << 16),
    execute: createRingBuffer(ringBytes * 2),
    logReads: createRingBuffer(1 << 16),
    logReadReplies: createRingBuffer(ringBytes),
    logDoorbell: createDoorbell(),
    completions: createRingBuffer(ringBytes),
    counters,
    flags: new SharedArrayBuffer(FLAG_SLOTS * 4),
    stalls: createStallJournal(),
  };
}

export function fsyncHistogramSlot(micros: number): number {
  const k = micros < 1 ? 0 : Math.floor(Math.log2(micros));
  return C_FSYNC_HIST + Math.min(FSYNC_HIST_BUCKETS - 1, k);
}

/** Quantile (0..1) of the shared fsync histogram, ms (upper bound of the bucket it falls in). */
export function fsyncQuantileMs(counters: Float64Array, q: number): number {
  let total = 0;
  for (let k = 0; k < FSYNC_HIST_BUCKETS; k++) total += counters[C_FSYNC_HIST + k]!;
  if (total === 0) return 0;
  let seen = 0;
  for (let k = 0; k < FSYNC_HIST_BUCKETS; k++) {
    seen += counters[C_FSYNC_HIST + k]!;
    if (seen >= q * total) return 2 ** (k + 1) / 1000;
  }
  return 2 ** FSYNC_HIST_BUCKETS / 1000;
}
