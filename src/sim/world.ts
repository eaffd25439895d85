/**
 * The deterministic simulator's world: real `Replica` cores over `SimFs` disks, a simulated
 * network and clock, crashes and restarts, and key-value clients — all driven by one event queue
 * and one seeded generator, so a seed replays exactly (same trace hash, in any process).
 *
 * Checkers run after every step: the agreement oracle (chosen computed from durable acceptor
 * state), executed values against it, invariant sweeps in every core (verify on), and duplicate
 * execution. At the end: nothing acknowledged lost, linearizability of the client history, and
 * liveness (a commit within 10 × the maximum election timeout after the last heal).
 */
import { checkLinearizable } from '../check/linearizability.js';
import type { KvInput, KvOperation, KvOutput } from '../check/history.js';
import { EncodedBatch } from '../codec/value-body.js';
import { Replica } from '../core/replica.js';
import { decodeMessage, encodeMessage } from '../net/message-codec.js';
import type { CoreMutation } from '../core/options.js';
import type { DecreeValue, DeferredMessage, Entry, LogRead, LogRecord, Message, Ready } from '../core/types.js';
import { KvStateMachine, decodeKvCommand, encodeKvCommand, requestKey, type KvCommand, type KvResult } from '../kv/kv.js';
import { Random } from '../util/random.js';
import { EventQueue } from './event-queue.js';
import { AgreementOracle } from './oracle.js';
import { MetadataStore } from '../log/metadata.js';
import { type LogPosition, SegmentLog, segmentFileName } from '../log/segment-log.js';
import { FIRST_GROUP_OFFSET } from '../log/segment-limits.js';
import { entriesFromLogRecords } from '../log/log-read.js';
import { logRecordToStored, storedToLogRecord } from '../log/stored-record.js';
import { DeferredSyncFs } from './deferred-sync-fs.js';
import { SimFs } from './sim-fs.js';
import {
  ELECTION_TICKS_MAX, ELECTION_TICKS_MIN, ELECTION_US_MAX, type FaultKind, type SimMutation,
  type SwarmParams, TICK_US, drawSwarm,
} from './swarm.js';

const DATA_DIR = '/data';
const LOG_DIR = '/data/log';
/** Small segments, so that runs roll over, preallocate and chain across files. */
const LOG_OPTIONS = { segmentBytes: 16 * 1024, preallocChunkBytes: 4096, preallocAheadBytes: 8192 } as const;
const ORIGIN: LogPosition = { segment: 0, offset: 0 };
const LIVENESS_US = 10 * ELECTION_US_MAX;
const DRAIN_US = 4 * ELECTION_US_MAX;
const TRACE_TAIL = 60;

export interface Coverage {
  primaryCrashes: number;
  phase1WithHoles: number;
  noopsFilled: number;
  staleCopiesRefetched: number;
  tornWrites: number;
  oneWayPartitions: number;
  crashesAfterPromise: number;
  crashesBeforeAck: number;
  crashesDuringReproposal: number;
  crashesWithWindow: number;
  bitFlips: number;
  corruptionsDetected: number;
  repairsCompleted: number;
  restarts: number;
  fetches: number;
  stickyRefusals: number;
  logServedFetches: number;
  compactionAborts: number;
}

export interface SeedResult {
  readonly seed: number;
  readonly replicas: number;
  readonly violations: string[];
  readonly unchecked: number;
  readonly decreesCommitted: number;
  readonly opsChecked: number;
  readonly clientOps: number;
  readonly elections: number;
  readonly livenessOk: boolean;
  readonly coverage: Coverage;
  readonly traceHash: string;
  readonly trace: string[];
}

type ClientReply = { kind: 'result'; result: KvResult } | { kind: 'notPrimary'; hint: number } | { kind: 'unknown' };

type Event =
  | { kind: 'tick'; node: number; inc: number }
  /** `senderInc` and `fragile`: a message still in flight when its sender crashes may be lost. */
  | { kind: 'deliver'; message: Message; senderInc: number; fragile: boolean }
  | { kind: 'request'; node: number; client: number; attempt: number; cmd: Uint8Array }
  | { kind: 'reply'; client: number; attempt: number; reply: ClientReply }
  | { kind: 'syncDone'; node: number; inc: number; upTo: number }
  | { kind: 'fault' }
  | { kind: 'restart'; node: number }
  | { kind: 'heal' }
  | { kind: 'clientStart'; client: number }
  | { kind: 'clientTimeout'; client: number; attempt: number };

