/**
 * Linearizability checker for histories of the replicated key-value state machine.
 *
 * Keys are independent registers, so a history is linearizable iff each key's sub-history is
 * (P-compositionality, Herlihy & Wing). Each key is checked by Wing & Gong's depth-first search
 * for a sequential order, with Lowe's memoisation of visited configurations, refined so that
 * unknown-outcome operations (which may take effect at any time after their call, or never)
 * do not blow the search up:
 *
 *  - A configuration is (K, U, state): K = the known operations linearized so far, U = the
 *    unknown-outcome ones, state = the register's value. The search succeeds as soon as K holds
 *    every known operation: the unknown ones left over are taken never to have happened.
 *  - Which operation may come next depends only on K (an unknown operation has no return time,
 *    so it never has to precede anything). Hence (K, U, s) dominates (K, U', s) when U ⊆ U', and
 *    the memo prunes a configuration when one with the same K and state and a subset of its U
 *    was already visited (plain (bitset, state) memoisation would keep 2^|U| variants).
 *  - Unknown operations are only linearized where it matters (KeySearch.nextState): one that
 *    would not change the state is never tried, and one that does must be needed by the very
 *    next operation; otherwise it could as well move later or never happen. Unknown operations
 *    with identical effects are interchangeable, so only one of them is tried at each point.
 *  - Values no operation can tell apart (none reads them, no cas expects them) are one state.
 *    An unknown write of such a value is dropped before the search when the key has no known
 *    failed cas it could explain: it could only be overwritten, which is the same as never.
 *    Unknown gets are dropped too: they have no effect and no output to explain.
 *
 * Invariants of the search: the ops linearized form an order consistent with real-time order
 * (A precedes B iff A.returnTime !== null && A.returnTime < B.callTime); every memo entry is a
 * configuration on the current path or one fully explored without success; success is only
 * reported when reached, and running out of budget is a failure (`reason: 'budget'`).
 *
 * `checkLinearizableBruteForce` is the slow, obviously-correct reference the tests compare with.
 */
import type { KvOperation, KvOutput, KvValue } from './history.js';

/** Default bound on configurations the search may visit for one key before giving up. */
export const BUDGET_STATES_PER_KEY_DEFAULT = 1_000_000;
/** The brute-force reference enumerates subsets × orders; beyond this it would not finish. */
export const BRUTE_FORCE_OPS_MAX = 10;
/** How many operations a failure report lists at most. */
const REPORT_OPS_MAX = 12;

export interface LinOptions {
  /** Configurations the search may visit per key before giving up (default 1,000,000). */
  readonly budgetStatesPerKey?: number;
}

export type LinResult =
  | {
      readonly ok: true;
      readonly keysChecked: number;
      readonly opsChecked: number;
      readonly unchecked: 0;
    }
  | {
      readonly ok: false;
      /** 'violation' = proven not linearizable; 'budget' = the search gave up (unknown). */
      readonly reason: 'violation' | 'budget';
      /** The first key that failed (a violating key if there is one, else a budget key). */
      readonly key: string;
      /** Number of keys whose search ran out of budget. */
      readonly unchecked: number;
      readonly detail: string;
      /** The operations the detail talks about (at most a dozen). */
      readonly ops: KvOperation[];
    };

function assert(cond: boolean, message: string): asserts cond {
  if (!cond) assertFailed(message);
}

function assertFailed(message: string): never {
  throw new Error(`linearizability: ${message}`);
}

/** Checks a whole history; see the file comment for the method. */
export function checkLinearizable(history: readonly KvOperation[], options?: LinOptions):
  LinResult {
  const budget = options?.budgetStatesPerKey ?? BUDGET_STATES_PER_KEY_DEFAULT;
  assert(Number.isInteger(budget) && budget > 0, 'options.budgetStatesPerKey: positive integer');
  for (const op of history) validateOp(op);
  const byKey = partitionByKey(history);
  let firstViolation: KeyFailure | null = null;
  let firstBudget: KeyFailure | null = null;
  let unchecked = 0;
  // Every key is searched even after a failure, so `unchecked` counts all of them.
  for (const [key, ops] of byKey) {
    const failure = checkKey(key, ops, budget);
    if (failure === null) continue;
    if (failure.reason === 'budget') {
      unchecked += 1;
      firstBudget ??= failure;
    } else {
      firstViolation ??= failure;
    }
  }
  const failure = firstViolation ?? firstBudget;
  if (failure === null) {
    return { ok: true, keysChecked: byKey.size, opsChecked: history.length, unchecked: 0 };
  }
  return { ok: false, ...failure, unchecked };
}

