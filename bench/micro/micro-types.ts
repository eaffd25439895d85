/**
 * Shapes shared by the micro benchmarks (micro.ts runs them; micro-*.ts define them).
 *
 * A task is one tinybench task whose function is one *iteration*; an iteration performs
 * `opsPerIteration` operations of the task's `unit` (tiny operations repeat inside one iteration
 * so the ~50–100 ns of the timer around each call does not swamp them). Results are per
 * operation: the iteration figures divided by `opsPerIteration`.
 */

export type MicroGroup = 'ring' | 'codec' | 'crc32c' | 'log' | 'core';

export interface MicroResult {
  readonly name: string;
  readonly group: MicroGroup;
  /** Operations per second: 1e9 / meanNs. */
  readonly opsPerSec: number;
  /** Mean time of one operation, ns. */
  readonly meanNs: number;
  /** 99th percentile over iterations of (iteration time / opsPerIteration), ns. */
  readonly p99Ns: number;
  /** Iterations measured (tinybench samples). */
  readonly samples: number;
  /** What one operation is. */
  readonly unit: string;
  /** Payload megabytes (1e6 B) per second, for tasks whose operations carry bytes; else null. */
  readonly mbPerSec: number | null;
}

export interface MicroTask {
  readonly name: string;
  readonly group: MicroGroup;
  readonly unit: string;
  readonly opsPerIteration: number;
  /** Payload bytes one operation carries (for MB/s), or null. */
  readonly bytesPerOp: number | null;
  /** Untimed, once, before tinybench sees the task (tinybench calls `fn` once when added). */
  readonly setup?: () => Promise<void> | void;
  /** One iteration. Synchronous: the runner uses tinybench's runSync. */
  readonly fn: () => void;
  /** Untimed, after every iteration (e.g. to keep memory bounded). */
  readonly afterEach?: () => void;
  /** Untimed, once, after the task ran (or failed). */
  readonly teardown?: () => Promise<void> | void;
}

export interface MicroSize {
  /** Smoke-test sizes: every task finishes in a few milliseconds. */
  readonly quick: boolean;
}

/** Keeps results alive so the JIT cannot drop the work that produced them. */
export const sink = { value: 0 };