interface SimNode {
  readonly id: number;
  fs: SimFs;
  log: SegmentLog | null;
  /** The node's FileLayer: SimFs with sync calls that take effect at the sync's completion. */
  dfs: DeferredSyncFs | null;
  meta: MetadataStore | null;
  /** Highest ballot in any promise or accept record appended: mirrored into the metadata. */
  promiseToMirror: number;
  /** Log position durable before the sync in flight began: its group names it as frontier. */
  durableAtSyncStart: LogPosition;
  /** Bytes before this position are proven durable by a durable group's frontier. */
  provenPos: LogPosition;
  /** The core left needs-repair: mark the damage repaired once its re-fetched copies are durable. */
  repairPending: boolean;
  wasRepairing: boolean;
  /** A bit was flipped in this node's synced log and its repair has not completed yet. */
  corruptUnrepaired: boolean;
  core: Replica | null;
  inc: number;
  appendedSeq: number;
  syncedSeq: number;
  syncing: boolean;
  deferred: DeferredMessage[];
  /** seq → promise and accept records, kept until durable (for the oracle), in seq order. */
  unsynced: Map<number, LogRecord>;
  kv: KvStateMachine;
  executed: number;
  pending: Map<string, { client: number; attempt: number }>;
  restartPending: boolean;
}

interface ClientOp {
  op: { id: number; clientId: number; key: string; input: KvInput; callTime: number };
  seq: number;
  cmd: Uint8Array;
  attempt: number;
  target: number;
}

interface SimClient {
  readonly id: number;
  seq: number;
  /** Attempt ids are unique per client across operations, so a late reply cannot match. */
  attempts: number;
  target: number;
  current: ClientOp | null;
  lastRead: Map<string, string | null>;
}

export interface WorldOptions {
  readonly seed: number;
  readonly replicas?: number | null;
  readonly mutation?: SimMutation | null;
}

export class World {
  readonly params: SwarmParams;
  private readonly rng: Random;
  private readonly q = new EventQueue<Event>();
  private now = 0;
  private readonly nodes: SimNode[] = [];
  private readonly clients: SimClient[] = [];
  private readonly blocked = new Set<number>();
  private readonly oracle: AgreementOracle;
  private readonly history: KvOperation[] = [];
  private readonly coverage: Coverage = {
    primaryCrashes: 0, phase1WithHoles: 0, noopsFilled: 0, staleCopiesRefetched: 0, tornWrites: 0,
    oneWayPartitions: 0, crashesAfterPromise: 0, crashesBeforeAck: 0, crashesDuringReproposal: 0,
    crashesWithWindow: 0, bitFlips: 0, corruptionsDetected: 0, repairsCompleted: 0, restarts: 0,
    fetches: 0, stickyRefusals: 0, logServedFetches: 0, compactionAborts: 0,
  };
  private elections = 0;
  /** Messages go through encodeMessage/decodeMessage, and batches are EncodedBatch (odd seeds). */
  private readonly wire: boolean;
  private opIds = 0;
  private quiet = false;
  private healUs = Infinity;
  private liveAtUs = Infinity;
  private stopClients = false;
  private hash = 0x811c9dc5;
  private readonly trace: string[] = [];
  private readonly violations: string[] = [];
  private readonly coreMutation: CoreMutation | null;
  private readonly wipeOnRestart: boolean;
  private readonly decidedAt = new Map<number, string>();

  constructor(private readonly opts: WorldOptions) {
    this.wire = opts.seed % 2 === 1; // not drawn: the seed's random stream stays as it was
    this.params = drawSwarm(opts.seed, opts.replicas ?? null);
    this.rng = new Random(opts.seed);
    const m = opts.mutation ?? null;
    this.wipeOnRestart = m === 'wipedDiskRejoin';
    this.coreMutation = m === 'wipedDiskRejoin' ? null : m;
    const quorum = Math.floor(this.params.replicas / 2) + 1;
    this.oracle = new AgreementOracle(() => quorum);
  }

  run(): SeedResult {
    const p = this.params;
    for (let i = 0; i < p.replicas; i++) this.nodes.push(this.newNode(i));
    for (const n of this.nodes) this.bootNode(n);
    for (let c = 0; c < p.clients; c++) {
      this.clients.push({ id: c + 1, seq: 0, attempts: 0, target: this.rng.int(p.replicas), current: null, lastRead: new Map() });
      this.q.push(this.rng.int(20_000), { kind: 'clientStart', client: c });
    }
    this.q.push(p.faultEveryUs, { kind: 'fault' });
    this.q.push(p.chaosUs, { kind: 'heal' });
    const endUs = p.chaosUs + LIVENESS_US + DRAIN_US;
    while (this.q.size > 0 && this.violations.length === 0) {
      const { time, item } = this.q.pop();
      if (time > endUs) break;
      this.now = time;
      if (!this.stopClients && time > p.chaosUs + LIVENESS_US) this.stopClients = true;
      this.step(item);
      this.collectViolations();
    }
    return this.finish();
  }

