/**
 * The user's state machine: RSL's callbacks in TypeScript form. The module named by
 * `ReplicaOptions.stateMachine` is loaded INSIDE THE APPLY WORKER; its default export (or its
 * export `createStateMachine`) is a factory `(init: StateMachineInit) => StateMachine`.
 *
 * Threading: every callback runs on the apply worker's thread, one at a time, never concurrently
 * with another callback. `execute` and `executeFastRead` must be synchronous and deterministic
 * (same commands in the same order → same state and results on every replica): no clock, no
 * randomness, no I/O whose outcome differs between replicas. A callback that throws stops the
 * replica (a state machine that diverged must not keep voting).
 */

export interface StateMachineInit {
  /** This replica's id. */
  readonly replicaId: number;
  /** The cluster's member ids. */
  readonly members: readonly number[];
  /** Free-form options from `ReplicaOptions.stateMachineOptions` (structured-cloneable). */
  readonly options: unknown;
}

/** Appends bytes to a checkpoint stream (copied: the caller may reuse its buffer). */
export interface StateWriter {
  write(bytes: Uint8Array): void;
}

/** Reads a checkpoint stream back: the next 1..maxBytes bytes, or null at its end. */
export interface StateReader {
  read(maxBytes: number): Uint8Array | null;
}

export interface ExecuteContext {
  /** The decree this command was chosen in. */
  readonly decree: number;
}

export type ReplicaRole = 'secondary' | 'preparing' | 'primary';

export interface ReplicaStatusNote {
  readonly role: ReplicaRole;
  /** The primary's replica id when known, else -1. */
  readonly primary: number;
  readonly ballot: number;
}

export interface StateMachine {
  /**
   * Executes one committed command; returns the result handed to the submitter's promise.
   * `command` views the runtime's shared ring memory and is valid only during the call: copy
   * whatever you keep. The result is copied out by the runtime, so it may be reused afterwards.
   */
  execute(command: Uint8Array, context: ExecuteContext): Uint8Array;
  /** Answers a read from local state without going through the log (may be stale). */
  executeFastRead?(query: Uint8Array): Uint8Array;
  /** Writes the whole state (called between two executes; the stream is checksummed on disk). */
  saveState?(writer: StateWriter): void;
  /** Replaces the state with one saved by saveState. */
  loadState?(reader: StateReader): void;
  /** The replica's role changed. */
  notifyStatus?(status: ReplicaStatusNote): void;
  notifyConfigurationChanged?(members: readonly number[]): void;
  /** Return false to keep this replica from standing for primary (e.g. it is being drained). */
  canBecomePrimary?(): boolean;
  /** Return false to ignore messages from this replica id. */
  acceptMessageFrom?(replicaId: number): boolean;
  /** The replica is closing; release resources. */
  shutDown?(): void;
}

export type StateMachineFactory = (init: StateMachineInit) => StateMachine;
