/**
 * The pure multi-Paxos replica: acceptor, learner and (when elected) proposer, with RSL's
 * semantics plus a pipelined window. No I/O, no clock, no randomness of its own: inputs are
 * `propose`, `receive`, `tick`, `persisted`; the output is a `Ready` (see types.ts for the
 * ordering duties of each field).
 *
 * Invariants (checked by `checkInvariants`, O(1) parts always, sweeps when `verify` is on):
 *  - executed === committed: committed decrees are emitted for execution at once, in order.
 *  - every decree ≤ committed has an entry in `log` (no compaction yet).
 *  - while leading, `leader.ballot === promised`; a higher promise ends the leadership first.
 *  - a primary's decrees in flight lie in (committed, nextDecree) and number ≤ pipelineDepth;
 *    each is in `log` at the primary's ballot.
 *  - persistedSeq < nextSeq: the driver never reports a record durable before it exists.
 *
 * Safety rules this file implements (DESIGN §2), each at the place named:
 *  - durable before acting: promise → `onPrepare`, own ballot → `startPhase1`, accept →
 *    `onAccept` (replies go out as `sendAfterPersist`); own vote → `onPersisted`.
 *  - phase 1 over a window, merged per decree, holes filled with no-ops → `finishPhase1`.
 *  - explicit commit with ballot: a copy counts as chosen only at the notice's ballot →
 *    `onCommitNotice`; otherwise it is fetched again (`startFetch`).
 *  - restart: highest ballot anywhere is the promise, highest-ballot record per decree wins,
 *    only the persisted commit point is trusted → `Replica.restore`.
 */
import { assert } from './assert.js';
import { BALLOT_NONE, ballotCounter, makeBallot } from './ballot.js';
import { type CoreOptions, type ResolvedCoreOptions, resolveCoreOptions } from './options.js';
import {
  COVER_END, CROSS_CONFIG_TYPES, type DecreeValue, type Entry, type LogRecord, type Message, NOOP,
  type Ready, type Role, emptyReady,
} from './types.js';
import { checkMessage, sameValue } from './validate.js';

interface LogEntry {
  ballot: number;
  value: DecreeValue;
  /** A chosen value copied by catch-up: not a vote (docs/decisions/0002). */
  learned: boolean;
  /** Seq of the record that holds this copy (0 = restored, already durable). */
  seq: number;
}

/** Chunks of one acceptor's phase-1 answers, by the decree each starts at. */
interface PromiseReply {
  readonly byStart: Map<number, { readonly coverTo: number; readonly entries: readonly Entry[] }>;
  /** The tiled entries, once chunks cover [fromDecree, COVER_END]; null until then. */
  complete: Entry[] | null;
}

interface InFlight {
  readonly value: DecreeValue;
  readonly acks: Set<number>;
  readonly selfSeq: number;
  selfDurable: boolean;
  chosen: boolean;
  sentTick: number;
}

interface LeaderState {
  readonly ballot: number;
  readonly fromDecree: number;
  phase: 1 | 2;
  readonly selfPromiseSeq: number;
  selfPromised: boolean;
  readonly replies: Map<number, PromiseReply>;
  readonly complete: Set<number>;
  readonly stickyRefusals: Set<number>;
  phase1DeadlineTick: number;
  lastPrepareTick: number;
  /** Phase 2: decrees ≤ reproposeEnd are re-proposals of phase 1's merge. */
  reproposeEnd: number;
  readonly reproposals: Map<number, DecreeValue>;
  nextDecree: number;
  readonly inflight: Map<number, InFlight>;
  queue: Uint8Array[];
  queueHead: number;
  readonly lastHeardTick: Map<number, number>;
  lastHeartbeatTick: number;
  announced: boolean;
}

/** What recovery learned beyond the records themselves. */
export interface RestoreHints {
  /**
   * Corruption destroyed records about decrees ≤ this (the log's high-water mark): this replica
   * may have lost votes, so it votes in nothing — no promise, no accept, no candidacy — until it
   * has learned every decree up to here as committed. Then its lost votes no longer matter: those
   * decrees are chosen, and it holds and reports their chosen values.
   */
  readonly repairUpTo?: number;
  /** The promised ballot from the mirrored metadata file (a damaged promise record is lost). */
  readonly promisedAtLeast?: number;
  /**
   * The decree of the checkpoint the state machine loaded (= options.executedUpTo). Decrees up to
   * it are executed, hence chosen, so the commit point is at least this even when the log holds
   * no commit record that high or no copies that low (segments retired below a checkpoint).
   */
  readonly checkpointDecree?: number;
}

export type ProposeResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'notPrimary' | 'busy'; readonly primaryHint: number };

export interface CoreStats {
  electionsStarted: number;
  phase1Started: number;
  becamePrimary: number;
  stepDowns: number;
  phase1WithHoles: number;
  noopsFilled: number;
  staleCopiesRefetched: number;
  fetchesSent: number;
  repairsStarted: number;
  repairsCompleted: number;
  decreesProposed: number;
  stickyRefusals: number;
  messagesRejected: number;
  messagesDroppedConfig: number;
  /** Phase 1 abandoned to catch up: an acceptor had compacted chosen decrees we lacked. */
  compactionAborts: number;
}

export interface CoreStatus {
  readonly id: number;
  readonly role: Role;
  /** 0 = not leading; 1 = phase 1; 2 = phase 2 (re-proposing until announced, then primary). */
  readonly phase: 0 | 1 | 2;
  readonly promised: number;
  readonly leaderBallot: number;
  readonly committed: number;
  readonly executed: number;
  readonly maxAccepted: number;
  readonly knownPrimary: number;
  readonly inflight: number;
  readonly queued: number;
  readonly needsRepair: boolean;
}