  // ─── nodes ────────────────────────────────────────────────────────────────────────────────

  private newNode(id: number): SimNode {
    const fs = new SimFs();
    fs.mkdirp(DATA_DIR);
    return {
      id, fs, log: null, dfs: null, meta: null, promiseToMirror: 0, durableAtSyncStart: ORIGIN,
      provenPos: ORIGIN, repairPending: false, wasRepairing: false, corruptUnrepaired: false,
      core: null, inc: 0, appendedSeq: 0, syncedSeq: 0, syncing: false, deferred: [],
      unsynced: new Map(), kv: new KvStateMachine(), executed: 0, pending: new Map(),
      restartPending: false,
    };
  }

  /** Starts (or restarts) a node from what its disk holds, and nothing else. */
  private bootNode(n: SimNode): void {
    const dfs = new DeferredSyncFs(n.fs);
    const meta = MetadataStore.open(dfs, DATA_DIR) ?? MetadataStore.create(dfs, DATA_DIR, {
      clusterId: 'sim', replicaId: n.id, incarnation: 0, promisedBallot: 0, logEpoch: 0,
    });
    const opened = SegmentLog.open(dfs, LOG_DIR, LOG_OPTIONS);
    dfs.commit(); // recovery's own writes are durable before the replica starts
    const decoded = opened.records.map(storedToLogRecord);
    // Recovery fsyncs what it kept, so a surviving unsynced record is now durable too.
    for (const r of decoded) this.noteDurable(n, r);
    const corrupt = opened.report.kind === 'corrupt';
    if (!corrupt) n.corruptUnrepaired = false; // the flip hit padding, or was cut with a torn tail
    if (corrupt) {
      this.coverage.corruptionsDetected++;
      this.record(`r${n.id} log corrupt: ${opened.report.message}`);
    }
    const p = this.params;
    const random = new Random(this.rng.int(0x7fffffff));
    n.core = Replica.restore({
      replicaId: n.id, members: this.nodes.map((x) => x.id), verify: true,
      electionTimeoutTicksMin: ELECTION_TICKS_MIN, electionTimeoutTicksMax: ELECTION_TICKS_MAX,
      pipelineDepth: p.pipelineDepth, batchCountMax: p.batchCountMax, batchBytesMax: p.batchBytesMax,
      messageEntriesMax: p.messageEntriesMax, catchUpBeforePrepare: p.catchUpBeforePrepare,
      retainDecrees: p.retainDecrees,
      preVote: p.preVote,
      random: () => random.next(), mutation: this.coreMutation,
      ...(this.wire ? { makeBatch: EncodedBatch.of } : {}),
    }, decoded, {
      promisedAtLeast: meta.current.promisedBallot,
      ...(corrupt ? { repairUpTo: opened.report.repairDecreeMax } : {}),
    });
    n.log = opened.log;
    n.dfs = dfs;
    n.meta = meta;
    n.promiseToMirror = meta.current.promisedBallot;
    n.durableAtSyncStart = opened.log.durablePosition;
    n.provenPos = ORIGIN;
    n.repairPending = false;
    n.wasRepairing = corrupt;
    n.inc++;
    n.appendedSeq = 0;
    n.syncedSeq = 0;
    n.syncing = false;
    n.deferred = [];
    n.unsynced.clear();
    n.kv = new KvStateMachine();
    n.executed = 0;
    n.pending.clear();
    this.scheduleTick(n);
    this.drain(n);
  }

  private crash(n: SimNode, why: string): void {
    if (!n.core) return;
    this.record(`crash r${n.id} (${why})`);
    if (n.core.status().role === 'primary') this.coverage.primaryCrashes++;
    this.harvestCoreStats(n.core);
    n.core = null;
    n.log = null;
    n.dfs = null; // sync calls still in flight never complete
    n.meta = null;
    const report = n.fs.crash(this.rng);
    this.coverage.tornWrites += report.pagesTorn;
    // Corruption is repaired from intact peers, so at most f replicas may carry unrepaired damage
    // at once (a majority losing the same votes is beyond the fault model: it must halt).
    const damaged = this.nodes.filter((x) => x.corruptUnrepaired).length;
    const f = Math.floor((this.nodes.length - 1) / 2);
    if (damaged < f && this.rng.chance(this.params.bitFlipRate)) this.flipDurableBit(n);
    if (!n.restartPending) {
      n.restartPending = true;
      this.q.push(this.now + this.rng.range(20_000, this.params.downUsMax), { kind: 'restart', node: n.id });
    }
  }

