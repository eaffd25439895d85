/**
 * The vocabulary of the pure core: decree values, protocol messages, durable records and the
 * `Ready` to-do list the core hands to whoever drives it (the simulator or the runtime).
 *
 * Glossary (used everywhere, one word one meaning):
 *  - ballot: (counter, replicaId) packed into a Number, see ballot.ts.
 *  - decree: a numbered slot of the replicated log, 1-based, holding one value (a batch of
 *    commands, a no-op, or a configuration).
 *  - accepted: an acceptor durably recorded (decree, ballot, value).
 *  - chosen / committed: a quorum accepted the same (decree, ballot); `committed` is the highest
 *    decree such that it and every decree below it are known chosen by this replica.
 *  - executed: handed to the state machine, strictly in decree order, exactly once per run.
 */

/**
 * A decree's value. Commands are opaque bytes to the core. A batch with `encoded: true` also
 * carries `body`, its wire encoding, which a codec built or checked (the runtime's EncodedBatch,
 * codec/value-body.ts): its commands are views of `body`, cut out only when read.
 */
export type DecreeValue =
  | { readonly kind: 'noop' }
  | { readonly kind: 'batch'; readonly commands: readonly Uint8Array[]; readonly encoded?: true; readonly body?: Uint8Array }
  | { readonly kind: 'config'; readonly members: readonly number[] };

export const NOOP: DecreeValue = Object.freeze({ kind: 'noop' });

/** One accepted decree as reported in phase 1 and served by catch-up. */
export interface Entry {
  readonly decree: number;
  readonly ballot: number;
  readonly value: DecreeValue;
}

interface Envelope {
  readonly from: number;
  readonly to: number;
  /** Configuration number of the sender; protocol messages of another one are dropped. */
  readonly config: number;
}

/** Phase 1a: asks acceptors to promise `ballot` and report every decree accepted ≥ fromDecree. */
export interface Prepare extends Envelope {
  readonly type: 'prepare';
  readonly ballot: number;
  readonly fromDecree: number;
}

/**
 * Phase 1b, one chunk of it: every copy the acceptor holds in [coverFrom, coverTo]. The reply is
 * complete when chunks tile [fromDecree, COVER_END]. Chunks say what they cover, rather than
 * "chunk i of n", because an acceptor's copies can change between two answers to the same Prepare
 * (catch-up adds learned copies; a restart loses undurable ones), so "chunk 2 of 2" from one
 * answer and "chunk 1 of 2" from another could leave a decree uncovered. Combining chunks of
 * different answers by range is safe: each decree is reported from some answer given under the
 * same promise.
 */
export interface PrepareAccepted extends Envelope {
  readonly type: 'prepareAccepted';
  readonly ballot: number;
  readonly fromDecree: number;
  readonly coverFrom: number;
  /** COVER_END for the last chunk. */
  readonly coverTo: number;
  /**
   * Decrees ≤ this are chosen and the acceptor no longer holds them in memory (compacted; its
   * log on disk still does). 0 = nothing compacted. A candidate whose fromDecree is ≤ this lacks
   * chosen decrees the reply cannot report: it must catch up before it may lead.
   */
  readonly compactedUpTo: number;
  readonly entries: readonly Entry[];
}

/** coverTo of a PrepareAccepted's last chunk: "and everything above". */
export const COVER_END = Number.MAX_SAFE_INTEGER;

/**
 * A refusal of a Prepare. `sticky` means "I heard from a live primary within the grace period":
 * the refusing replica changed no state. Otherwise `promised` is the higher ballot it promised.
 */
export interface PrepareRefused extends Envelope {
  readonly type: 'prepareRefused';
  readonly ballot: number;
  readonly promised: number;
  readonly sticky: boolean;
}

/** Phase 2a. Carries the sender's commit point, valid together with `ballot`. */
export interface Accept extends Envelope {
  readonly type: 'accept';
  readonly ballot: number;
  readonly decree: number;
  readonly value: DecreeValue;
  readonly committed: number;
}

/** Phase 2b: sent only after the accept record is durable. */
export interface Accepted extends Envelope {
  readonly type: 'accepted';
  readonly ballot: number;
  readonly decree: number;
}

/** Rejection of an Accept or Heartbeat whose ballot is below the receiver's promise. */
export interface Nack extends Envelope {
  readonly type: 'nack';
  readonly ballot: number;
  readonly promised: number;
}

/** The primary's liveness beacon; carries its commit point, valid together with `ballot`. */
export interface Heartbeat extends Envelope {
  readonly type: 'heartbeat';
  readonly ballot: number;
  readonly committed: number;
  /**
   * Retention floor: every member has a durable commit point ≥ this, so no member will ever need
   * decrees ≤ it from anyone's log (0 = unknown). Monotonic fact: receivers keep the highest seen.
   */
  readonly floor: number;
}

export interface HeartbeatAck extends Envelope {
  readonly type: 'heartbeatAck';
  readonly ballot: number;
  /** The sender's durable commit point (its highest commit record known durable). */
  readonly durableCommitted: number;
}