/**
 * How many of `commands`, from index `from`, make the next batch: up to `countMax` commands, and
 * no more bytes than `bytesMax` unless a single command is larger (it goes alone). The rule the
 * primary cuts decrees by (and the runtime's batchDelayMs release, consensus-stage.ts).
 */
export function batchLength(commands: readonly Uint8Array[], from: number, countMax: number, bytesMax: number): number {
  let n = 0;
  let bytes = 0;
  while (from + n < commands.length && n < countMax) {
    const size = commands[from + n]!.length;
    if (n > 0 && bytes + size > bytesMax) break;
    bytes += size;
    n++;
  }
  return n;
}

const FULL_SWEEP_EVERY_INPUTS = 256;

export class Replica {
  readonly id: number;
  private readonly o: ResolvedCoreOptions;
  private readonly members: readonly number[];
  private readonly peers: readonly number[];
  private readonly configNumber: number;
  private now = 0;
  private role: Role = 'secondary';
  private promised = BALLOT_NONE;
  /** Seq of the record that established `promised`; replies to it wait for this seq. */
  private promiseSeq = 0;
  private highestSeen = BALLOT_NONE;
  private readonly log = new Map<number, LogEntry>();
  private maxAccepted = 0;
  private committed = 0;
  private committedRecorded = 0;
  private executed: number;
  private nextSeq = 1;
  private persistedSeq = 0;
  private primaryContactTick = -Infinity;
  private primaryContactBallot = BALLOT_NONE;
  private knownPrimary = -1;
  private electionDeadlineTick = 0;
  private candidacyAllowed = true;
  /** Decrees ≤ this were dropped from `log` (chosen, executed); the log on disk still has them. */
  private compactedUpTo = 0;
  /** Highest commit record known durable, and commit records awaiting durability (seq, decree). */
  private durableCommitted = 0;
  private readonly commitRecordsInFlight: number[] = [];
  /** Peers' durable commit points (from heartbeat acks), and the highest floor a primary sent. */
  private readonly peerDurable = new Map<number, number>();
  private floorHeard = 0;
  /** The pre-vote: status asked before preparing; `noPrimary` = peers that see no live primary. */
  private query: { deadlineTick: number; responded: Set<number>; noPrimary: Set<number> } | null = null;
  private fetch: { peer: number; toDecree: number; sentTick: number } | null = null;
  /** Highest commit point a primary announced that our copies could not yet match. */
  private commitTarget = { decree: 0, from: -1, sinceTick: 0 };
  private leader: LeaderState | null = null;
  private ready: Ready = emptyReady();
  private inputs = 0;
  /** Needs-repair while committed < repairUpTo (see RestoreHints). */
  private repairUpTo = 0;
  readonly stats: CoreStats = {
    electionsStarted: 0, phase1Started: 0, becamePrimary: 0, stepDowns: 0, phase1WithHoles: 0,
    noopsFilled: 0, staleCopiesRefetched: 0, fetchesSent: 0, repairsStarted: 0, repairsCompleted: 0, decreesProposed: 0,
    stickyRefusals: 0, messagesRejected: 0, messagesDroppedConfig: 0, compactionAborts: 0,
  };

  constructor(options: CoreOptions) {
    this.o = resolveCoreOptions(options);
    this.id = this.o.replicaId;
    this.members = [...this.o.members].sort((a, b) => a - b);
    this.peers = this.members.filter((m) => m !== this.id);
    this.configNumber = this.o.configNumber;
    this.executed = this.o.executedUpTo;
    this.resetElectionTimer();
  }

  /**
   * Rebuilds a replica from its durable records, in log order. Promised = the highest ballot in
   * any promise or accept record (a learned copy is neither: see docs/decisions/0002); per decree
   * the highest-ballot copy wins (not the last one); committed = the last persisted commit point
   * — nothing above it executes until a primary confirms it.
   */
  static restore(options: CoreOptions, records: Iterable<LogRecord>, hints: RestoreHints = {}): Replica {
    const r = new Replica(options);
    const forget = r.o.mutation === 'forgetPromiseOnRestart';
    for (const rec of records) {
      if (rec.type === 'promise') {
        if (!forget) r.promised = Math.max(r.promised, rec.ballot);
      } else if (rec.type === 'accept' || rec.type === 'learned') {
        const learned = rec.type === 'learned';
        if (!learned) r.promised = Math.max(r.promised, rec.ballot);
        const have = r.log.get(rec.decree);
        if (!have || have.ballot < rec.ballot || (have.learned && !learned && have.ballot === rec.ballot)) {
          r.storeCopy(rec.decree, rec.ballot, rec.value, 0, learned);
        }
      } else {
        r.committed = Math.max(r.committed, rec.decree);
      }
    }
    if (!forget) r.promised = Math.max(r.promised, hints.promisedAtLeast ?? 0);
    r.highestSeen = r.promised;
    const checkpoint = hints.checkpointDecree ?? 0;
    if (checkpoint > 0) {
      assert(checkpoint === r.executed, 'checkpointDecree must equal options.executedUpTo');
      r.committed = Math.max(r.committed, checkpoint);
      for (let d = r.compactedUpTo + 1; d <= checkpoint; d++) r.log.delete(d);
      r.compactedUpTo = checkpoint;
    }
    const repairUpTo = hints.repairUpTo ?? 0;
    if (repairUpTo > 0) {
      // Damaged records were lost: trust the commit point only as far as copies survived.
      let d = r.compactedUpTo;
      while (d < r.committed && r.log.has(d + 1)) d++;
      r.committed = d;
      r.repairUpTo = repairUpTo;
      r.stats.repairsStarted++;
    }
    r.committedRecorded = r.committed;
    r.durableCommitted = r.committed; // read back from the log: durable
    for (let d = r.compactedUpTo + 1; d <= r.committed; d++) assert(r.log.has(d), 'restored commit point has no copy');
    assert(r.executed <= r.committed, 'executedUpTo above the persisted commit point');
    r.emitExecutions();
    r.compact();
    return r;
  }