  private restart(n: SimNode): void {
    n.restartPending = false;
    if (n.core) return;
    if (this.wipeOnRestart) {
      n.fs = new SimFs();
      n.fs.mkdirp(DATA_DIR);
    }
    this.coverage.restarts++;
    this.record(`restart r${n.id}`);
    this.bootNode(n);
  }

  private scheduleTick(n: SimNode): void {
    const us = Math.round(TICK_US / this.params.clockRates[n.id]!);
    this.q.push(this.now + us, { kind: 'tick', node: n.id, inc: n.inc });
  }

  /** Routes everything a core's Ready asks for. */
  private drain(n: SimNode): void {
    const core = n.core;
    if (!core) return;
    const r: Ready = core.takeReady();
    for (const { seq, record } of r.persist) {
      n.log!.appendRecord(logRecordToStored(record));
      n.appendedSeq = seq;
      if (record.type === 'accept' || record.type === 'promise') {
        n.unsynced.set(seq, record);
        if (record.ballot > n.promiseToMirror) n.promiseToMirror = record.ballot;
      }
    }
    const repairing = core.needsRepair();
    if (n.wasRepairing && !repairing) n.repairPending = true;
    n.wasRepairing = repairing;
    for (const m of r.send) this.sendMessage(m);
    for (const read of r.readLog) this.serveFromLog(n, read);
    for (const d of r.sendAfterPersist) n.deferred.push(d);
    for (const e of r.execute) this.execute(n, e.decree, e.value);
    if (r.role === 'primary') {
      this.elections++;
      this.record(`r${n.id} primary ${core.status().leaderBallot}`);
    }
    for (const c of r.dropped.outcomeUnknown) this.answerPending(n, c, { kind: 'unknown' });
    for (const c of r.dropped.neverProposed) this.answerPending(n, c, { kind: 'notPrimary', hint: -1 });
    if (!n.syncing && n.appendedSeq > n.syncedSeq) this.startSync(n);
  }

  /** A fetch of compacted decrees, answered from the node's log on its (simulated) disk. */
  private serveFromLog(n: SimNode, read: LogRead): void {
    let entries: Entry[];
    try {
      entries = entriesFromLogRecords(n.log!.readRecords(read.fromDecree, read.toDecree), read.fromDecree, read.toDecree);
    } catch {
      return; // a damaged record: the fetcher retries elsewhere
    }
    this.coverage.logServedFetches++;
    this.sendMessage({ type: 'fetchReply', from: n.id, to: read.to, config: 1, entries, committed: read.committed });
  }

  private startSync(n: SimNode): void {
    const p = this.params;
    const us = this.rng.chance(p.slowFsyncRate) ? this.rng.range(1, p.slowFsyncUsMax) : this.rng.range(20, p.fsyncUsMax);
    n.syncing = true;
    // The group is written now; its fdatasync completes at syncDone. A crash in between may keep,
    // tear or lose the written pages.
    n.durableAtSyncStart = n.log!.durablePosition;
    n.log!.sync();
    const meta = n.meta!;
    if (n.promiseToMirror > meta.current.promisedBallot) {
      const { clusterId, replicaId, incarnation, logEpoch } = meta.current;
      meta.write({ clusterId, replicaId, incarnation, logEpoch, promisedBallot: n.promiseToMirror });
    }
    this.q.push(this.now + us, { kind: 'syncDone', node: n.id, inc: n.inc, upTo: n.appendedSeq });
  }

  /**
   * Bit rot on disk: flips one bit in bytes a durable group's frontier proves were synced, so
   * recovery must classify it as corruption (damage past the proof would be cut as a torn tail,
   * which is right for a torn write and cannot be told apart from rot there).
   */
  private flipDurableBit(n: SimNode): void {
    const p = n.provenPos;
    if (p.segment === 0 || p.offset <= FIRST_GROUP_OFFSET) return;
    const path = `${LOG_DIR}/${segmentFileName(p.segment)}`;
    if (!n.fs.exists(path)) return;
    const at = this.rng.range(FIRST_GROUP_OFFSET, p.offset - 1);
    const fd = n.fs.open(path, { create: false });
    const byte = new Uint8Array(1);
    n.fs.read(fd, byte, 1, at);
    byte[0]! ^= 1 << this.rng.int(8);
    n.fs.pwrite(fd, byte, at);
    n.fs.fdatasync(fd);
    n.fs.close(fd);
    n.corruptUnrepaired = true;
    this.coverage.bitFlips++;
    this.record(`bit flip r${n.id} ${path}@${at}`);
  }

