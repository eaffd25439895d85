/**
 * The load loop of the cluster benchmark, run inside the process that submits operations (the
 * primary replica's process for embedded load, a load-generator process for client load).
 *
 * Closed loop (rate null): `inflight` slots, each with one operation outstanding at all times;
 * when one resolves, the slot sends the next at once. Latency = resolve time − send time.
 *
 * Open loop (rate R ops/s): operation k is INTENDED to be sent at t0 + k / R, whatever happened
 * to the earlier ones; a 1 ms pump sends every operation whose time has come, as long as a slot
 * is free (`inflight` caps what is outstanding). Latency = resolve time − intended send time, so
 * time spent waiting for a slot or for a late timer counts (no coordinated omission).
 *
 * The measurement window is bounded by markStart() and markEnd(), called when the coordinator
 * says so: `ops` counts the operations that RESOLVED with the expected result inside the window
 * (whenever they were sent), and only those are recorded in the histogram; `windowMs` is this
 * process's own clock between the two marks. markEnd() also stops sending; drain() then waits for
 * what is still outstanding, so the replicas can be compared at rest.
 *
 * Failed operations are counted (errors; PAXLINE_BUSY separately), never recorded as latency; a
 * closed-loop slot whose operation failed waits one event-loop turn (setImmediate) before sending
 * again, so a replica that rejects synchronously cannot starve this process's event loop.
 */
import { performance } from 'node:perf_hooks';
import { createLatencyHistogram, recordMs, summarize, type LatencySummary } from './latency.js';

/**
 * The operations a driver sends: `issue(slot)` sends one from `slot` and returns its promise;
 * `isExpected(result)` says whether it resolved with the expected result. The driver attaches one
 * pair of handlers per slot, made once (no closure and no extra promise per operation: on the
 * primary's main thread every allocation per operation adds to the scavenges that pause it).
 */
export interface Operations<T> {
  issue(slot: number): Promise<T>;
  isExpected(result: T): boolean;
}

export interface LoadSpec {
  /** Closed loop: operations outstanding. Open loop: the most outstanding at once. */
  readonly inflight: number;
  /** Open loop: intended operations per second; null: closed loop. */
  readonly rateOpsPerSec: number | null;
}

export interface WindowReport {
  readonly ops: number;
  readonly windowMs: number;
  readonly latency: LatencySummary;
  readonly errors: number;
  readonly busyRejected: number;
  readonly firstError: string | null;
  /** Open loop: operations whose intended send time fell inside the window. */
  readonly intendedOps: number;
  /** Open loop: the most operations that were due but had no free slot (0 for a closed loop). */
  readonly backlogMax: number;
  /**
   * The slowest counted operation completing in each second of the window, ms (index k: the
   * k-th second; null for a second in which none completed). Shows whether a tail comes from a
   * few stalls or from queueing all along.
   */
  readonly maxMsPerSecond: (number | null)[];
  /**
   * Open loop: how late operations were sent — actual send time − intended send time — for those
   * sent inside the window: the 1 ms pump's granularity (up to ~1 ms), the timer firing late while
   * this thread does other work, and, when `inflight` operations are outstanding, the wait for a
   * free slot. Null for a closed loop. The latency above includes it.
   */
  readonly sendLag: LatencySummary | null;
  /**
   * The counted operations that took at least SLOW_MS, by the millisecond they were sent in
   * (intended send time for an open loop): [ms since the epoch, how many, the slowest, ms], in
   * time order. What the coordinator matches against the replicas' stalls (tail.ts).
   */
  readonly slow: [number, number, number][];
}

const PUMP_MS = 1;
/** An operation at least this slow is kept in WindowReport.slow (the issue's open-loop p99 target). */
export const SLOW_MS = 10;

export class LoadDriver<T> {
  private running = false;
  private counting = false;
  private outstanding = 0;
  private ops = 0;
  private errors = 0;
  private busy = 0;
  private firstError: string | null = null;
  private readonly histogram = createLatencyHistogram();
  private readonly sendLag = createLatencyHistogram();
  private windowStartMs = 0;
  private readonly freeSlots: number[] = [];
  private t0Ms = 0;
  private sent = 0;
  private sentAtWindowStart = 0;
  private backlogMax = 0;
  private drainWaiters: (() => void)[] = [];
  private maxMsPerSecond: number[] = [];
  /** Slow counted operations by send millisecond (this process's clock): count, slowest. */
  private slow = new Map<number, [number, number]>();
  /** Per slot: the send time (ms) of its outstanding operation, and its two handlers. */
  private readonly startMs: Float64Array;
  private readonly onResult: ((result: T) => void)[] = [];
  private readonly onError: ((error: unknown) => void)[] = [];

  constructor(private readonly spec: LoadSpec, private readonly operations: Operations<T>) {
    if (!Number.isSafeInteger(spec.inflight) || spec.inflight < 1) throw new Error(`inflight must be an integer ≥ 1, got ${spec.inflight}`);
    if (spec.rateOpsPerSec !== null && !(spec.rateOpsPerSec > 0)) throw new Error(`rate must be > 0, got ${spec.rateOpsPerSec}`);
    this.startMs = new Float64Array(spec.inflight);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const now = performance.now();
    if (this.spec.rateOpsPerSec === null) {
      for (let slot = 0; slot < this.spec.inflight; slot++) this.fire(slot, now);
    } else {
      for (let slot = this.spec.inflight - 1; slot >= 0; slot--) this.freeSlots.push(slot);
      this.t0Ms = now;
      this.pump();
    }
  }