  // ─── inputs ────────────────────────────────────────────────────────────────────────────────

  /**
   * Queues a command and cuts decrees at once while the pipeline has room — so each of a run of
   * proposals made one after another may become a decree of its own. A caller holding several
   * commands at once uses enqueue() for each, then proposeQueued(): one batch for all of them.
   */
  propose(command: Uint8Array): ProposeResult {
    const r = this.enqueue(command);
    if (r.ok) this.afterInput();
    return r;
  }

  /** Queues a command (same checks and answers as propose) without cutting a decree yet. */
  enqueue(command: Uint8Array): ProposeResult {
    const l = this.leader;
    if (this.role !== 'primary' || !l) {
      // A new primary still re-proposing its phase-1 range will serve soon: point at itself.
      const hint = l && l.phase === 2 ? this.id : this.knownPrimary;
      return { ok: false, reason: 'notPrimary', primaryHint: hint };
    }
    if (l.queue.length - l.queueHead >= this.o.proposalQueueMax) {
      return { ok: false, reason: 'busy', primaryHint: this.id };
    }
    l.queue.push(command);
    return { ok: true };
  }

  /** Cuts what enqueue() queued into decrees, as far as the pipeline allows (an input, like propose). */
  proposeQueued(): void {
    this.afterInput();
  }

  receive(m: Message): void {
    const problem = checkMessage(m, this.id);
    if (problem !== null || !this.members.includes(m.from)) {
      this.stats.messagesRejected++;
      return;
    }
    if (m.config !== this.configNumber && !CROSS_CONFIG_TYPES.has(m.type)) {
      this.stats.messagesDroppedConfig++;
      return;
    }
    this.dispatch(m);
    this.afterInput();
  }

  tick(): void {
    this.now++;
    const l = this.leader;
    if (l && l.phase === 1) this.tickPhase1(l);
    else if (l) this.tickPrimary(l);
    else if (this.query) {
      if (this.now >= this.query.deadlineTick) this.concludePreVote(true);
    } else if (this.now >= this.electionDeadlineTick) {
      if (this.candidacyAllowed) this.startElection();
      else this.resetElectionTimer();
    }
    if (this.fetch && this.now - this.fetch.sentTick >= this.o.fetchRetryTicks) this.retryFetch();
    const t = this.commitTarget;
    if (!this.fetch && !this.leader && t.decree > this.committed && this.now - t.sinceTick >= 2) this.startFetch(t.from, t.decree);
    this.afterInput();
  }

  /**
   * RSL's canBecomePrimary: while false, this replica starts no election of its own (it still
   * votes, accepts and follows). Liveness only: the protocol is safe either way.
   */
  setCandidacyAllowed(allowed: boolean): void {
    this.candidacyAllowed = allowed;
  }

  /** Every record with seq ≤ upToSeq is durable. */
  persisted(upToSeq: number): void {
    assert(upToSeq < this.nextSeq, 'persisted beyond the last record');
    if (upToSeq <= this.persistedSeq) return;
    this.persistedSeq = upToSeq;
    const c = this.commitRecordsInFlight;
    let i = 0;
    while (i < c.length && c[i]! <= upToSeq) {
      this.durableCommitted = c[i + 1]!;
      i += 2;
    }
    if (i > 0) c.splice(0, i);
    const l = this.leader;
    if (l && l.phase === 1 && !l.selfPromised && l.selfPromiseSeq <= upToSeq) {
      l.selfPromised = true;
      const byStart = new Map([[l.fromDecree, { coverTo: COVER_END, entries: this.entriesFrom(l.fromDecree) }]]);
      this.recordPromiseReply(l, this.id, { byStart, complete: null });
    } else if (l && l.phase === 2) {
      for (const [decree, f] of l.inflight) {
        if (!f.selfDurable && f.selfSeq <= upToSeq) {
          f.selfDurable = true;
          this.checkChosen(l, decree, f);
        }
      }
    }
    this.afterInput();
  }

  takeReady(): Ready {
    const r = this.ready;
    this.ready = emptyReady();
    return r;
  }

  status(): CoreStatus {
    const l = this.leader;
    return {
      id: this.id, role: this.role, phase: l ? l.phase : 0, promised: this.promised, leaderBallot: l ? l.ballot : 0,
      committed: this.committed, executed: this.executed, maxAccepted: this.maxAccepted,
      knownPrimary: this.role === 'primary' ? this.id : this.knownPrimary,
      inflight: l && l.phase === 2 ? l.inflight.size : 0,
      queued: l ? l.queue.length - l.queueHead : 0,
      needsRepair: this.needsRepair(),
    };
  }

  /** The copy this replica holds for a decree, if any (for checkers and tests). */
  copyOf(decree: number): Entry | undefined {
    const e = this.log.get(decree);
    return e ? { decree, ballot: e.ballot, value: e.value } : undefined;
  }

  // ─── dispatch ──────────────────────────────────────────────────────────────────────────────

  private dispatch(m: Message): void {
    switch (m.type) {
      case 'prepare': return this.onPrepare(m.from, m.ballot, m.fromDecree);
      case 'prepareAccepted': return this.onPrepareAccepted(m);
      case 'prepareRefused': return this.onPrepareRefused(m.from, m.ballot, m.promised, m.sticky);
      case 'accept': return this.onAccept(m.from, m.ballot, m.decree, m.value, m.committed);
      case 'accepted': return this.onAccepted(m.from, m.ballot, m.decree);
      case 'nack': return this.onNack(m.ballot, m.promised);
      case 'heartbeat': return this.onHeartbeat(m.from, m.ballot, m.committed, m.floor);
      case 'heartbeatAck': return this.onHeartbeatAck(m.from, m.ballot, m.durableCommitted);
      case 'statusQuery':
        return this.send({
          ...this.env(m.from), type: 'statusResponse', committed: this.committed,
          promised: this.promised, primaryRecent: this.primaryRecent(),
        });
      case 'statusResponse': return this.onStatusResponse(m.from, m.committed, m.promised, m.primaryRecent);
      case 'fetch': return this.onFetch(m.from, m.fromDecree, m.toDecree);
      case 'fetchReply': return this.onFetchReply(m.from, m.entries);
    }
  }