  private syncDone(n: SimNode, upTo: number): void {
    n.syncing = false;
    n.syncedSeq = upTo;
    n.dfs!.commit();
    n.provenPos = n.durableAtSyncStart;
    if (n.repairPending) {
      // The re-fetched copies are durable now: overwrite the damage with skip groups.
      n.log!.markRepaired();
      n.dfs!.commit();
      n.repairPending = false;
      n.corruptUnrepaired = false;
      this.coverage.repairsCompleted++;
    }
    for (const [seq, r] of n.unsynced) {
      if (seq > upTo) break;
      this.noteDurable(n, r);
      n.unsynced.delete(seq);
    }
    const crashPoint = this.targetedCrash(n, upTo);
    if (crashPoint === 'beforeReply') return;
    n.core!.persisted(upTo);
    const keep: DeferredMessage[] = [];
    for (const d of n.deferred) {
      if (d.afterSeq <= upTo) this.sendMessage(d.message);
      else keep.push(d);
    }
    n.deferred = keep;
    if (crashPoint === 'afterReply') this.crash(n, 'promise durable, reply sent');
    else this.drain(n);
  }

  private noteDurable(n: SimNode, r: LogRecord): void {
    if (r.type === 'promise') this.oracle.durablePromised(n.id, r.ballot);
    else if (r.type === 'accept') this.oracle.durableAccept(n.id, r.decree, r.ballot, r.value, this.now);
  }

  /** Crashes at the points where a lost reply is most dangerous, at the seed's chosen rates. */
  private targetedCrash(n: SimNode, upTo: number): 'beforeReply' | 'afterReply' | null {
    const p = this.params;
    if (this.quiet) return null;
    const due = n.deferred.filter((d) => d.afterSeq <= upTo);
    if (due.some((d) => d.message.type === 'prepareAccepted') && this.rng.chance(p.crashAfterPromiseRate)) {
      this.coverage.crashesAfterPromise++;
      if (this.rng.chance(0.5)) return 'afterReply'; // the candidate relies on a promise we then lose
      this.crash(n, 'promise durable, reply not sent');
      return 'beforeReply';
    }
    if (due.some((d) => d.message.type === 'accepted') && this.rng.chance(p.crashBeforeAckRate)) {
      this.coverage.crashesBeforeAck++;
      this.crash(n, 'accept durable, ack not sent');
      return 'beforeReply';
    }
    return null;
  }

  private execute(n: SimNode, decree: number, value: DecreeValue): void {
    if (decree !== n.executed + 1) this.violations.push(`r${n.id} executed ${decree} after ${n.executed}`);
    n.executed = decree;
    this.oracle.executed(n.id, decree, value);
    if (value.kind !== 'batch') return;
    for (const bytes of value.commands) {
      const cmd = decodeKvCommand(bytes);
      const { result, duplicate } = n.kv.execute(cmd);
      if (duplicate) this.violations.push(`r${n.id} executed request ${cmd.c}:${cmd.s} twice`);
      const waiting = n.pending.get(requestKey(cmd.c, cmd.s));
      if (waiting) {
        n.pending.delete(requestKey(cmd.c, cmd.s));
        this.toClient(waiting.client, waiting.attempt, { kind: 'result', result });
      }
    }
  }

  private answerPending(n: SimNode, bytes: Uint8Array, reply: ClientReply): void {
    const cmd = decodeKvCommand(bytes);
    const key = requestKey(cmd.c, cmd.s);
    const waiting = n.pending.get(key);
    if (!waiting) return;
    n.pending.delete(key);
    this.toClient(waiting.client, waiting.attempt, reply);
  }

  // ─── network ──────────────────────────────────────────────────────────────────────────────

  private linkKey(from: number, to: number): number {
    return from * 64 + to;
  }

  private delayUs(): number {
    const p = this.params;
    if (!this.quiet && this.rng.chance(p.longDelayRate)) return this.rng.range(1, p.longDelayUsMax);
    return this.rng.range(20, p.delayUsMax);
  }