  markStart(): void {
    this.histogram.reset();
    this.sendLag.reset();
    this.ops = 0;
    this.errors = 0;
    this.busy = 0;
    this.backlogMax = 0;
    this.maxMsPerSecond = [];
    this.slow = new Map();
    this.sentAtWindowStart = this.dueBy(performance.now());
    this.windowStartMs = performance.now();
    this.counting = true;
  }

  /** Ends the window and stops sending; what is outstanding completes uncounted. */
  markEnd(): WindowReport {
    const end = performance.now();
    this.counting = false;
    this.running = false;
    return {
      ops: this.ops,
      windowMs: end - this.windowStartMs,
      latency: summarize(this.histogram),
      errors: this.errors,
      busyRejected: this.busy,
      firstError: this.firstError,
      intendedOps: this.spec.rateOpsPerSec === null ? 0 : this.dueBy(end) - this.sentAtWindowStart,
      backlogMax: this.backlogMax,
      maxMsPerSecond: Array.from(this.maxMsPerSecond, (x) => (x === undefined ? null : Math.round(x * 1000) / 1000)),
      sendLag: this.spec.rateOpsPerSec === null ? null : summarize(this.sendLag),
      slow: [...this.slow].sort((a, b) => a[0] - b[0])
        .map(([k, [n, max]]) => [performance.timeOrigin + k, n, Math.round(max * 1000) / 1000]),
    };
  }

  /** Resolves once nothing is outstanding (after markEnd), or rejects after timeoutMs. */
  drain(timeoutMs: number): Promise<void> {
    this.running = false;
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.outstanding} operations still outstanding after ${timeoutMs} ms`)), timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private dueBy(nowMs: number): number {
    const r = this.spec.rateOpsPerSec;
    return r === null ? 0 : Math.floor(((nowMs - this.t0Ms) * r) / 1000);
  }

  private fire(slot: number, startMs: number): void {
    this.outstanding++;
    this.startMs[slot] = startMs;
    let onResult = this.onResult[slot];
    if (onResult === undefined) {
      onResult = this.onResult[slot] = (r: T) => this.done(slot, this.operations.isExpected(r) ? null : 'unexpected result');
      this.onError[slot] = (e: unknown) => this.done(slot, e ?? 'rejected');
    }
    this.operations.issue(slot).then(onResult, this.onError[slot]);
  }

  private done(slot: number, error: unknown): void {
    const startMs = this.startMs[slot]!;
    this.outstanding--;
    if (error === null) {
      if (this.counting) {
        this.ops++;
        const now = performance.now();
        const ms = now - startMs;
        recordMs(this.histogram, ms);
        const k = Math.floor((now - this.windowStartMs) / 1000);
        if (!(ms <= this.maxMsPerSecond[k]!)) this.maxMsPerSecond[k] = ms;
        if (ms >= SLOW_MS) {
          const at = Math.floor(startMs);
          const b = this.slow.get(at);
          if (b === undefined) this.slow.set(at, [1, ms]);
          else { b[0]++; if (ms > b[1]) b[1] = ms; }
        }
      }
    } else {
      const code = (error as { code?: unknown }).code;
      if (this.counting) {
        this.errors++;
        if (code === 'PAXLINE_BUSY') this.busy++;
      }
      this.firstError ??= error instanceof Error ? `${String(code ?? error.name)}: ${error.message}` : String(error);
    }
    if (!this.running) {
      if (this.outstanding === 0) for (const w of this.drainWaiters.splice(0)) w();
      return;
    }
    if (this.spec.rateOpsPerSec !== null) this.freeSlots.push(slot);
    else if (error === null) this.fire(slot, performance.now());
    else setImmediate(() => { if (this.running) this.fire(slot, performance.now()); });
  }

  private pump(): void {
    if (!this.running) return;
    const rate = this.spec.rateOpsPerSec!;
    const due = this.dueBy(performance.now());
    while (this.sent < due && this.freeSlots.length > 0) {
      const intendedMs = this.t0Ms + (this.sent * 1000) / rate;
      this.sent++;
      if (this.counting) recordMs(this.sendLag, performance.now() - intendedMs);
      this.fire(this.freeSlots.pop()!, intendedMs);
    }
    if (this.counting && due - this.sent > this.backlogMax) this.backlogMax = due - this.sent;
    setTimeout(() => this.pump(), PUMP_MS);
  }
}

/** IPC handlers shared by the replica process (embedded load) and the load generators. */
export function loadHandlers<T>(driver: () => LoadDriver<T>): Record<string, (arg: unknown) => unknown> {
  return {
    loadMarkStart: () => { driver().markStart(); return null; },
    loadMarkEnd: () => driver().markEnd(),
    loadDrain: (arg) => driver().drain((arg as { timeoutMs: number }).timeoutMs),
    cpu: () => ({ ...process.cpuUsage(), rssBytes: process.memoryUsage.rss() }),
  };
}
