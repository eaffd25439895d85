/**
 * Client histories of the replicated key-value state machine, as recorded by the simulator and
 * by the process-level tests, and checked for linearizability.
 *
 * Times are integers in any monotonic unit (the simulator uses simulated microseconds).
 * An operation whose outcome is unknown (timed out, or rejected with "outcome unknown") has
 * `returnTime: null`: it may have taken effect at any point after `callTime`, or never.
 */
export type KvValue = string | null;

export type KvInput =
  | { readonly kind: 'put'; readonly value: string }
  | { readonly kind: 'get' }
  | { readonly kind: 'cas'; readonly expected: KvValue; readonly value: string };

/** put → 'ok'; get → the value read (null = absent); cas → whether it swapped. */
export type KvOutput = 'ok' | KvValue | boolean;

export interface KvOperation {
  readonly id: number;
  readonly clientId: number;
  readonly key: string;
  readonly input: KvInput;
  readonly callTime: number;
  /** null = outcome unknown. */
  readonly returnTime: number | null;
  /** Meaningless when returnTime is null. */
  readonly output: KvOutput;
}