  private sendMessage(m: Message): void {
    if (this.blocked.has(this.linkKey(m.from, m.to))) return;
    if (!this.quiet && this.rng.chance(this.params.lossRate)) return;
    const senderInc = this.nodes[m.from]!.inc;
    const fragile = this.rng.chance(0.5);
    this.q.push(this.now + this.delayUs(), { kind: 'deliver', message: m, senderInc, fragile });
    if (!this.quiet && this.rng.chance(this.params.dupRate)) {
      this.q.push(this.now + this.delayUs(), { kind: 'deliver', message: m, senderInc, fragile });
    }
  }

  /** Client links see loss and delay but not partitions (clients sit beside every replica). */
  private toClient(client: number, attempt: number, reply: ClientReply): void {
    if (!this.quiet && this.rng.chance(this.params.lossRate)) return;
    this.q.push(this.now + this.delayUs(), { kind: 'reply', client, attempt, reply });
  }

  // ─── faults ───────────────────────────────────────────────────────────────────────────────

  private fault(): void {
    if (this.quiet) return;
    const w = this.params.faultWeights;
    const kinds = Object.keys(w) as FaultKind[];
    let roll = this.rng.int(kinds.reduce((s, k) => s + w[k], 0));
    const kind = kinds.find((k) => (roll -= w[k]) < 0)!;
    this.applyFault(kind);
    const mean = this.params.faultEveryUs;
    this.q.push(this.now + this.rng.range(Math.floor(mean / 2), Math.floor((mean * 3) / 2)), { kind: 'fault' });
  }

  private applyFault(kind: FaultKind): void {
    const up = this.nodes.filter((n) => n.core);
    const primary = up.find((n) => n.core!.status().role === 'primary');
    switch (kind) {
      case 'crashRandom':
        if (up.length > 0) this.crash(this.rng.pick(up), 'random');
        return;
      case 'crashPrimary':
        if (primary) this.crash(primary, 'primary');
        return;
      case 'restart': {
        const down = this.nodes.filter((n) => !n.core);
        if (down.length > 0) this.restart(this.rng.pick(down));
        return;
      }
      case 'partition': {
        const side = new Set(this.nodes.filter(() => this.rng.chance(0.5)).map((n) => n.id));
        this.record(`partition {${[...side].join(',')}}`);
        for (const a of this.nodes) for (const b of this.nodes) {
          if (side.has(a.id) !== side.has(b.id)) this.blocked.add(this.linkKey(a.id, b.id));
        }
        return;
      }
      case 'oneWay': {
        const a = this.rng.int(this.nodes.length);
        const b = (a + 1 + this.rng.int(this.nodes.length - 1)) % this.nodes.length;
        this.coverage.oneWayPartitions++;
        this.record(`one-way r${a} -/-> r${b}`);
        this.blocked.add(this.linkKey(a, b));
        return;
      }
      case 'isolatePrimary':
        if (!primary) return;
        this.record(`isolate r${primary.id}`);
        for (const b of this.nodes) {
          if (b !== primary) {
            this.blocked.add(this.linkKey(primary.id, b.id));
            this.blocked.add(this.linkKey(b.id, primary.id));
          }
        }
        return;
      case 'heal':
        this.record('heal');
        this.blocked.clear();
        return;
    }
  }

  /** The last heal: no more faults, every replica up, a reliable network. */
  private finalHeal(): void {
    this.quiet = true;
    this.healUs = this.now;
    this.blocked.clear();
    this.record('final heal');
    for (const n of this.nodes) if (!n.core) this.restart(n);
  }

  // ─── clients ──────────────────────────────────────────────────────────────────────────────

  private startOp(c: SimClient): void {
    if (this.stopClients) return;
    const p = this.params;
    const key = `k${this.rng.int(p.keys)}`;
    const roll = this.rng.next();
    const seq = ++c.seq;
    const value = `v${c.id}.${seq}`;
    let input: KvInput;
    let cmd: KvCommand;
    if (roll < p.getRatio) {
      input = { kind: 'get' };
      cmd = { c: c.id, s: seq, op: 'get', k: key };
    } else if (roll < p.getRatio + p.casRatio) {
      const expected = c.lastRead.get(key) ?? null;
      input = { kind: 'cas', expected, value };
      cmd = { c: c.id, s: seq, op: 'cas', k: key, e: expected, v: value };
    } else {
      input = { kind: 'put', value };
      cmd = { c: c.id, s: seq, op: 'put', k: key, v: value };
    }
    c.current = {
      op: { id: ++this.opIds, clientId: c.id, key, input, callTime: this.now },
      seq, cmd: encodeKvCommand(cmd), attempt: 0, target: c.target,
    };
    this.sendAttempt(c);
  }

