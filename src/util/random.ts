/**
 * Random: the seeded pseudo-random generator that every simulated choice draws from (fault
 * injection, crash images, workloads). The consensus core never reads randomness itself; it is
 * handed a `Random`, so a run replays exactly from its seed.
 *
 * Algorithm: sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state, passes
 * PractRand; the counter guarantees a period of at least 2^32), seeded from one 32-bit integer by
 * four rounds of splitmix32 so that nearby seeds (1, 2, 3, ...) give unrelated streams.
 *
 * Invariants:
 *  - Deterministic: the same seed yields the same sequence on every platform (only 32-bit integer
 *    arithmetic via `| 0`, `>>> 0` and Math.imul; no Math.random, no `node:*` imports).
 *  - `fork()` consumes exactly one output of the parent, so forking is itself deterministic, and
 *    the child's stream is seeded through splitmix32 and so does not track the parent's.
 */

/** sfc32 authors recommend discarding the first outputs so a weak seed is fully mixed in. */
const WARMUP_ROUNDS = 12;
const TWO_POW_32 = 0x1_0000_0000;

export class Random {
  /** The seed this generator was created from (print it first so a run can be replayed). */
  readonly seed: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    assert(Number.isInteger(seed), 'Random seed must be an integer');
    this.seed = seed >>> 0;
    let s = this.seed;
    // splitmix32 expands one word into four well-mixed words; `s` advances by the golden gamma.
    s = (s + 0x9e3779b9) | 0;
    this.a = splitmix32(s);
    s = (s + 0x9e3779b9) | 0;
    this.b = splitmix32(s);
    s = (s + 0x9e3779b9) | 0;
    this.c = splitmix32(s);
    s = (s + 0x9e3779b9) | 0;
    this.d = splitmix32(s);
    for (let i = 0; i < WARMUP_ROUNDS; i++) this.nextUint32();
  }

  /** Uniform unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1) with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n), without modulo bias; 1 <= n <= 2^32. */
  int(n: number): number {
    assert(Number.isInteger(n) && n >= 1 && n <= TWO_POW_32, 'Random.int: n out of range');
    // Reject the top partial block of the 2^32 range so every residue is equally likely; the
    // rejection probability is below 1/2, so the expected number of draws is below 2.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi], both inclusive. */
  range(lo: number, hi: number): number {
    assert(Number.isInteger(lo) && Number.isInteger(hi) && lo <= hi, 'Random.range: bad bounds');
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p (0 never, 1 always). */
  chance(p: number): boolean {
    assert(p >= 0 && p <= 1, 'Random.chance: p must be in [0, 1]');
    return this.next() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    assert(items.length > 0, 'Random.pick: empty array');
    return items[this.int(items.length)] as T;
  }

  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /**
   * A new generator derived deterministically from this one's next output. Give each simulated
   * component its own fork so that adding draws in one component does not perturb the others.
   */
  fork(): Random {
    return new Random(this.nextUint32());
  }
}

/** One splitmix32 output for state `s` (Vigna's finaliser constants for 32-bit words). */
function splitmix32(s: number): number {
  let z = s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Out of line so the passing branch of `assert` stays tiny in hot loops. */
function fail(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
