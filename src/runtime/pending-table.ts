/**
 * The façade's outstanding replicate() calls, by request seq. Seqs are issued consecutively, so
 * a call lives in slot `seq & mask` of three parallel arrays (seq, resolve, reject): no Map
 * insert and delete and no object per call — a Map churned by one insert and one delete per
 * command keeps rehashing (profiles/OPTIMIZATIONS.md entry 13). A seq whose slot is still held by
 * an older, unanswered one (one call left outstanding while `capacity` newer ones complete) goes
 * to a Map instead, so the table is exact at any size.
 *
 * Invariants: a seq is in at most one place (its slot or the spill Map); `size` counts both.
 */
export class PendingTable<T> {
  private readonly mask: number;
  private readonly seqs: Float64Array;
  private readonly resolves: (((value: T) => void) | undefined)[];
  private readonly rejects: (((error: Error) => void) | undefined)[];
  private readonly spill = new Map<number, { resolve: (value: T) => void; reject: (error: Error) => void }>();
  private count = 0;

  /** `slots`: rounded up to a power of two (at least 2). */
  constructor(slots: number) {
    let n = 2;
    while (n < slots) n *= 2;
    this.mask = n - 1;
    this.seqs = new Float64Array(n); // 0 = free: seqs start at 1
    this.resolves = new Array<undefined>(n).fill(undefined);
    this.rejects = new Array<undefined>(n).fill(undefined);
  }

  get size(): number {
    return this.count;
  }

  /** Adds call `seq` (≥ 1, not present). */
  add(seq: number, resolve: (value: T) => void, reject: (error: Error) => void): void {
    const i = seq & this.mask;
    if (this.seqs[i] === 0) {
      this.seqs[i] = seq;
      this.resolves[i] = resolve;
      this.rejects[i] = reject;
    } else {
      this.spill.set(seq, { resolve, reject });
    }
    this.count++;
  }

  /** Resolves and removes call `seq`; false when it is not outstanding. */
  resolve(seq: number, value: T): boolean {
    return this.settle(seq, true, value);
  }

  /** Rejects and removes call `seq`; false when it is not outstanding. */
  reject(seq: number, error: Error): boolean {
    return this.settle(seq, false, error);
  }

  /** Rejects and removes every outstanding call. */
  rejectAll(error: Error): void {
    for (let i = 0; i <= this.mask; i++) {
      if (this.seqs[i] === 0) continue;
      const f = this.rejects[i]!;
      this.free(i);
      f(error);
    }
    const spilled = [...this.spill.values()];
    this.spill.clear();
    this.count -= spilled.length;
    for (const p of spilled) p.reject(error);
  }

  /** Removes call `seq` (its slot or the spill Map), then resolves or rejects it. */
  private settle(seq: number, ok: boolean, outcome: T | Error): boolean {
    const i = seq & this.mask;
    let resolve: (value: T) => void;
    let reject: (error: Error) => void;
    if (this.seqs[i] === seq) {
      resolve = this.resolves[i]!;
      reject = this.rejects[i]!;
      this.free(i);
    } else {
      const p = this.spill.get(seq);
      if (p === undefined) return false;
      this.spill.delete(seq);
      this.count--;
      ({ resolve, reject } = p);
    }
    if (ok) resolve(outcome as T);
    else reject(outcome as Error);
    return true;
  }

  private free(i: number): void {
    this.seqs[i] = 0;
    this.resolves[i] = undefined;
    this.rejects[i] = undefined;
    this.count--;
  }
}