interface KeyFailure {
  readonly reason: 'violation' | 'budget';
  readonly key: string;
  readonly detail: string;
  readonly ops: KvOperation[];
}

function validateOp(op: KvOperation): void {
  if (!Number.isFinite(op.callTime)) {
    assertFailed(`op #${op.id}: callTime must be a finite number`);
  }
  if (op.returnTime !== null && !(op.returnTime >= op.callTime)) {
    assertFailed(`op #${op.id}: returnTime must be null or >= callTime`);
  }
}

/** Sub-histories per key, keys in sorted order so reports are deterministic. */
function partitionByKey(history: readonly KvOperation[]): Map<string, KvOperation[]> {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  return new Map([...byKey].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function checkKey(key: string, ops: readonly KvOperation[], budget: number): KeyFailure | null {
  const problem = prepareKey(key, ops);
  const impossible = problem.effect.indexOf(EFFECT_IMPOSSIBLE);
  if (impossible >= 0 && impossible < problem.knownCount) {
    const op = problem.ops[impossible];
    assert(op !== undefined, 'impossible op index in range');
    const detail = `key ${JSON.stringify(key)}: ${describeOp(op)} can never take effect ` +
      `(${impossibleWhy(op)})`;
    return { reason: 'violation', key, detail, ops: [op] };
  }
  const search = new KeySearch(problem, budget);
  const outcome = search.run();
  if (outcome === 'ok') {
    assertWitness(problem, search.pathOp.subarray(0, search.depth));
    return null;
  }
  return reportFailure(problem, search, outcome);
}

// ---------------------------------------------------------------------------------------------
// Per-key problem: operations re-indexed (known ones first), values interned to small integers.

/** Sets state to argA. */
const EFFECT_PUT = 0;
/** Legal iff state === argA; no change. */
const EFFECT_READ = 1;
/** Legal iff state === argA; sets state to argB (a known successful cas, or an unknown cas). */
const EFFECT_CAS_SWAP = 2;
/** Legal iff state !== argA; no change (a known failed cas). */
const EFFECT_CAS_FAIL = 3;
/** Never legal: the recorded output is impossible whatever the state. */
const EFFECT_IMPOSSIBLE = 4;
/**
 * Never legal, for an unknown op that can never take effect (a cas whose expected value the key
 * never holds): it simply never happens. Distinct from IMPOSSIBLE, a violation on a known op.
 */
const EFFECT_NEVER = 5;

/**
 * State id shared by every value that no operation of the key can tell apart: no known get
 * reads it and no cas expects it. Every effect tests the state only for equality with a read or
 * expected value, so merging these values changes no verdict and shrinks the memo.
 */
const VALUE_UNOBSERVED = 0;

interface KeyProblem {
  readonly key: string;
  /** Operations in search order: known ones [0, knownCount), then unknown ones. */
  readonly ops: readonly KvOperation[];
  readonly knownCount: number;
  readonly callTime: Float64Array;
  /** +Infinity for unknown-outcome operations. */
  readonly returnTime: Float64Array;
  readonly effect: Uint8Array;
  readonly argA: Int32Array;
  readonly argB: Int32Array;
  /**
   * Unknown ops with the same effect, arguments included, are interchangeable except for their
   * call times; each such class is a group (-1 for known ops). See KeySearch for how it is used.
   */
  readonly group: Int32Array;
  readonly groupCount: number;
  /** Interned id → value, for reports (index VALUE_UNOBSERVED is a placeholder). */
  readonly values: readonly KvValue[];
  readonly initialState: number;
}

function prepareKey(key: string, all: readonly KvOperation[]): KeyProblem {
  const withoutUnknownGets = all.filter((op) => op.returnTime !== null || op.input.kind !== 'get');
  const kept = dropUnobservable(withoutUnknownGets);
  const observed = observedValues(kept);
  const values: KvValue[] = [null];
  const ids = new Map<KvValue, number>();
  const intern = (v: KvValue): number => {
    if (!observed.has(v)) return VALUE_UNOBSERVED;
    let id = ids.get(v);
    if (id === undefined) {
      id = values.length;
      values.push(v);
      ids.set(v, id);
    }
    return id;
  };
  const byCall = (a: KvOperation, b: KvOperation): number => a.callTime - b.callTime || a.id - b.id;
  const known = kept.filter((op) => op.returnTime !== null).sort(byCall);
  const unknown = kept.filter((op) => op.returnTime === null).sort(byCall);
  const ops = [...known, ...unknown];
  const n = ops.length;
  const problem: KeyProblem = {
    key, ops, knownCount: known.length, values, initialState: intern(null), groupCount: 0,
    callTime: new Float64Array(n), returnTime: new Float64Array(n), effect: new Uint8Array(n),
    argA: new Int32Array(n), argB: new Int32Array(n), group: new Int32Array(n).fill(-1),
  };
  const written = writtenValues(kept);
  ops.forEach((op, i) => encodeOp(problem, i, op, intern, written));
  return { ...problem, groupCount: groupUnknownOps(problem) };
}

/** Values some operation of the sub-history may write, plus null (the initial value). */
function writtenValues(ops: readonly KvOperation[]): Set<KvValue> {
  const written = new Set<KvValue>([null]);
  for (const op of ops) {
    if (op.input.kind === 'put') written.add(op.input.value);
    else if (op.input.kind === 'cas' && (op.returnTime === null || op.output === true)) {
      written.add(op.input.value);
    }
  }
  return written;
}

/** Values some operation could tell apart from others: read by a known get, or cas-expected. */
function observedValues(ops: readonly KvOperation[]): Set<KvValue> {
  const observed = new Set<KvValue>();
  for (const op of ops) {
    if (op.input.kind === 'cas') observed.add(op.input.expected);
    else if (op.input.kind === 'get' && op.returnTime !== null && typeof op.output !== 'boolean') {
      observed.add(op.output);
    }
  }
  return observed;
}

function encodeOp(p: KeyProblem, i: number, op: KvOperation, intern: (v: KvValue) => number,
  written: ReadonlySet<KvValue>): void {
  p.callTime[i] = op.callTime;
  p.returnTime[i] = op.returnTime ?? Number.POSITIVE_INFINITY;
  const known = op.returnTime !== null;
  const input = op.input;
  let effect = EFFECT_IMPOSSIBLE;
  if (input.kind === 'put') {
    p.argA[i] = intern(input.value);
    if (!known || op.output === 'ok') effect = EFFECT_PUT;
  } else if (input.kind === 'get') {
    assert(known, 'unknown gets are dropped before encoding');
    if (typeof op.output !== 'boolean' && written.has(op.output)) {
      p.argA[i] = intern(op.output);
      effect = EFFECT_READ;
    }
  } else {
    p.argA[i] = intern(input.expected);
    p.argB[i] = intern(input.value);
    if (!known || op.output === true) {
      // A swap needs the expected value to be present at some point.
      if (written.has(input.expected)) effect = EFFECT_CAS_SWAP;
    } else if (op.output === false) {
      effect = EFFECT_CAS_FAIL;
    }
  }
  // An unknown op that can never take effect is harmless: it just never happens.
  p.effect[i] = !known && effect === EFFECT_IMPOSSIBLE ? EFFECT_NEVER : effect;
}

/** Fills p.group for the unknown ops; returns the number of groups. */
function groupUnknownOps(p: KeyProblem): number {
  const groups = new Map<string, number>();
  for (let i = p.knownCount; i < p.ops.length; i++) {
    const signature = `${p.effect[i]}:${p.argA[i]}:${p.argB[i]}`;
    let g = groups.get(signature);
    if (g === undefined) {
      g = groups.size;
      groups.set(signature, g);
    }
    p.group[i] = g;
  }
  return groups.size;
}

/** Drops unknown writes whose value nothing could observe; see the file comment for why. */
function dropUnobservable(ops: readonly KvOperation[]): KvOperation[] {
  const hasKnownFailedCas = ops.some(
    (op) => op.returnTime !== null && op.input.kind === 'cas' && op.output !== true,
  );
  if (hasKnownFailedCas) return [...ops];
  const observed = observedValues(ops);
  return ops.filter((op) => op.returnTime !== null || op.input.kind === 'get' ||
    observed.has(op.input.value));
}

// ---------------------------------------------------------------------------------------------
// The search.

type SearchOutcome = 'ok' | 'violation' | 'budget';

/**
 * Wing & Gong's search over one key, iterative, with the not-yet-linearized operations kept in
 * dancing-links lists so that lifting an operation and putting it back are O(1):
 *  - known operations by call time (circular, sentinel KH = n),
 *  - unknown operations by call time (circular, sentinel UH = n + 1),
 *  - known operations by return time (circular, sentinel RH = n, separate arrays),
 *  - each group of interchangeable unknown operations by call time (sentinel n + group).
 * An operation may be linearized next iff its call time is <= the earliest return time among
 * the other not-yet-linearized known operations, so candidates are a prefix of each call list.
 *
 * Of the candidates in one group only the latest-called is tried. Why that loses nothing: the
 * candidate window only grows as known ops are linearized, so an earlier-called member stays
 * usable wherever the later one would have been; any linearization using the earlier member
 * now can swap it with the later one (or use the later one instead, if it never used it).
 */
class KeySearch {
  readonly problem: KeyProblem;
  readonly budget: number;
  readonly n: number;
  readonly knownCount: number;
  readonly nextC: Int32Array;
  readonly prevC: Int32Array;
  readonly nextR: Int32Array;
  readonly prevR: Int32Array;
  readonly nextG: Int32Array;
  readonly prevG: Int32Array;
  /** Ops on the current path and the state before each was applied. */
  readonly pathOp: Int32Array;
  readonly pathState: Int32Array;
  readonly memo: Memo;
  depth = 0;
  knownDone = 0;
  statesVisited = 0;
  /** The path of the configuration that linearized the most known ops (for reports). */
  bestPath: Int32Array = new Int32Array(0);
  bestKnownDone = -1;
  bestState = VALUE_UNOBSERVED;

  constructor(problem: KeyProblem, budget: number) {
    this.problem = problem;
    this.budget = budget;
    this.n = problem.ops.length;
    this.knownCount = problem.knownCount;
    this.nextC = new Int32Array(this.n + 2);
    this.prevC = new Int32Array(this.n + 2);
    this.nextR = new Int32Array(this.n + 1);
    this.prevR = new Int32Array(this.n + 1);
    this.nextG = new Int32Array(this.n + problem.groupCount);
    this.prevG = new Int32Array(this.n + problem.groupCount);
    this.pathOp = new Int32Array(this.n);
    this.pathState = new Int32Array(this.n);
    this.memo = new Memo(this.knownCount, this.n - this.knownCount);
    this.linkLists();
  }

  private linkLists(): void {
    const { n, knownCount: k, nextC, prevC, nextR, prevR } = this;
    const link = (next: Int32Array, prev: Int32Array, head: number, order: number[]): void => {
      let last = head;
      for (const i of order) {
        next[last] = i;
        prev[i] = last;
        last = i;
      }
      next[last] = head;
      prev[head] = last;
    };
    const range = (from: number, to: number): number[] =>
      Array.from({ length: to - from }, (_, j) => from + j);
    // prepareKey sorted each class by call time already.
    link(nextC, prevC, n, range(0, k));
    link(nextC, prevC, n + 1, range(k, n));
    const rt = this.problem.returnTime;
    link(nextR, prevR, n, range(0, k).sort((a, b) => (rt[a] ?? 0) - (rt[b] ?? 0) || a - b));
    const members: number[][] = Array.from({ length: this.problem.groupCount }, () => []);
    for (let i = k; i < n; i++) members[this.problem.group[i] ?? 0]?.push(i);
    members.forEach((order, g) => link(this.nextG, this.prevG, n + g, order));
  }

  /** Runs the search to completion, success, or budget exhaustion. */
  run(): SearchOutcome {
    const { n, knownCount: k, nextC, nextR, problem } = this;
    const KH = n;
    const UH = n + 1;
    const RH = n;
    let state = problem.initialState;
    if (!this.enter(state, NOT_RESTRICTED)) {
      return this.statesVisited > this.budget ? 'budget' : 'violation';
    }
    let cursor = nextC[KH] ?? KH;
    for (;;) {
      if (this.knownDone === k) return 'ok';
      const minRet = problem.returnTime[nextR[RH] ?? RH] ?? Number.POSITIVE_INFINITY;
      const from = this.restriction();
      // Move the cursor to the next candidate: known ops first, then unknown ones.
      if (cursor < k || cursor === KH) {
        if (cursor === KH || (problem.callTime[cursor] ?? 0) > minRet) cursor = nextC[UH] ?? UH;
      }
      if (cursor !== UH && cursor !== KH && (problem.callTime[cursor] ?? 0) <= minRet) {
        const next = this.nextState(cursor, state, minRet, from);
        if (next >= 0) {
          this.lift(cursor, state);
          if (this.enter(next, this.restriction())) {
            state = next;
            cursor = nextC[KH] ?? KH;
            continue;
          }
          if (this.statesVisited > this.budget) return 'budget';
          this.unlift();
        }
        cursor = nextC[cursor] ?? UH;
        continue;
      }
      // No candidate left here: backtrack.
      if (this.depth === 0) return 'violation';
      const op = this.pathOp[this.depth - 1] ?? 0;
      state = this.unlift();
      cursor = nextC[op] ?? UH;
    }
  }

  /**
   * The state before the last op on the path if that op is unknown (the next op must need its
   * write, see nextState), else NOT_RESTRICTED.
   */
  private restriction(): number {
    const last = this.depth > 0 ? (this.pathOp[this.depth - 1] ?? 0) : -1;
    return last >= this.knownCount ? (this.pathState[this.depth - 1] ?? 0) : NOT_RESTRICTED;
  }

  /**
   * The state after candidate op, or -1 if op cannot or need not be tried here. Three prunings,
   * each losing no linearization (an unknown op can always be moved later or dropped):
   *  - an unknown op is tried only if no later-called member of its group is a candidate;
   *  - an unknown op that would leave the state unchanged is never tried (drop it instead);
   *  - right after an unknown write from state `from`, only an op that needs the new state may
   *    follow: a read or successful cas of it, or a failed cas that expected `from`. Any other
   *    op gives the same result before the write, so the write could move after it; a put
   *    would overwrite it, so the write could be dropped.
   */
  private nextState(op: number, state: number, minRet: number, from: number): number {
    const p = this.problem;
    if (op >= this.knownCount) {
      const later = this.nextG[op] ?? 0;
      if (later < this.n && (p.callTime[later] ?? 0) <= minRet) return -1;
    }
    if (from !== NOT_RESTRICTED) {
      const effect = p.effect[op];
      if (effect === EFFECT_PUT || (effect === EFFECT_CAS_FAIL && p.argA[op] !== from)) return -1;
    }
    const next = applyEffect(p, op, state);
    return op >= this.knownCount && next === state ? -1 : next;
  }

  /** Records entry into the current configuration; false if the memo prunes it. */
  private enter(state: number, from: number): boolean {
    if (!this.memo.insertUnlessDominated(state, from)) return false;
    // Success needs no budget: reaching it is the proof.
    if (this.knownDone === this.knownCount) return true;
    this.statesVisited += 1;
    if (this.statesVisited > this.budget) return false;
    if (this.knownDone > this.bestKnownDone) {
      this.bestKnownDone = this.knownDone;
      this.bestPath = this.pathOp.slice(0, this.depth);
      this.bestState = state;
    }
    return true;
  }

  /** Linearizes op next: removes it from its lists and pushes it on the path. */
  private lift(op: number, stateBefore: number): void {
    const { nextC, prevC, nextR, prevR } = this;
    const pc = prevC[op] ?? 0;
    const nc = nextC[op] ?? 0;
    nextC[pc] = nc;
    prevC[nc] = pc;
    if (op < this.knownCount) {
      const pr = prevR[op] ?? 0;
      const nr = nextR[op] ?? 0;
      nextR[pr] = nr;
      prevR[nr] = pr;
      this.knownDone += 1;
    } else {
      const pg = this.prevG[op] ?? 0;
      const ng = this.nextG[op] ?? 0;
      this.nextG[pg] = ng;
      this.prevG[ng] = pg;
    }
    this.memo.toggle(op);
    this.pathOp[this.depth] = op;
    this.pathState[this.depth] = stateBefore;
    this.depth += 1;
  }

  /** Undoes the last lift (dancing links: the removed op's own pointers are still valid). */
  private unlift(): number {
    assert(this.depth > 0, 'unlift with an empty path');
    this.depth -= 1;
    const op = this.pathOp[this.depth] ?? 0;
    const { nextC, prevC, nextR, prevR } = this;
    nextC[prevC[op] ?? 0] = op;
    prevC[nextC[op] ?? 0] = op;
    if (op < this.knownCount) {
      nextR[prevR[op] ?? 0] = op;
      prevR[nextR[op] ?? 0] = op;
      this.knownDone -= 1;
    } else {
      this.nextG[this.prevG[op] ?? 0] = op;
      this.prevG[this.nextG[op] ?? 0] = op;
    }
    this.memo.toggle(op);
    return this.pathState[this.depth] ?? VALUE_UNOBSERVED;
  }
}

/** The state after applying op i to state, or -1 if op i cannot take effect in that state. */
function applyEffect(p: KeyProblem, i: number, state: number): number {
  const a = p.argA[i] ?? -1;
  switch (p.effect[i]) {
    case EFFECT_PUT:
      return a;
    case EFFECT_READ:
      return state === a ? state : -1;
    case EFFECT_CAS_SWAP:
      return state === a ? (p.argB[i] ?? -1) : -1;
    case EFFECT_CAS_FAIL:
      return state !== a ? state : -1;
    default:
      return -1;
  }
}

// ---------------------------------------------------------------------------------------------
// The memo: configurations (K, U, state) in a hash table keyed by (K, state), entries packed
// in one growing Int32Array so that a million states cost no per-entry objects.
//
//   entry: [ nextEntryOffset | state | from | K word 0 .. K word kw-1 | U word 0 .. uw-1 ]
//
// A restricted configuration (right after an unknown write) has fewer continuations than the
// same unrestricted one, so it is pruned by an unrestricted entry or by one with the same
// restriction; an unrestricted configuration is pruned only by an unrestricted entry.

const ENTRY_NEXT = 0;
const ENTRY_STATE = 1;
/** The restriction (see KeySearch.restriction): NOT_RESTRICTED or the state before. */
const ENTRY_FROM = 2;
const ENTRY_BITS = 3;
const NOT_RESTRICTED = -1;
const POOL_INTS_INITIAL = 1 << 16;

class Memo {
  readonly knownCount: number;
  readonly kWords: number;
  readonly uWords: number;
  readonly entryInts: number;
  /** Bits of the current configuration: K then U, packed the same way as an entry. */
  readonly bits: Int32Array;
  /** Zobrist codes of the known ops; hashK is the XOR over K. */
  readonly zobrist: Int32Array;
  hashK = 0;
  readonly heads = new Map<number, number>();
  pool: Int32Array = new Int32Array(POOL_INTS_INITIAL);
  /** Offset 0 is reserved so that 0 can mean "no next entry". */
  poolUsed = 1;

  constructor(knownCount: number, unknownCount: number) {
    this.knownCount = knownCount;
    this.kWords = (knownCount + 31) >>> 5;
    this.uWords = (unknownCount + 31) >>> 5;
    this.entryInts = ENTRY_BITS + this.kWords + this.uWords;
    this.bits = new Int32Array(this.kWords + this.uWords);
    this.zobrist = new Int32Array(knownCount);
    let seed = 0x2545f491;
    for (let i = 0; i < knownCount; i++) {
      seed = (seed + 0x9e3779b9) | 0;
      this.zobrist[i] = mix32(seed);
    }
  }

  /** Flips op's membership in the current configuration. */
  toggle(op: number): void {
    const bit = op < this.knownCount ? op : this.kWords * 32 + (op - this.knownCount);
    this.bits[bit >>> 5] = (this.bits[bit >>> 5] ?? 0) ^ (1 << (bit & 31));
    if (op < this.knownCount) this.hashK ^= this.zobrist[op] ?? 0;
  }

  /**
   * Adds the current configuration unless an entry with the same K and state, a restriction
   * that allows at least as much, and U' ⊆ U exists.
   */
  insertUnlessDominated(state: number, from: number): boolean {
    const hashFree = (this.hashK ^ Math.imul(state + 1, 0x9e3779b1)) | 0;
    if (this.dominated(hashFree, state, NOT_RESTRICTED)) return false;
    const hash = from === NOT_RESTRICTED ? hashFree
      : (hashFree ^ Math.imul(from + 2, 0x85ebca6b)) | 0;
    if (from !== NOT_RESTRICTED && this.dominated(hash, state, from)) return false;
    if (this.poolUsed + this.entryInts > this.pool.length) this.grow();
    const e = this.poolUsed;
    this.poolUsed += this.entryInts;
    this.pool[e + ENTRY_NEXT] = this.heads.get(hash) ?? 0;
    this.pool[e + ENTRY_STATE] = state;
    this.pool[e + ENTRY_FROM] = from;
    this.pool.set(this.bits, e + ENTRY_BITS);
    this.heads.set(hash, e);
    return true;
  }

  private dominated(hash: number, state: number, from: number): boolean {
    for (let e = this.heads.get(hash) ?? 0; e !== 0; e = this.pool[e + ENTRY_NEXT] ?? 0) {
      if (this.pool[e + ENTRY_STATE] === state && this.pool[e + ENTRY_FROM] === from &&
        this.dominates(e)) return true;
    }
    return false;
  }

  /** True iff entry e has exactly the current K and a subset of the current U. */
  private dominates(e: number): boolean {
    const { pool, bits, kWords } = this;
    const base = e + ENTRY_BITS;
    for (let w = 0; w < kWords; w++) {
      if (pool[base + w] !== bits[w]) return false;
    }
    for (let w = kWords; w < bits.length; w++) {
      if (((pool[base + w] ?? 0) & ~(bits[w] ?? 0)) !== 0) return false;
    }
    return true;
  }

  private grow(): void {
    const bigger = new Int32Array(this.pool.length * 2);
    bigger.set(this.pool);
    this.pool = bigger;
  }
}

function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}

/**
 * Paired check of a success: replays the order found on the raw operations, independently of
 * the encoding and the prunings, and asserts it is a valid linearization of the key.
 */
function assertWitness(p: KeyProblem, path: Int32Array): void {
  let value: KvValue = null;
  let callTimeMax = Number.NEGATIVE_INFINITY;
  let knownPlaced = 0;
  for (const i of path) {
    const op = opAt(p, i);
    // Real-time order: no op placed earlier may have been called after this one returned.
    assert(op.returnTime === null || op.returnTime >= callTimeMax, 'witness: real-time order');
    callTimeMax = Math.max(callTimeMax, op.callTime);
    if (op.returnTime !== null) knownPlaced += 1;
    const input = op.input;
    if (input.kind === 'put') value = input.value;
    else if (input.kind === 'get') assert(op.output === value, 'witness: read value');
    else {
      const swaps = value === input.expected;
      assert(op.returnTime === null || op.output === swaps, 'witness: cas result');
      if (swaps) value = input.value;
    }
  }
  assert(knownPlaced === p.knownCount, 'witness: every known op placed');
}

// ---------------------------------------------------------------------------------------------
// Reports.

function reportFailure(p: KeyProblem, search: KeySearch, outcome: 'violation' | 'budget'):
  KeyFailure {
  const onPath = new Set(search.bestPath);
  const remainingKnown: number[] = [];
  for (let i = 0; i < p.knownCount; i++) if (!onPath.has(i)) remainingKnown.push(i);
  remainingKnown.sort((a, b) => (p.returnTime[a] ?? 0) - (p.returnTime[b] ?? 0));
  const blocking = remainingKnown[0];
  assert(blocking !== undefined, 'a failed search leaves some known op unlinearized');
  const minRet = p.returnTime[blocking] ?? 0;
  // The ops that could have come next at the deepest point: the concurrency window.
  const window: number[] = [];
  for (let i = 0; i < p.ops.length; i++) {
    if (i !== blocking && !onPath.has(i) && (p.callTime[i] ?? 0) <= minRet) window.push(i);
  }
  const path = search.bestPath;
  const last = path[path.length - 1];
  const lastText = last === undefined ? 'none' : describeOp(opAt(p, last));
  const listed = window.slice(0, REPORT_OPS_MAX - 1).map((i) => `#${opAt(p, i).id}`);
  if (window.length > listed.length) listed.push('...');
  const headline = outcome === 'budget'
    ? `gave up after ${search.budget} states (budget), neither proven nor refuted`
    : 'not linearizable';
  const next = describeOp(opAt(p, blocking));
  const stuck = outcome === 'budget' ? `no order found yet in which ${next} takes effect`
    : `no order lets ${next} take effect`;
  const detail = `key ${JSON.stringify(p.key)}: ${headline}. Deepest point reached: ` +
    `${search.bestKnownDone} of ${p.knownCount} known ops linearized (last: ${lastText}; ` +
    `register then ${stateName(p, search.bestState)}). From there ${stuck}; ` +
    `other ops that could go next: ` +
    `${listed.join(', ') || 'none'}`;
  const ops = [blocking, ...window].slice(0, REPORT_OPS_MAX).map((i) => opAt(p, i));
  return { reason: outcome, key: p.key, detail, ops };
}

function stateName(p: KeyProblem, state: number): string {
  return state === VALUE_UNOBSERVED ? 'a value no op reads or expects'
    : JSON.stringify(p.values[state] ?? null);
}

function opAt(p: KeyProblem, i: number): KvOperation {
  const op = p.ops[i];
  assert(op !== undefined, 'op index in range');
  return op;
}

function impossibleWhy(op: KvOperation): string {
  switch (op.input.kind) {
    case 'put':
      return 'a put must return "ok"';
    case 'get':
      return 'it read a value no operation on this key writes';
    case 'cas':
      return typeof op.output === 'boolean'
        ? 'it swapped on an expected value the key never holds'
        : 'a cas must return true or false';
  }
}

/** `#12 c3 put("a") → ok @[100, 140]`; unknown outcomes print `→ ? @[100, ?)`. */
export function describeOp(op: KvOperation): string {
  const i = op.input;
  const input = i.kind === 'put' ? `put(${JSON.stringify(i.value)})`
    : i.kind === 'get' ? 'get()'
    : `cas(${JSON.stringify(i.expected)} → ${JSON.stringify(i.value)})`;
  const known = op.returnTime !== null;
  const output = known ? formatOutput(op.output) : '?';
  const interval = known ? `[${op.callTime}, ${op.returnTime}]` : `[${op.callTime}, ?)`;
  return `#${op.id} c${op.clientId} ${input} → ${output} @${interval}`;
}

function formatOutput(output: KvOutput): string {
  return output === 'ok' ? 'ok' : JSON.stringify(output);
}

// ---------------------------------------------------------------------------------------------
// The reference: no partitioning, no memo, no pruning beyond "a prefix that is already invalid
// stays invalid". Every subset of unknown-outcome ops is tried as "took effect", and for each,
// every total order consistent with real-time order.

/** True iff the history is linearizable; exponential, for histories of a handful of ops. */
export function checkLinearizableBruteForce(history: readonly KvOperation[]): boolean {
  assert(history.length <= BRUTE_FORCE_OPS_MAX, 'brute force is for tiny histories only');
  const known = history.filter((op) => op.returnTime !== null);
  const unknown = history.filter((op) => op.returnTime === null);
  for (let mask = 0; mask < 1 << unknown.length; mask++) {
    const chosen = [...known, ...unknown.filter((_, j) => (mask & (1 << j)) !== 0)];
    if (someOrderWorks(chosen, new Map())) return true;
  }
  return false;
}

function someOrderWorks(remaining: readonly KvOperation[], store: ReadonlyMap<string, KvValue>):
  boolean {
  if (remaining.length === 0) return true;
  for (const op of remaining) {
    const others = remaining.filter((o) => o !== op);
    // op can go next only if no other remaining op must precede it in real time.
    const blocked = others.some((o) => o.returnTime !== null && o.returnTime < op.callTime);
    if (blocked) continue;
    const after = applySequential(store, op);
    if (after !== null && someOrderWorks(others, after)) return true;
  }
  return false;
}

/** The store after op, or null if op's recorded output is impossible in `store`. */
function applySequential(store: ReadonlyMap<string, KvValue>, op: KvOperation):
  ReadonlyMap<string, KvValue> | null {
  const current = store.get(op.key) ?? null;
  const known = op.returnTime !== null;
  const set = (v: KvValue): Map<string, KvValue> => new Map(store).set(op.key, v);
  switch (op.input.kind) {
    case 'put':
      return !known || op.output === 'ok' ? set(op.input.value) : null;
    case 'get':
      return !known || op.output === current ? store : null;
    case 'cas': {
      const swaps = current === op.input.expected;
      if (known && op.output !== swaps) return null;
      return swaps ? set(op.input.value) : store;
    }
  }
}