export interface StatusQuery extends Envelope {
  readonly type: 'statusQuery';
}

export interface StatusResponse extends Envelope {
  readonly type: 'statusResponse';
  readonly committed: number;
  readonly promised: number;
  /** True when the responder heard from a live primary within its grace period. */
  readonly primaryRecent: boolean;
}

/** Catch-up request for committed decrees [fromDecree, toDecree]. */
export interface Fetch extends Envelope {
  readonly type: 'fetch';
  readonly fromDecree: number;
  readonly toDecree: number;
}

/** Catch-up reply: only decrees the sender knows are committed, consecutive, with ballots. */
export interface FetchReply extends Envelope {
  readonly type: 'fetchReply';
  readonly entries: readonly Entry[];
  readonly committed: number;
}

export type Message =
  | Prepare
  | PrepareAccepted
  | PrepareRefused
  | Accept
  | Accepted
  | Nack
  | Heartbeat
  | HeartbeatAck
  | StatusQuery
  | StatusResponse
  | Fetch
  | FetchReply;

export type MessageType = Message['type'];

/** Message types that cross configurations (status and catch-up); the rest are dropped. */
export const CROSS_CONFIG_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'statusQuery',
  'statusResponse',
  'fetch',
  'fetchReply',
]);

/**
 * Durable records, appended to one ordered log. Recovery rules (see Replica.restore):
 * promised = the highest ballot in any record; per decree the highest-ballot copy wins;
 * committed = the highest commit record.
 */
export type LogRecord =
  | { readonly type: 'promise'; readonly ballot: number }
  | { readonly type: 'accept'; readonly decree: number; readonly ballot: number; readonly value: DecreeValue }
  /**
   * A chosen value copied by catch-up, under the ballot its server holds it at. It is not a vote,
   * but recovery treats it like an accept: reporting a chosen value in phase 1 is always safe.
   */
  | { readonly type: 'learned'; readonly decree: number; readonly ballot: number; readonly value: DecreeValue }
  | { readonly type: 'commit'; readonly decree: number };

export interface PersistItem {
  /** Strictly increasing per replica incarnation, starting at 1. */
  readonly seq: number;
  readonly record: LogRecord;
}

/**
 * A fetch the core can no longer answer from memory (the decrees were compacted): the driver
 * reads the committed decrees [fromDecree, toDecree] from its log — per decree the highest-ballot
 * accept or learned copy — and sends them to `to` as a FetchReply with `committed`.
 */
export interface LogRead {
  readonly to: number;
  readonly fromDecree: number;
  readonly toDecree: number;
  readonly committed: number;
}

export interface DeferredMessage {
  /** Send only once every record with seq ≤ afterSeq is durable. */
  readonly afterSeq: number;
  readonly message: Message;
}

export type Role = 'secondary' | 'preparing' | 'primary';

/**
 * Ready: everything the core wants done, taken with `Replica.takeReady()`.
 *
 * Ordering duties of the driver, field by field:
 *  - `persist`: append in array order, after every earlier Ready's records; report durability with
 *    `persisted(seq)`, which promises that every record with a seq ≤ that one is durable.
 *  - `send`: may go out at once, in any order; the network may lose, duplicate or reorder them.
 *  - `readLog`: fetches to answer from the log on disk (decrees compacted from memory); like
 *    `send`, best effort.
 *  - `sendAfterPersist`: each message may leave only AFTER `persisted(afterSeq)` would be true
 *    (the record it depends on — a promise, a candidate's own ballot, an accept — is durable).
 *  - `execute`: committed decrees, contiguous and in decree order, each exactly once; apply them
 *    in this order, after the previous Ready's. Applying needs no durability first: they are chosen.
 *  - `dropped`: commands this replica will not see through. `neverProposed` were never put in a
 *    decree (safe to reject as "not primary"); `outcomeUnknown` were proposed and leadership was
 *    lost, so they may or may not be executed later.
 *  - `role`: set when the announced role changed (notifyStatus); a new primary is announced only
 *    once its re-proposed range is chosen.
 */
export interface Ready {
  persist: PersistItem[];
  send: Message[];
  readLog: LogRead[];
  sendAfterPersist: DeferredMessage[];
  execute: Entry[];
  dropped: { neverProposed: Uint8Array[]; outcomeUnknown: Uint8Array[] };
  role: Role | null;
}

export function emptyReady(): Ready {
  return {
    persist: [],
    send: [],
    readLog: [],
    sendAfterPersist: [],
    execute: [],
    dropped: { neverProposed: [], outcomeUnknown: [] },
    role: null,
  };
}

export function readyIsEmpty(r: Ready): boolean {
  return (
    r.persist.length === 0 &&
    r.send.length === 0 &&
    r.readLog.length === 0 &&
    r.sendAfterPersist.length === 0 &&
    r.execute.length === 0 &&
    r.dropped.neverProposed.length === 0 &&
    r.dropped.outcomeUnknown.length === 0 &&
    r.role === null
  );
}