  private sendAttempt(c: SimClient): void {
    const cur = c.current!;
    cur.attempt = ++c.attempts;
    if (!this.quiet && this.rng.chance(this.params.lossRate)) {
      // The request is lost on the way: the client will time out.
    } else {
      this.q.push(this.now + this.delayUs(), { kind: 'request', node: cur.target, client: c.id, attempt: cur.attempt, cmd: cur.cmd });
    }
    this.q.push(this.now + this.params.clientTimeoutUs, { kind: 'clientTimeout', client: c.id, attempt: cur.attempt });
  }

  private onRequest(nodeId: number, client: number, attempt: number, cmdBytes: Uint8Array): void {
    const n = this.nodes[nodeId]!;
    if (!n.core) return; // a down replica answers nothing: the client times out
    const res = n.core.propose(cmdBytes);
    if (!res.ok) {
      this.toClient(client, attempt, { kind: 'notPrimary', hint: res.primaryHint });
      return;
    }
    const cmd = decodeKvCommand(cmdBytes);
    n.pending.set(requestKey(cmd.c, cmd.s), { client, attempt });
    this.drain(n);
    if (!this.quiet && n.core.status().inflight >= 2 && this.rng.chance(this.params.crashWithWindowRate)) {
      this.coverage.crashesWithWindow++;
      this.crash(n, 'primary with a window in flight');
    }
  }

  private onReply(c: SimClient, attempt: number, reply: ClientReply): void {
    const cur = c.current;
    if (!cur || cur.attempt !== attempt) return; // a late answer to an abandoned attempt
    if (reply.kind === 'notPrimary') {
      // Never proposed: safe to try the same operation elsewhere.
      c.target = reply.hint >= 0 ? reply.hint : this.rng.int(this.params.replicas);
      cur.target = c.target;
      this.sendAttempt(c);
      return;
    }
    if (reply.kind === 'unknown') this.finishOp(c, null, 'ok');
    else this.finishOp(c, this.now, reply.result as KvOutput);
  }

  private finishOp(c: SimClient, returnTime: number | null, output: KvOutput): void {
    const cur = c.current!;
    this.history.push({ ...cur.op, returnTime, output });
    if (returnTime !== null && cur.op.input.kind === 'get') c.lastRead.set(cur.op.key, output as string | null);
    if (returnTime !== null && cur.op.callTime >= this.healUs && this.liveAtUs === Infinity) this.liveAtUs = this.now;
    c.current = null;
    this.q.push(this.now + this.rng.range(0, this.params.thinkUsMax), { kind: 'clientStart', client: c.id - 1 });
  }

  // ─── the step loop ────────────────────────────────────────────────────────────────────────

  private step(e: Event): void {
    switch (e.kind) {
      case 'tick': {
        const n = this.nodes[e.node]!;
        if (!n.core || n.inc !== e.inc) return;
        n.core.tick();
        this.drain(n);
        const s = n.core.status();
        if (s.phase === 2 && s.role !== 'primary' && !this.quiet && this.rng.chance(this.params.crashDuringReproposalRate)) {
          this.coverage.crashesDuringReproposal++;
          this.crash(n, 'during re-proposal');
          return;
        }
        this.scheduleTick(n);
        return;
      }
      case 'deliver': {
        const n = this.nodes[e.message.to]!;
        if (!n.core) return;
        // A crash of the sender loses what was still queued in its machine, at random.
        const sender = this.nodes[e.message.from]!;
        if (e.fragile && (sender.inc !== e.senderInc || !sender.core)) return;
        this.mix(e.message.from * 31 + e.message.to, e.message.type.length);
        // Odd seeds pass every message through the wire codec, as the runtime does: decoded
        // batches are EncodedBatch values (decision 0012), and primaries cut them with makeBatch.
        n.core.receive(this.wire ? decodeMessage(encodeMessage(e.message)) : e.message);
        this.drain(n);
        return;
      }
      case 'syncDone': {
        const n = this.nodes[e.node]!;
        if (n.core && n.inc === e.inc) this.syncDone(n, e.upTo);
        return;
      }
      case 'request': return this.onRequest(e.node, e.client, e.attempt, e.cmd);
      case 'reply': return this.onReply(this.clients[e.client - 1]!, e.attempt, e.reply);
      case 'clientStart': return this.startOp(this.clients[e.client]!);
      case 'clientTimeout': {
        const c = this.clients[e.client - 1]!;
        if (c.current && c.current.attempt === e.attempt) {
          c.target = this.rng.int(this.params.replicas);
          this.finishOp(c, null, 'ok');
        }
        return;
      }
      case 'fault': return this.fault();
      case 'restart': return this.restart(this.nodes[e.node]!);
      case 'heal': return this.finalHeal();
    }
  }

