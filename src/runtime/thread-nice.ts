/**
 * The apply thread's scheduling priority (option secondaryApplyNice, decision 0011).
 *
 * On a secondary the apply stage is off the commit path: a decree is chosen once a quorum has it
 * durably, and the client's answer comes from the primary's apply stage. Where the host has more
 * runnable threads than cores (replicas sharing a machine, or a busy one), every slice a
 * secondary's apply thread holds a core is time a consensus, network or log thread on the commit
 * path waits for it. So while the replica is a secondary with a known primary, the apply thread's
 * nice value is raised; when it becomes primary, or falls behind, it is put back.
 *
 * Linux only: there a nice value belongs to a thread (setpriority on thread id 0 = the calling
 * thread, which is what os.setPriority(0, n) does); elsewhere it belongs to the process. A thread
 * starts with its creator's nice value, so threads started from the apply thread while it is
 * raised (the checkpoint writer, any the state machine starts) start raised too.
 *
 * Raising a nice value is always allowed; lowering it back needs CAP_SYS_NICE in the initial user
 * namespace or an RLIMIT_NICE soft limit of at least 20 − the value wanted. `probeNiceRestore`
 * tries it in a short-lived thread rather than reading /proc: a capability held inside a user
 * namespace (rootless containers) shows in CapEff yet does not count for nice values.
 */
import { getPriority, setPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ROLE_PRIMARY, ROLE_SECONDARY } from './stage-protocol.js';

/** Nice increment used by secondaryApplyNice 'auto' when the priority can be put back. */
export const SECONDARY_APPLY_NICE_AUTO = 19;
const NICE_MAX = 19;
/** Fill of the apply stage's input ring at which a secondary's apply thread returns to `base` … */
export const BEHIND_FILL = 0.5;
/** … and at or below which it is lowered again. */
export const CAUGHT_UP_FILL = 0.125;

const PROBE = `
const { parentPort, workerData: base } = require('node:worker_threads');
const os = require('node:os');
let ok = false;
try { os.setPriority(0, base + 1); os.setPriority(0, base); ok = os.getPriority(0) === base; } catch {}
parentPort.postMessage(ok);
`;

/**
 * Whether a thread of this process may set its nice value back down to `base` after raising it:
 * tried in a short-lived thread (raised by one, then put back). False off Linux and at 19.
 */
export function probeNiceRestore(base: number): Promise<boolean> {
  if (process.platform !== 'linux' || base >= NICE_MAX) return Promise.resolve(false);
  return new Promise((resolve) => {
    let w: Worker;
    try {
      w = new Worker(PROBE, { eval: true, workerData: base });
    } catch {
      resolve(false);
      return;
    }
    w.once('message', (ok: unknown) => {
      resolve(ok === true);
      void w.terminate();
    });
    w.once('error', () => resolve(false));
    w.once('exit', () => resolve(false)); // after a message: no effect
  });
}

/**
 * The nice increment a secondary's apply thread takes: the option's number as given, or for
 * 'auto' SECONDARY_APPLY_NICE_AUTO when the priority can be put back, else 0; always 0 off Linux.
 */
export function resolveSecondaryApplyNice(setting: number | 'auto', platform: string, canRestore: boolean): number {
  if (platform !== 'linux') return 0;
  if (setting !== 'auto') return setting;
  return canRestore ? SECONDARY_APPLY_NICE_AUTO : 0;
}

/**
 * Follows the replica's role and sets the calling thread's nice value: `base + increment`
 * (at most 19) while secondary with a known primary other than itself, `base` once primary,
 * unchanged otherwise (standing for election, or no primary heard of yet; note that a primary
 * that steps down still names the last other primary it heard of, if any). When the priority can be put back
 * (`canRestore`), a secondary whose apply stage has fallen behind — its input ring at least
 * BEHIND_FILL full — runs at `base` until the ring is down to CAUGHT_UP_FILL, so a host kept busy
 * by other work cannot starve it without bound. When it cannot, `warn` says so once at the start,
 * and again for each failed attempt to put it back on becoming primary.
 */
export class SecondaryNice {
  private readonly lowered: number;
  private current: number;
  private failedFor: number | null = null;
  private behind = false;

  constructor(
    private readonly self: number,
    private readonly base: number,
    increment: number,
    private readonly canRestore: boolean,
    private readonly set: (nice: number) => void,
    private readonly warn: (message: string) => void,
  ) {
    this.lowered = Math.min(NICE_MAX, base + increment);
    this.current = base;
    if (this.lowered !== base && !canRestore) {
      warn(`secondaryApplyNice ${increment}: this process may not lower a thread's nice value (that needs CAP_SYS_NICE, ` +
        `or an RLIMIT_NICE of at least ${20 - base}), so a secondary that becomes primary keeps its apply thread at nice ${this.lowered}, ` +
        'and a secondary that falls behind stays at it too');
    }
  }

  /** The thread's nice value as last set. */
  get nice(): number {
    return this.current;
  }

  /**
   * `role` is C_ROLE's code, `primary` C_PRIMARY (−1 when none is known), `fill` the share of
   * the apply stage's input ring holding decrees not yet executed (0..1).
   */
  follow(role: number, primary: number, fill: number): void {
    if (fill >= BEHIND_FILL) this.behind = this.canRestore;
    else if (fill <= CAUGHT_UP_FILL) this.behind = false;
    let want: number;
    if (role === ROLE_PRIMARY) want = this.base;
    else if (role === ROLE_SECONDARY && primary >= 0 && primary !== this.self) want = this.behind ? this.base : this.lowered;
    else return;
    if (want === this.current) {
      this.failedFor = null; // a later change is tried (and, failing, reported) afresh
      return;
    }
    if (want === this.failedFor) return;
    try {
      this.set(want);
      this.current = want;
      this.failedFor = null;
    } catch (e) {
      this.failedFor = want;
      this.warn(`the apply thread could not set its nice value from ${this.current} to ${want} (${(e as Error).message}); ` +
        `it stays at ${this.current}`);
    }
  }
}

/** SecondaryNice for the calling thread (one that never changes anything when the increment resolves to 0). */
export async function secondaryNiceForThisThread(self: number, setting: number | 'auto', warn: (message: string) => void): Promise<SecondaryNice> {
  const base = getPriority(0);
  // The probe only matters when something may be raised.
  const canRestore = setting !== 0 && await probeNiceRestore(base);
  const increment = resolveSecondaryApplyNice(setting, process.platform, canRestore);
  return new SecondaryNice(self, base, increment, canRestore, (n) => setPriority(0, n), warn);
}

/**
 * For a thread started by the apply thread (the checkpoint writer): takes `nice` (the apply
 * thread's base value) if it started with another, where allowed; otherwise keeps what it has.
 */
export function takeNice(nice: number | null): void {
  if (nice === null || process.platform !== 'linux' || getPriority(0) === nice) return;
  try {
    setPriority(0, nice);
  } catch {
    // Not allowed (no CAP_SYS_NICE / RLIMIT_NICE): it keeps the value it started with.
  }
}