  // ─── acceptor ──────────────────────────────────────────────────────────────────────────────

  private onPrepare(from: number, ballot: number, fromDecree: number): void {
    this.observe(ballot);
    if (this.needsRepair()) return; // votes in nothing: silence, so the candidate asks others
    if (ballot < this.promised) {
      this.send({ ...this.env(from), type: 'prepareRefused', ballot, promised: this.promised, sticky: false });
      return;
    }
    const leading = this.leader !== null && this.leader.phase === 2;
    if (ballot > this.promised && (leading || (this.primaryRecent() && from !== this.knownPrimary))) {
      // Leader stickiness: refuse without changing any state, so a replica that merely lost
      // touch with the primary cannot depose it.
      this.stats.stickyRefusals++;
      this.send({ ...this.env(from), type: 'prepareRefused', ballot, promised: 0, sticky: true });
      return;
    }
    if (ballot > this.promised) {
      this.stepDown();
      this.promised = ballot;
      this.promiseSeq = this.persist({ type: 'promise', ballot });
      this.query = null;
      this.resetElectionTimer();
    }
    const entries = this.entriesFrom(fromDecree);
    const size = this.o.messageEntriesMax;
    for (let i = 0; i === 0 || i < entries.length; i += size) {
      const next = entries[i + size];
      this.reply(this.promiseSeq, {
        ...this.env(from), type: 'prepareAccepted', ballot, fromDecree,
        coverFrom: i === 0 ? fromDecree : entries[i]!.decree,
        coverTo: next ? next.decree - 1 : COVER_END,
        entries: entries.slice(i, i + size),
        compactedUpTo: this.compactedUpTo,
      });
    }
  }

  /**
   * The common prologue of a primary's Accept and Heartbeat: a ballot below our promise gets a
   * nack; otherwise the sender is the primary we follow (any leadership of ours at a lower
   * ballot ends first). Returns whether to go on.
   */
  private admitPrimary(from: number, ballot: number): boolean {
    this.observe(ballot);
    if (ballot < this.promised) {
      this.send({ ...this.env(from), type: 'nack', ballot, promised: this.promised });
      return false;
    }
    if (this.leader && this.leader.ballot < ballot) this.stepDown();
    this.notePrimary(from, ballot);
    return true;
  }

  private onAccept(from: number, ballot: number, decree: number, value: DecreeValue, committed: number): void {
    if (!this.admitPrimary(from, ballot)) return;
    if (this.needsRepair()) {
      this.onCommitNotice(from, ballot, committed); // learn, and fetch, but do not vote
      return;
    }
    const have = this.log.get(decree);
    let seq: number;
    if (have && have.ballot === ballot && !have.learned) {
      seq = have.seq; // a duplicate or a retry: the vote is already (being) persisted
    } else {
      assert(decree > this.committed || !have || sameValue(have.value, value), 'chosen value changed');
      seq = this.persist({ type: 'accept', decree, ballot, value });
      this.storeCopy(decree, ballot, value, seq);
    }
    if (ballot > this.promised) {
      this.promised = ballot;
      this.promiseSeq = seq;
    }
    this.reply(seq, { ...this.env(from), type: 'accepted', ballot, decree });
    this.onCommitNotice(from, ballot, committed);
  }

  private onHeartbeat(from: number, ballot: number, committed: number, floor: number): void {
    if (!this.admitPrimary(from, ballot)) return;
    this.send({ ...this.env(from), type: 'heartbeatAck', ballot, durableCommitted: this.durableCommitted });
    if (floor > this.floorHeard) this.floorHeard = floor;
    this.onCommitNotice(from, ballot, committed);
  }

  /**
   * A primary at `ballot` says every decree ≤ committed is chosen. Our copy of decree d is that
   * chosen value only if we accepted it at this very ballot (the primary proposes one value per
   * decree per ballot); a copy at another ballot, or a missing one, is fetched again.
   */
  private onCommitNotice(from: number, ballot: number, committed: number): void {
    if (committed <= this.committed) return;
    const lowerCopyOk = this.o.mutation === 'executeLowerBallotCopy';
    let d = this.committed + 1;
    for (; d <= committed; d++) {
      const e = this.log.get(d);
      if (!e || (e.ballot !== ballot && !lowerCopyOk)) break;
    }
    this.advanceCommitted(d - 1);
    if (this.committed < committed && committed > this.commitTarget.decree) {
      // The missing copy is often an Accept still on its way (reordered): fetch only if the gap
      // outlives a tick (see `tick`), not on every notice.
      if (this.commitTarget.decree <= this.committed) this.commitTarget.sinceTick = this.now;
      this.commitTarget.decree = committed;
      this.commitTarget.from = from;
    }
  }

  // ─── learner: catch-up ────────────────────────────────────────────────────────────────────

  private startFetch(peer: number, toDecree: number): void {
    if (this.fetch && this.fetch.toDecree >= toDecree) return;
    this.fetch = { peer, toDecree, sentTick: this.now };
    this.sendFetch();
  }

  private sendFetch(): void {
    const f = this.fetch;
    assert(f !== null, 'no fetch in progress');
    this.stats.fetchesSent++;
    f.sentTick = this.now;
    this.send({ ...this.env(f.peer), type: 'fetch', fromDecree: this.committed + 1, toDecree: f.toDecree });
  }

