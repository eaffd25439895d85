/**
 * Options of the pure core: every bound and timer, with units in the names, validated once into a
 * frozen object. Errors name the field. Relationships between timers are asserted here, in one
 * place: checkQuorumTicks < newLeaderGracePeriodTicks ≤ electionTimeoutTicksMin.
 */
import { BALLOT_ID_SPAN } from './ballot.js';
import type { DecreeValue } from './types.js';

/** Deliberate bugs, for proving the simulator's checkers can fail. Never set in production. */
export type CoreMutation =
  | 'ackBeforePersist'
  | 'skipPhase1'
  | 'adoptOneLog'
  | 'noNoopFill'
  | 'executeLowerBallotCopy'
  | 'forgetPromiseOnRestart';

export interface CoreOptions {
  readonly replicaId: number;
  /** Member replica ids of the initial configuration. */
  readonly members: readonly number[];
  readonly configNumber?: number;
  /** Random election timeout in [min, max] ticks without hearing from a primary. */
  readonly electionTimeoutTicksMin?: number;
  readonly electionTimeoutTicksMax?: number;
  readonly heartbeatTicks?: number;
  /** A primary that heard from no quorum for this long steps down. */
  readonly checkQuorumTicks?: number;
  /** A replica that heard from a live primary this recently refuses a higher Prepare. */
  readonly newLeaderGracePeriodTicks?: number;
  /** Resend Prepare / Accept / Fetch to silent peers after this many ticks. */
  readonly prepareRetryTicks?: number;
  readonly acceptRetryTicks?: number;
  readonly fetchRetryTicks?: number;
  /** Decrees in flight (proposed, not yet known chosen) at once. */
  readonly pipelineDepth?: number;
  readonly batchCountMax?: number;
  readonly batchBytesMax?: number;
  /** Commands queued at the primary before `propose` answers busy. */
  readonly proposalQueueMax?: number;
  /**
   * Committed decrees kept in memory below the commit point (for catch-up of slightly lagging
   * peers). Older ones are compacted: served from the log on disk (Ready.readLog), and reported
   * in phase 1 as compacted. Bounds the core's memory. Default 128: a decree may hold up to
   * batchCountMax commands, and every retained command is an object the garbage collector copies
   * or marks (1024 full decrees measured +25–35 % on the p99 latency at 4,096 in flight).
   */
  readonly retainDecrees?: number;
  /**
   * How the primary holds a batch it cuts (default: a plain `{ kind: 'batch', commands }`). The
   * runtime encodes it at once (EncodedBatch.of in src/codec/value-body.ts): one object per
   * decree for as long as the core retains it, and the queued commands' views die young.
   * Must return a batch value holding exactly `commands`, in order.
   */
  readonly makeBatch?: (commands: Uint8Array[]) => DecreeValue;
  /** Entries per PrepareAccepted chunk / FetchReply (the message size bound). */
  readonly messageEntriesMax?: number;
  /**
   * Before preparing, ask peers' status for at most catchUpTicksMax and fetch the committed
   * decrees they have. Liveness only: the protocol is safe with it off.
   */
  readonly catchUpBeforePrepare?: boolean;
  /**
   * Before preparing, require that a quorum (with ourselves) sees no live primary, so that a
   * replica cut off from a healthy primary does not persist a higher ballot and depose it on
   * return (Raft's pre-vote; RSL's status query). Liveness only: safe with it off.
   */
  readonly preVote?: boolean;
  readonly catchUpTicksMax?: number;
  /** Decrees already executed by the state machine (restored from a checkpoint). */
  readonly executedUpTo?: number;
  /** Run O(n) invariant sweeps after every input. */
  readonly verify?: boolean;
  /** Seeded random source in [0, 1): the core never uses Math.random. */
  readonly random: () => number;
  readonly mutation?: CoreMutation | null;
}

export type ResolvedCoreOptions = Readonly<Required<Omit<CoreOptions, 'mutation'>>> & {
  readonly mutation: CoreMutation | null;
};

