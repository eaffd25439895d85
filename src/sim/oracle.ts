/**
 * The agreement oracle. It computes "chosen" on its own, from what acceptors made durable — a
 * quorum durably accepted the same (decree, ballot) — and never from any replica's commit claims.
 * Every execution of a decree by any replica is checked against it.
 *
 * "Chosen" in Paxos is a historical fact: once a quorum has accepted (d, b, v), v is chosen for d
 * forever, even if some of those acceptors later crash or lose their disks. So the oracle only
 * ever adds acceptances; it never removes them.
 */
import type { DecreeValue } from '../core/types.js';

const decoder = new TextDecoder();
const digests = new WeakMap<DecreeValue, string>();

/** A string that is equal for equal values (commands compared by their bytes). */
export function valueDigest(v: DecreeValue): string {
  let d = digests.get(v);
  if (d !== undefined) return d;
  if (v.kind === 'noop') d = 'noop';
  else if (v.kind === 'config') d = `config:${v.members.join(',')}`;
  else d = `batch:${v.commands.map((c) => decoder.decode(c)).join('\u0001')}`;
  digests.set(v, d);
  return d;
}

export class AgreementOracle {
  /** decree → ballot → { digest, acceptors }. */
  private readonly accepted = new Map<number, Map<number, { digest: string; acceptors: Set<number> }>>();
  private readonly chosen = new Map<number, string>();
  private readonly chosenAt = new Map<number, number>();
  /** Per acceptor, the highest ballot it has durably promised (or accepted). */
  private readonly durablePromise = new Map<number, number>();
  violations: string[] = [];

  constructor(private readonly quorumOf: (decree: number) => number) {}

  /** Acceptor `node` has durably promised `ballot`. */
  durablePromised(node: number, ballot: number): void {
    if (ballot > (this.durablePromise.get(node) ?? 0)) this.durablePromise.set(node, ballot);
  }

  /**
   * Acceptor `node` has durably accepted (decree, ballot, value). Paxos's acceptor rule is checked
   * here too: an acceptor never accepts below a ballot it durably promised — even after a crash
   * or with a wiped disk, because a promise, once given, was relied on by some candidate.
   */
  durableAccept(node: number, decree: number, ballot: number, value: DecreeValue, time: number): void {
    // Recovery re-reports old records: an acceptance already counted is not a new one.
    if (this.accepted.get(decree)?.get(ballot)?.acceptors.has(node)) return;
    const promised = this.durablePromise.get(node) ?? 0;
    if (ballot < promised) {
      this.violations.push(`acceptor ${node} accepted decree ${decree} at ballot ${ballot} after durably promising ${promised}`);
      return;
    }
    this.durablePromised(node, ballot);
    let byBallot = this.accepted.get(decree);
    if (!byBallot) this.accepted.set(decree, (byBallot = new Map()));
    const digest = valueDigest(value);
    let slot = byBallot.get(ballot);
    if (!slot) byBallot.set(ballot, (slot = { digest, acceptors: new Set() }));
    if (slot.digest !== digest) {
      this.violations.push(`decree ${decree}: two values accepted at ballot ${ballot}`);
      return;
    }
    slot.acceptors.add(node);
    if (slot.acceptors.size < this.quorumOf(decree)) return;
    const prior = this.chosen.get(decree);
    if (prior === undefined) {
      this.chosen.set(decree, digest);
      this.chosenAt.set(decree, time);
    } else if (prior !== digest) {
      this.violations.push(`decree ${decree}: two different values chosen (ballot ${ballot})`);
    }
  }

  /** Replica `node` executed `value` as decree `decree`: it must be the chosen value. */
  executed(node: number, decree: number, value: DecreeValue): void {
    const chosen = this.chosen.get(decree);
    if (chosen === undefined) {
      this.violations.push(`replica ${node} executed decree ${decree} before any quorum durably accepted it`);
    } else if (chosen !== valueDigest(value)) {
      this.violations.push(`replica ${node} executed decree ${decree} with a value that was not chosen`);
    }
  }

  /** Digests of every chosen value, in no particular order. */
  chosenDigests(): IterableIterator<string> {
    return this.chosen.values();
  }

  chosenValue(decree: number): string | undefined {
    return this.chosen.get(decree);
  }

  /** Time the decree became chosen, or undefined. */
  chosenTime(decree: number): number | undefined {
    return this.chosenAt.get(decree);
  }

  get chosenCount(): number {
    return this.chosen.size;
  }
}