  /** A silent peer: ask the next one, round robin, so a crashed server does not stall us. */
  private retryFetch(): void {
    const f = this.fetch;
    assert(f !== null && this.peers.length > 0, 'retry without fetch');
    const i = this.peers.indexOf(f.peer);
    f.peer = this.peers[(i + 1) % this.peers.length]!;
    this.sendFetch();
  }

  /** Serves only decrees this replica knows are committed, with the ballots of its copies. */
  private onFetch(from: number, fromDecree: number, toDecree: number): void {
    const last = Math.min(toDecree, this.committed, fromDecree + this.o.messageEntriesMax - 1);
    if (fromDecree <= this.compactedUpTo) {
      // Compacted from memory: the driver answers from the log on disk.
      const upTo = Math.min(last, this.compactedUpTo);
      if (upTo >= fromDecree) this.ready.readLog.push({ to: from, fromDecree, toDecree: upTo, committed: this.committed });
      return;
    }
    const entries: Entry[] = [];
    for (let d = fromDecree; d <= last; d++) {
      const e = this.log.get(d);
      assert(e !== undefined, 'committed decree without a copy');
      entries.push({ decree: d, ballot: e.ballot, value: e.value });
    }
    this.send({ ...this.env(from), type: 'fetchReply', entries, committed: this.committed });
  }

  private onFetchReply(from: number, entries: readonly Entry[]): void {
    // A primary's commit point moves only by its own quorums; its window bookkeeping depends on it.
    if (this.leader && this.leader.phase === 2) return;
    const before = this.committed;
    for (const e of entries) {
      if (e.decree <= this.committed) continue;
      if (e.decree !== this.committed + 1) break;
      const have = this.log.get(e.decree);
      if (have && have.ballot !== e.ballot) this.stats.staleCopiesRefetched++;
      if (!have || have.ballot < e.ballot) {
        // A chosen value under a ballot at which it was chosen: safe to report in phase 1.
        this.storeCopy(e.decree, e.ballot, e.value, this.persist({ type: 'learned', ...e }), true);
      } else if (this.o.verify) {
        assert(sameValue(have.value, e.value), 'higher copy of a chosen decree differs');
      }
      this.advanceCommitted(e.decree);
    }
    const f = this.fetch;
    if (f && this.committed >= f.toDecree) this.fetch = null;
    // Ask for the next chunk only when this reply made progress: a duplicated or stale reply
    // must not spawn another request, or duplicates multiply into a fetch storm.
    else if (f && f.peer === from && this.committed > before) this.sendFetch();
    if (this.query && !this.fetch) this.concludePreVote(false);
  }

  // ─── election ──────────────────────────────────────────────────────────────────────────────

  private startElection(): void {
    if (this.needsRepair()) {
      this.resetElectionTimer(); // a replica that may have lost votes must not stand
      const t = this.commitTarget;
      if (this.peers.length > 0 && t.decree <= this.committed) {
        this.commitTarget = { decree: this.repairUpTo, from: this.peers[0]!, sinceTick: this.now - 2 };
      }
      return;
    }
    this.stats.electionsStarted++;
    if (this.peers.length > 0 && (this.o.preVote || this.o.catchUpBeforePrepare)) {
      // Time-bounded: by the deadline we either prepare or stand down until the next timeout.
      this.query = { deadlineTick: this.now + this.o.catchUpTicksMax, responded: new Set(), noPrimary: new Set() };
      for (const p of this.peers) this.send({ ...this.env(p), type: 'statusQuery' });
      return;
    }
    this.startPhase1();
  }

  private onStatusResponse(from: number, committed: number, promised: number, primaryRecent: boolean): void {
    this.observe(promised);
    const q = this.query;
    if (!q) return;
    q.responded.add(from);
    if (!primaryRecent) q.noPrimary.add(from);
    if (this.o.catchUpBeforePrepare && committed > this.committed) this.startFetch(from, committed);
    if (!this.fetch) this.concludePreVote(false);
  }

  /**
   * With `preVote`, the status query is a pre-vote: a candidate raises (and persists) a new
   * ballot only when, with itself, a quorum sees no live primary. Otherwise a replica that merely
   * lost touch with a healthy primary would persist a higher promise, nack that primary's next
   * message and depose it. With `catchUpBeforePrepare` the answers also start catch-up, which is
   * best effort: at the deadline a won pre-vote prepares anyway.
   */
  private concludePreVote(deadline: boolean): void {
    const q = this.query;
    assert(q !== null, 'no pre-vote in progress');
    const won = !this.o.preVote || q.noPrimary.size + 1 >= this.quorumSize();
    const lost = this.o.preVote && q.responded.size - q.noPrimary.size > this.members.length - this.quorumSize();
    if (won && (deadline || q.responded.size === this.peers.length)) {
      this.startPhase1();
    } else if (lost || deadline) {
      this.query = null;
      this.resetElectionTimer();
    }
  }

  private startPhase1(): void {
    this.query = null;
    this.stepDown();
    this.stats.phase1Started++;
    const counter = Math.max(ballotCounter(this.promised), ballotCounter(this.highestSeen)) + 1;
    const ballot = makeBallot(counter, this.id);
    this.promised = ballot;
    this.highestSeen = ballot;
    // The candidate's own ballot is durable before any Prepare leaves: never reuse a ballot.
    const seq = this.persist({ type: 'promise', ballot });
    this.promiseSeq = seq;
    const l = this.newLeader(ballot, seq);
    this.leader = l;
    this.setRole('preparing');
    if (this.o.mutation === 'skipPhase1') {
      this.beginPhase2(l, new Map(), this.committed);
      return;
    }
    for (const p of this.peers) {
      this.reply(seq, { ...this.env(p), type: 'prepare', ballot, fromDecree: l.fromDecree });
    }
    l.lastPrepareTick = this.now;
  }