export class CoreOptionsError extends Error {
  readonly code = 'PAXLINE_BAD_OPTION';
  constructor(readonly field: string, message: string) {
    super(`core option ${field}: ${message}`);
    this.name = 'CoreOptionsError';
  }
}

const DEFAULTS = {
  configNumber: 1,
  electionTimeoutTicksMin: 10,
  electionTimeoutTicksMax: 20,
  heartbeatTicks: 2,
  checkQuorumTicks: 6,
  newLeaderGracePeriodTicks: 8,
  prepareRetryTicks: 4,
  acceptRetryTicks: 4,
  fetchRetryTicks: 4,
  pipelineDepth: 32,
  batchCountMax: 1024,
  batchBytesMax: 64 * 1024,
  proposalQueueMax: 65536,
  messageEntriesMax: 64,
  retainDecrees: 128,
  catchUpBeforePrepare: true,
  preVote: true,
  catchUpTicksMax: 6,
  executedUpTo: 0,
  verify: false,
  makeBatch: (commands: Uint8Array[]): DecreeValue => ({ kind: 'batch', commands }),
} as const;

function positiveInt(field: string, value: number, min = 1): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new CoreOptionsError(field, `must be an integer ≥ ${min}, got ${String(value)}`);
  }
}

export function resolveCoreOptions(options: CoreOptions): ResolvedCoreOptions {
  const o = {
    ...DEFAULTS,
    ...stripUndefined(options),
    replicaId: options.replicaId,
    members: options.members,
    random: options.random,
    mutation: options.mutation ?? null,
  };
  positiveInt('replicaId', o.replicaId, 0);
  if (o.replicaId >= BALLOT_ID_SPAN) throw new CoreOptionsError('replicaId', `must be < ${BALLOT_ID_SPAN}`);
  if (!Array.isArray(o.members) || o.members.length === 0) {
    throw new CoreOptionsError('members', 'must be a non-empty array of replica ids');
  }
  for (const m of o.members) positiveInt('members', m, 0);
  if (new Set(o.members).size !== o.members.length) throw new CoreOptionsError('members', 'duplicate id');
  if (!o.members.includes(o.replicaId)) throw new CoreOptionsError('members', 'must include replicaId');
  for (const field of [
    'configNumber', 'electionTimeoutTicksMin', 'electionTimeoutTicksMax', 'heartbeatTicks',
    'checkQuorumTicks', 'newLeaderGracePeriodTicks', 'prepareRetryTicks', 'acceptRetryTicks',
    'fetchRetryTicks', 'pipelineDepth', 'batchCountMax', 'batchBytesMax', 'proposalQueueMax',
    'messageEntriesMax', 'catchUpTicksMax', 'retainDecrees',
  ] as const) {
    positiveInt(field, o[field]);
  }
  positiveInt('executedUpTo', o.executedUpTo, 0);
  if (o.electionTimeoutTicksMax < o.electionTimeoutTicksMin) {
    throw new CoreOptionsError('electionTimeoutTicksMax', 'must be ≥ electionTimeoutTicksMin');
  }
  if (!(o.checkQuorumTicks < o.newLeaderGracePeriodTicks)) {
    throw new CoreOptionsError('checkQuorumTicks', 'must be < newLeaderGracePeriodTicks');
  }
  if (!(o.newLeaderGracePeriodTicks <= o.electionTimeoutTicksMin)) {
    throw new CoreOptionsError('newLeaderGracePeriodTicks', 'must be ≤ electionTimeoutTicksMin');
  }
  if (!(o.heartbeatTicks < o.checkQuorumTicks)) {
    throw new CoreOptionsError('heartbeatTicks', 'must be < checkQuorumTicks');
  }
  if (typeof o.random !== 'function') throw new CoreOptionsError('random', 'must be a function');
  if (typeof o.makeBatch !== 'function') throw new CoreOptionsError('makeBatch', 'must be a function');
  return Object.freeze(o) as ResolvedCoreOptions;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
