/**
 * The apply thread's scheduling priority (option secondaryApplyNice, decision 0011).
 *
 * On a secondary the apply stage is off the commit path: a decree is chosen once a quorum has it
 * durably, and the client's answer comes from the primary's apply stage. Where the host has more
 * runnable threads than cores (replicas sharing a machine, or a busy one), every millisecond a
 * secondary's apply thread holds a core is a millisecond that a consensus, network or log thread
 * on the commit path waits for it. So while the replica is a secondary with a known primary, the
 * apply thread's nice value is raised; when it becomes primary, it is put back.
 *
 * Linux only: there a nice value belongs to a thread (setpriority on thread id 0 = the calling
 * thread, which is what os.setPriority(0, n) does); elsewhere it belongs to the process.
 * Raising a nice value is always allowed; lowering it back needs CAP_SYS_NICE or an RLIMIT_NICE
 * soft limit of at least 20 − the value wanted. `mayRestoreNice` reads both from /proc.
 */
import { readFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Nice increment used by secondaryApplyNice 'auto' when the priority can be put back. */
export const SECONDARY_APPLY_NICE_AUTO = 19;
const NICE_MAX = 19;
const CAP_SYS_NICE = 23n;

/** Fill of the apply stage's input ring at which a secondary's apply thread returns to `base` … */
export const BEHIND_FILL = 0.5;
/** … and at or below which it is lowered again. */
export const CAUGHT_UP_FILL = 0.125;

/** Role codes as the consensus stage writes them to C_ROLE (stage-protocol.ts). */
const ROLE_SECONDARY = 0;
const ROLE_PRIMARY = 2;

/** Effective capabilities from the text of /proc/<pid>/status (0 when absent). */
export function effectiveCapabilities(procStatus: string): bigint {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procStatus);
  return m === null ? 0n : BigInt(`0x${m[1]!}`);
}

/** RLIMIT_NICE's soft limit from the text of /proc/<pid>/limits (Infinity for unlimited, 0 when absent). */
export function niceSoftLimit(procLimits: string): number {
  const m = /^Max nice priority\s+(\S+)/m.exec(procLimits);
  if (m === null) return 0;
  if (m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : 0;
}

/** Whether a thread with these capabilities and RLIMIT_NICE may set its nice value down to `nice`. */
export function mayLowerNiceTo(nice: number, capEff: bigint, niceLimit: number): boolean {
  return ((capEff >> CAP_SYS_NICE) & 1n) === 1n || 20 - nice <= niceLimit;
}

/** mayLowerNiceTo for this process, from /proc (false where /proc cannot be read). */
export function mayRestoreNice(nice: number): boolean {
  try {
    return mayLowerNiceTo(nice, effectiveCapabilities(readFileSync('/proc/self/status', 'utf8')),
      niceSoftLimit(readFileSync('/proc/self/limits', 'utf8')));
  } catch {
    return false;
  }
}

/**
 * The nice increment a secondary's apply thread takes: the option's number as given, or for
 * 'auto' SECONDARY_APPLY_NICE_AUTO on Linux when the process may put the priority back, else 0.
 */
export function resolveSecondaryApplyNice(setting: number | 'auto', base: number, platform: string, mayRestore: (nice: number) => boolean): number {
  if (platform !== 'linux') return 0;
  if (setting !== 'auto') return setting;
  return mayRestore(base) ? SECONDARY_APPLY_NICE_AUTO : 0;
}

/**
 * Follows the replica's role and sets the calling thread's nice value: `base + increment`
 * (at most 19) while secondary with a known primary other than itself, `base` once primary,
 * unchanged otherwise (no primary known, or standing for election). A secondary whose apply
 * stage has fallen behind — its input ring at least BEHIND_FILL full — runs at `base` until the
 * ring is down to CAUGHT_UP_FILL, so a host kept busy by other work cannot starve it without
 * bound. A failed change is reported once through `warn` and not retried while the same value
 * is wanted.
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
    private readonly set: (nice: number) => void,
    private readonly warn: (message: string) => void,
  ) {
    this.lowered = Math.min(NICE_MAX, base + increment);
    this.current = base;
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
    if (fill >= BEHIND_FILL) this.behind = true;
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
      this.warn(`apply thread: could not set its nice value from ${this.current} to ${want} (${(e as Error).message}); ` +
        'to have a secondary\'s apply thread return to full priority when it becomes primary, give the process CAP_SYS_NICE or an RLIMIT_NICE of at least ' +
        `${20 - want}, or set secondaryApplyNice to 0`);
    }
  }
}

/** SecondaryNice for the calling thread (one that never changes anything when the increment resolves to 0). */
export function secondaryNiceForThisThread(self: number, setting: number | 'auto', warn: (message: string) => void): SecondaryNice {
  const base = getPriority(0);
  const increment = resolveSecondaryApplyNice(setting, base, process.platform, mayRestoreNice);
  return new SecondaryNice(self, base, increment, (n) => setPriority(0, n), warn);
}