  private newLeader(ballot: number, selfPromiseSeq: number): LeaderState {
    return {
      ballot, fromDecree: this.committed + 1, phase: 1, selfPromiseSeq, selfPromised: false,
      replies: new Map(), complete: new Set(), stickyRefusals: new Set(),
      phase1DeadlineTick: this.now + this.randomElectionTicks(), lastPrepareTick: this.now,
      reproposeEnd: 0, reproposals: new Map(), nextDecree: 0, inflight: new Map(), queue: [],
      queueHead: 0, lastHeardTick: new Map(), lastHeartbeatTick: -Infinity, announced: false,
    };
  }

  private tickPhase1(l: LeaderState): void {
    if (this.now >= l.phase1DeadlineTick) {
      this.startPhase1(); // no quorum in time: try again with a higher ballot
      return;
    }
    if (this.now - l.lastPrepareTick < this.o.prepareRetryTicks) return;
    l.lastPrepareTick = this.now;
    for (const p of this.peers) {
      if (!l.complete.has(p) && !l.stickyRefusals.has(p)) {
        this.reply(l.selfPromiseSeq, { ...this.env(p), type: 'prepare', ballot: l.ballot, fromDecree: l.fromDecree });
      }
    }
  }

  private onPrepareAccepted(m: Extract<Message, { type: 'prepareAccepted' }>): void {
    const l = this.leader;
    if (!l || l.phase !== 1 || m.ballot !== l.ballot || l.complete.has(m.from)) return;
    if (m.fromDecree !== l.fromDecree) return;
    if (m.compactedUpTo >= l.fromDecree) {
      // The acceptor compacted chosen decrees this candidate has not learned: it cannot report
      // them, so leading now could fill them with no-ops. Stand down and catch up first (the
      // acceptor serves them from its log); the election timer tries again later.
      this.stats.compactionAborts++;
      this.stepDown();
      this.startFetch(m.from, m.compactedUpTo);
      return;
    }
    let reply = l.replies.get(m.from);
    if (!reply) l.replies.set(m.from, (reply = { byStart: new Map(), complete: null }));
    reply.byStart.set(m.coverFrom, { coverTo: m.coverTo, entries: m.entries });
    this.recordPromiseReply(l, m.from, reply);
  }

  /** Counts an acceptor's promise once its chunks tile [fromDecree, COVER_END] without a gap. */
  private recordPromiseReply(l: LeaderState, from: number, reply: PromiseReply): void {
    l.replies.set(from, reply);
    const tiled: Entry[] = [];
    for (let at = l.fromDecree; ;) {
      const chunk = reply.byStart.get(at);
      if (!chunk) return;
      tiled.push(...chunk.entries);
      if (chunk.coverTo === COVER_END) break;
      at = chunk.coverTo + 1;
    }
    reply.complete = tiled;
    l.complete.add(from);
    if (l.selfPromised && l.complete.size >= this.quorumSize()) this.finishPhase1(l);
  }

  private onPrepareRefused(from: number, ballot: number, promised: number, sticky: boolean): void {
    const l = this.leader;
    if (!l || l.phase !== 1 || ballot !== l.ballot) return;
    if (!sticky) {
      this.observe(promised);
      this.stepDown();
      return;
    }
    l.stickyRefusals.add(from);
    // A quorum is out of reach while the others still follow a live primary: back off.
    if (this.members.length - l.stickyRefusals.size < this.quorumSize()) this.stepDown();
  }

  /**
   * Merge per decree: for each decree from fromDecree to the highest reported, the value with the
   * highest ballot among the quorum's replies; a decree no reply holds becomes a no-op.
   */
  private finishPhase1(l: LeaderState): void {
    const best = new Map<number, Entry>();
    let hi = l.fromDecree - 1;
    const replies = [...l.complete].map((id) => l.replies.get(id)!.complete!);
    if (this.o.mutation === 'adoptOneLog') {
      // Deliberate bug: take the longest single log wholesale.
      replies.sort((a, b) => (b.at(-1)?.decree ?? 0) - (a.at(-1)?.decree ?? 0));
      replies.length = 1;
    }
    for (const entries of replies) {
      for (const e of entries) {
        const have = best.get(e.decree);
        if (!have || have.ballot < e.ballot) best.set(e.decree, e);
        hi = Math.max(hi, e.decree);
      }
    }
    const values = new Map<number, DecreeValue>();
    let holes = 0;
    for (let d = l.fromDecree; d <= hi; d++) {
      const e = best.get(d);
      if (e) {
        values.set(d, e.value);
      } else {
        holes++;
        if (this.o.mutation !== 'noNoopFill') values.set(d, NOOP);
      }
    }
    if (holes > 0) this.stats.phase1WithHoles++;
    if (this.o.mutation !== 'noNoopFill') this.stats.noopsFilled += holes;
    this.beginPhase2(l, values, hi);
  }

  private beginPhase2(l: LeaderState, values: Map<number, DecreeValue>, reproposeEnd: number): void {
    l.phase = 2;
    l.reproposeEnd = reproposeEnd;
    for (const [d, v] of values) l.reproposals.set(d, v);
    l.nextDecree = this.committed + 1;
    this.fetch = null;
    for (const p of l.complete) l.lastHeardTick.set(p, this.now);
    this.maybeAnnounce(l);
  }

  // ─── primary ───────────────────────────────────────────────────────────────────────────────

