/**
 * The micro benchmarks of paxline (DESIGN §5, tinybench): ring push/drain (one thread, single and
 * batched; two threads), message / record / KV codec encode and decode, CRC32C, log append on the
 * in-memory file layer, and the core's per-decree commit computation. Each task's file says what
 * it measures and what it does not.
 *
 * `runMicroBenchmarks({ quick })` runs them one task at a time, each in its own tinybench Bench
 * (runSync: every task function is synchronous), and returns one result per task, per operation.
 * With `quick` every task runs for a few milliseconds: that is the smoke test of `npm test`
 * (test/bench-micro-smoke.test.ts), which checks that each runs and reports sane numbers, never
 * how fast — the figures of a quick run are noise.
 */
import { Bench } from 'tinybench';
import { appendTask } from './micro-append.js';
import { codecTasks, crcTasks } from './micro-codec.js';
import { coreTask } from './micro-core.js';
import { ringTasks } from './micro-ring.js';
import type { MicroResult, MicroSize, MicroTask } from './micro-types.js';

export type { MicroGroup, MicroResult } from './micro-types.js';
export { crc32cImplementation } from '../../src/util/crc32c.js';

export interface MicroOptions {
  /** A few milliseconds per task (the smoke test), instead of about a second. */
  readonly quick: boolean;
  /** Run only tasks whose name or group contains this (case-insensitive). */
  readonly filter?: string;
  /** Called as each task finishes (progress). */
  readonly onResult?: (result: MicroResult) => void;
}

const QUICK = { time: 2, iterations: 4, warmupTime: 1, warmupIterations: 2 } as const;
const FULL = { time: 1000, iterations: 16, warmupTime: 200, warmupIterations: 16 } as const;

/** Every task, in report order (building them allocates their inputs; setups are deferred). */
export function microTasks(size: MicroSize): MicroTask[] {
  return [...ringTasks(size), ...codecTasks(), ...crcTasks(), appendTask(), coreTask()];
}

/** Names of the tasks `filter` selects (all of them without one), in report order. */
export function microTaskNames(filter?: string): string[] {
  return microTasks({ quick: true }).filter((t) => matches(t, filter)).map((t) => t.name);
}

function matches(task: MicroTask, filter: string | undefined): boolean {
  if (filter === undefined || filter === '') return true;
  const f = filter.toLowerCase();
  return task.name.toLowerCase().includes(f) || task.group === f;
}

function measure(task: MicroTask, quick: boolean): MicroResult {
  const bench = new Bench({ ...(quick ? QUICK : FULL), throws: true });
  bench.add(task.name, task.fn, task.afterEach ? { afterEach: task.afterEach } : {});
  const [done] = bench.runSync();
  const r = done?.result;
  if (r === undefined) throw new Error(`micro benchmark '${task.name}' produced no result`);
  if (r.error !== undefined) throw r.error;
  const meanNs = (r.latency.mean * 1e6) / task.opsPerIteration;
  const p99Ns = ((r.latency.p99 ?? r.latency.max) * 1e6) / task.opsPerIteration;
  const opsPerSec = 1e9 / meanNs;
  return {
    name: task.name, group: task.group, opsPerSec, meanNs, p99Ns, samples: r.latency.samples.length,
    unit: task.unit,
    mbPerSec: task.bytesPerOp === null ? null : (opsPerSec * task.bytesPerOp) / 1e6,
  };
}

export async function runMicroBenchmarks(options: MicroOptions): Promise<MicroResult[]> {
  const tasks = microTasks({ quick: options.quick }).filter((t) => matches(t, options.filter));
  const results: MicroResult[] = [];
  for (const task of tasks) {
    await task.setup?.();
    let result: MicroResult;
    try {
      result = measure(task, options.quick);
    } catch (err) {
      // The task's own failure is the one to report; a teardown failing after it is secondary.
      try {
        await task.teardown?.();
      } catch {
        // ignored: see above
      }
      throw err;
    }
    await task.teardown?.();
    results.push(result);
    options.onResult?.(result);
  }
  return results;
}