  private collectViolations(): void {
    if (this.oracle.violations.length > 0) this.violations.push(...this.oracle.violations.splice(0));
  }

  // ─── the end ──────────────────────────────────────────────────────────────────────────────

  private finish(): SeedResult {
    for (const n of this.nodes) if (n.core) this.harvestCoreStats(n.core);
    this.checkAcknowledgedKept();
    this.checkReplicaDigests();
    let unchecked = 0;
    if (this.violations.length === 0) {
      const lin = checkLinearizable(this.history);
      if (!lin.ok) {
        unchecked = lin.unchecked;
        this.violations.push(`linearizability (${lin.reason}) on key ${lin.key}: ${lin.detail}`);
      }
    }
    const livenessOk = this.liveAtUs - this.healUs <= LIVENESS_US;
    if (!livenessOk && this.violations.length === 0) {
      this.violations.push(`liveness: no commit within ${LIVENESS_US} us of the last heal`);
    }
    this.mix(this.oracle.chosenCount, this.history.length);
    return {
      seed: this.opts.seed, replicas: this.params.replicas, violations: this.violations, unchecked,
      decreesCommitted: this.oracle.chosenCount, opsChecked: this.history.filter((o) => o.returnTime !== null).length,
      clientOps: this.history.length, elections: this.elections, livenessOk, coverage: this.coverage,
      traceHash: (this.hash >>> 0).toString(16).padStart(8, '0'), trace: this.trace,
    };
  }

  /** Every write a client saw acknowledged is in a chosen decree. */
  private checkAcknowledgedKept(): void {
    const seen = new Set<string>();
    for (const v of this.oracle.chosenDigests()) {
      if (!v.startsWith('batch:')) continue;
      for (const c of v.slice(6).split('\u0001')) {
        const cmd = JSON.parse(c) as KvCommand;
        seen.add(requestKey(cmd.c, cmd.s));
      }
    }
    for (const op of this.history) {
      if (op.returnTime === null || op.input.kind === 'get') continue;
      const seq = Number(/\.(\d+)$/.exec(op.input.value)![1]);
      if (!seen.has(requestKey(op.clientId, seq))) {
        this.violations.push(`acknowledged ${op.input.kind} ${op.key}=${op.input.value} is not in the chosen log`);
      }
    }
  }

  /** Replicas that executed the same number of decrees hold the same state. */
  private checkReplicaDigests(): void {
    const byExecuted = new Map<number, string>();
    for (const n of this.nodes) {
      if (!n.core) continue;
      const d = n.kv.digest();
      const prior = byExecuted.get(n.executed);
      if (prior !== undefined && prior !== d) this.violations.push(`replicas at decree ${n.executed} hold different states`);
      byExecuted.set(n.executed, d);
    }
  }

  private harvestCoreStats(core: Replica): void {
    const s = core.stats;
    this.coverage.phase1WithHoles += s.phase1WithHoles;
    this.coverage.noopsFilled += s.noopsFilled;
    this.coverage.staleCopiesRefetched += s.staleCopiesRefetched;
    this.coverage.fetches += s.fetchesSent;
    this.coverage.stickyRefusals += s.stickyRefusals;
    this.coverage.compactionAborts += s.compactionAborts;
  }

  traceTail(): string[] {
    return [...this.trace];
  }

  private record(line: string): void {
    const entry = `${(this.now / 1000).toFixed(3)}ms ${line}`;
    this.trace.push(entry);
    if (this.trace.length > TRACE_TAIL) this.trace.shift();
    for (let i = 0; i < entry.length; i++) this.mix(entry.charCodeAt(i), 0);
  }

  /** FNV-1a over the event stream: equal hashes mean the same run. */
  private mix(a: number, b: number): void {
    let h = this.hash;
    h = Math.imul(h ^ (a & 0xffff), 0x01000193);
    h = Math.imul(h ^ (b & 0xffff), 0x01000193);
    h = Math.imul(h ^ (this.now & 0xffff), 0x01000193);
    this.hash = h >>> 0;
  }
}