  private tickPrimary(l: LeaderState): void {
    let heard = 1;
    for (const p of this.peers) {
      if (this.now - (l.lastHeardTick.get(p) ?? -Infinity) < this.o.checkQuorumTicks) heard++;
    }
    if (heard < this.quorumSize()) {
      this.stepDown(); // check-quorum: stop heartbeats at once so the others may elect
      return;
    }
    if (this.now - l.lastHeartbeatTick >= this.o.heartbeatTicks) {
      l.lastHeartbeatTick = this.now;
      for (const p of this.peers) {
        this.send({ ...this.env(p), type: 'heartbeat', ballot: l.ballot, committed: this.committed, floor: this.retentionFloor() });
      }
    }
    for (const [decree, f] of l.inflight) {
      if (f.chosen || this.now - f.sentTick < this.o.acceptRetryTicks) continue;
      f.sentTick = this.now;
      for (const p of this.peers) if (!f.acks.has(p)) this.sendAccept(l, p, decree, f.value);
    }
  }

  private sendAccept(l: LeaderState, to: number, decree: number, value: DecreeValue): void {
    this.send({ ...this.env(to), type: 'accept', ballot: l.ballot, decree, value, committed: Math.min(this.committed, decree - 1) });
  }

  /** Fills the window: re-proposals first, then new batches once announced. */
  private flushProposals(l: LeaderState): void {
    while (l.nextDecree - 1 - this.committed < this.o.pipelineDepth) {
      const d = l.nextDecree;
      if (d <= l.reproposeEnd) {
        const v = l.reproposals.get(d);
        l.reproposals.delete(d);
        if (v) this.proposeDecree(l, d, v);
        else l.nextDecree = d + 1; // only under the noNoopFill mutation: a hole left open
      } else if (l.announced && l.queue.length > l.queueHead) {
        this.proposeDecree(l, d, this.cutBatch(l));
      } else {
        return;
      }
    }
  }

  private cutBatch(l: LeaderState): DecreeValue {
    const n = batchLength(l.queue, l.queueHead, this.o.batchCountMax, this.o.batchBytesMax);
    const commands = l.queue.slice(l.queueHead, l.queueHead + n);
    l.queueHead += n;
    if (l.queueHead === l.queue.length) {
      l.queue = [];
      l.queueHead = 0;
    }
    return this.o.makeBatch(commands);
  }

  private proposeDecree(l: LeaderState, decree: number, value: DecreeValue): void {
    assert(decree === l.nextDecree && decree > this.committed, 'proposal out of order');
    // Our own copy is persisted in parallel with sending; it counts as a vote once durable.
    const seq = this.persist({ type: 'accept', decree, ballot: l.ballot, value });
    this.storeCopy(decree, l.ballot, value, seq);
    l.inflight.set(decree, { value, acks: new Set(), selfSeq: seq, selfDurable: false, chosen: false, sentTick: this.now });
    l.nextDecree = decree + 1;
    this.stats.decreesProposed++;
    for (const p of this.peers) this.sendAccept(l, p, decree, value);
  }

  private onAccepted(from: number, ballot: number, decree: number): void {
    const l = this.leader;
    if (!l || l.phase !== 2 || ballot !== l.ballot) return;
    l.lastHeardTick.set(from, this.now);
    const f = l.inflight.get(decree);
    if (!f || f.chosen) return;
    f.acks.add(from);
    this.checkChosen(l, decree, f);
  }

  private onHeartbeatAck(from: number, ballot: number, durableCommitted: number): void {
    const l = this.leader;
    if (l && l.phase === 2 && ballot === l.ballot) l.lastHeardTick.set(from, this.now);
    // A durable commit point only grows (a wiped disk must not rejoin under its old id).
    if (durableCommitted > (this.peerDurable.get(from) ?? 0)) this.peerDurable.set(from, durableCommitted);
  }

  /**
   * Decrees ≤ this are durably committed on every member, so none will ever need them from a
   * log: the runtime may retire log segments holding only such decrees (and older than its
   * checkpoints). The primary computes it from its peers' reports; others keep the highest floor
   * a primary announced. 0 until every member has reported.
   */
  retentionFloor(): number {
    let floor = this.floorHeard;
    if (this.leader) {
      let min = this.durableCommitted;
      for (const p of this.peers) min = Math.min(min, this.peerDurable.get(p) ?? 0);
      floor = Math.max(floor, min);
    }
    return floor;
  }

  private onNack(ballot: number, promised: number): void {
    this.observe(promised);
    if (this.leader && this.leader.ballot === ballot) this.stepDown();
  }

  private checkChosen(l: LeaderState, decree: number, f: InFlight): void {
    const votes = f.acks.size + (f.selfDurable ? 1 : 0);
    if (votes < this.quorumFor(decree)) return;
    f.chosen = true;
    let c = this.committed;
    while (l.inflight.get(c + 1)?.chosen) l.inflight.delete(++c);
    assert(decree > c || !l.inflight.has(decree), 'chosen decree left in flight');
    this.advanceCommitted(c);
    this.maybeAnnounce(l);
  }

  private maybeAnnounce(l: LeaderState): void {
    if (l.announced || this.committed < l.reproposeEnd) return;
    l.announced = true;
    this.stats.becamePrimary++;
    this.setRole('primary');
  }

  /** Leaves leadership (if any): queued commands were never proposed; in-flight ones are unknown. */
  private stepDown(): void {
    const l = this.leader;
    if (!l) return;
    this.leader = null;
    this.stats.stepDowns++;
    for (const f of l.inflight.values()) {
      if (f.value.kind === 'batch') this.ready.dropped.outcomeUnknown.push(...f.value.commands);
    }
    for (let i = l.queueHead; i < l.queue.length; i++) this.ready.dropped.neverProposed.push(l.queue[i]!);
    this.setRole('secondary');
    this.resetElectionTimer();
  }

  // ─── shared helpers ───────────────────────────────────────────────────────────────────────

  /** Quorum of the current configuration (phase 1, check-quorum). */
  private quorumSize(): number {
    return Math.floor(this.members.length / 2) + 1;
  }

  /**
   * Quorum for a decree: that of the configuration in effect at the decree. Until
   * reconfiguration lands there is one configuration, from decree 1 on; the call sites already
   * ask per decree so that the window code needs no change when there are more.
   */
  private quorumFor(decree: number): number {
    assert(decree >= 1, 'quorum of decree 0');
    return this.quorumSize();
  }

  /** True while this replica may have lost votes to corruption (see RestoreHints). */
  needsRepair(): boolean {
    return this.committed < this.repairUpTo;
  }

  private primaryRecent(): boolean {
    if (this.leader && this.leader.phase === 2) return true;
    return this.now - this.primaryContactTick < this.o.newLeaderGracePeriodTicks &&
      this.primaryContactBallot >= this.promised;
  }

  private notePrimary(from: number, ballot: number): void {
    this.primaryContactTick = this.now;
    this.primaryContactBallot = ballot;
    this.knownPrimary = from;
    this.query = null;
    this.resetElectionTimer();
  }

  private observe(ballot: number): void {
    if (ballot > this.highestSeen) this.highestSeen = ballot;
  }

  private randomElectionTicks(): number {
    const span = this.o.electionTimeoutTicksMax - this.o.electionTimeoutTicksMin + 1;
    return this.o.electionTimeoutTicksMin + Math.floor(this.o.random() * span);
  }

  private resetElectionTimer(): void {
    this.electionDeadlineTick = this.now + this.randomElectionTicks();
  }

  private storeCopy(decree: number, ballot: number, value: DecreeValue, seq: number, learned = false): void {
    this.log.set(decree, { ballot, value, seq, learned });
    if (decree > this.maxAccepted) this.maxAccepted = decree;
  }

  private entriesFrom(fromDecree: number): Entry[] {
    const out: Entry[] = [];
    for (let d = Math.max(fromDecree, this.compactedUpTo + 1); d <= this.maxAccepted; d++) {
      const e = this.log.get(d);
      if (e) out.push({ decree: d, ballot: e.ballot, value: e.value });
    }
    return out;
  }

  private advanceCommitted(upTo: number): void {
    if (upTo <= this.committed) return;
    const wasRepairing = this.needsRepair();
    this.committed = upTo;
    if (wasRepairing && !this.needsRepair()) this.stats.repairsCompleted++;
    if (this.fetch && this.committed >= this.fetch.toDecree) this.fetch = null;
    this.emitExecutions();
  }

  private emitExecutions(): void {
    for (let d = this.executed + 1; d <= this.committed; d++) {
      const e = this.log.get(d);
      assert(e !== undefined, 'executing a decree without a copy');
      this.ready.execute.push({ decree: d, ballot: e.ballot, value: e.value });
    }
    this.executed = Math.max(this.executed, this.committed);
  }

  private persist(record: LogRecord): number {
    const seq = this.nextSeq++;
    this.ready.persist.push({ seq, record });
    return seq;
  }

  /** A reply that must wait for the record `afterSeq` to be durable. */
  private reply(afterSeq: number, message: Message): void {
    if (afterSeq <= this.persistedSeq || this.o.mutation === 'ackBeforePersist') this.send(message);
    else this.ready.sendAfterPersist.push({ afterSeq, message });
  }

  private send(message: Message): void {
    this.ready.send.push(message);
  }

  private env(to: number): { from: number; to: number; config: number } {
    return { from: this.id, to, config: this.configNumber };
  }

  private setRole(role: Role): void {
    if (role === this.role) return;
    this.role = role;
    this.ready.role = role;
  }

  private afterInput(): void {
    const l = this.leader;
    if (l && l.phase === 2) this.flushProposals(l);
    if (this.committed > this.committedRecorded) {
      // The commit point rides in the next group write; the log is ordered, so the copies it
      // covers are durable no later than it is.
      this.committedRecorded = this.committed;
      const seq = this.persist({ type: 'commit', decree: this.committed });
      this.commitRecordsInFlight.push(seq, this.committed);
    }
    this.compact();
    if (this.o.verify) this.checkInvariants(++this.inputs % FULL_SWEEP_EVERY_INPUTS === 0);
  }

  /**
   * Drops copies of decrees more than `retainDecrees` below the commit point (all chosen and
   * executed). In batches of half the window, so the cost is amortised.
   */
  private compact(): void {
    const target = Math.min(this.committed, this.executed) - this.o.retainDecrees;
    if (target - this.compactedUpTo < Math.max(1, this.o.retainDecrees >> 1)) return;
    for (let d = this.compactedUpTo + 1; d <= target; d++) this.log.delete(d);
    this.compactedUpTo = target;
  }

  checkInvariants(fullSweep = false): void {
    assert(this.executed === this.committed, 'executed lags committed');
    assert(this.committedRecorded <= this.committed, 'commit record ahead of commit');
    assert(this.persistedSeq < this.nextSeq, 'persisted ahead of records');
    assert(this.highestSeen >= this.promised, 'promise above highest ballot seen');
    const l = this.leader;
    if (l) {
      assert(l.ballot === this.promised, 'leading under a ballot that is not our promise');
      assert((this.role === 'primary') === l.announced, 'role and announcement disagree');
    } else {
      assert(this.role === 'secondary', 'leader role without leader state');
    }
    if (l && l.phase === 2) {
      assert(l.nextDecree - 1 - this.committed <= this.o.pipelineDepth, 'window overflow');
      for (const [d, f] of l.inflight) {
        assert(d > this.committed && d < l.nextDecree, 'in-flight decree outside the window');
        const e = this.log.get(d);
        assert(e !== undefined && e.ballot === l.ballot && e.value === f.value, 'in-flight copy');
      }
    }
    const from = Math.max(this.compactedUpTo + 1, fullSweep ? 1 : this.committed - this.o.pipelineDepth);
    for (let d = from; d <= this.committed; d++) assert(this.log.has(d), 'committed decree missing');
    assert(this.compactedUpTo <= this.committed, 'compacted above the commit point');
  }
}
