/**
 * The network + consensus stage (DESIGN §1): the pure core, the TCP transport to peers, and the
 * core's clock. Heartbeats and election timers live here, on a thread that runs no user code and
 * no fsync, so a slow apply, a GC pause in the application or a slow disk does not start a
 * needless election.
 *
 * Inputs: proposals (ring from the main thread), durable positions (ring from the log stage),
 * peer messages (sockets), ticks (a timer). After a burst of inputs the stage takes the core's
 * Ready once (setImmediate coalescing) and routes it:
 *   persist          → persist ring (log stage), in order
 *   send             → transport now
 *   sendAfterPersist → held until the durable position covers afterSeq
 *   execute          → execute ring (apply stage), in decree order
 *   dropped          → the main thread (rejections: one message per Ready, not per command)
 *   role             → the main thread and the counters
 * A ring that is full keeps its messages in an ordered overflow queue, retried every turn; the
 * core's pipeline depth bounds how much that can be.
 *
 * batchDelayMs > 0 (a primary only): drained proposals are held here, in order, and handed to the
 * core at most once per batchDelayMs — whole batches (the core's cutBatch rule) at once when they
 * fill one, the rest when the delay is up. While anything is held a timer is armed for that
 * moment. A replica that is not primary holds nothing (its commands are refused at once), and
 * what it held when it stopped being primary is handed over (and refused) at the next pump.
 */
import type { MessagePort } from 'node:worker_threads';
import { decodeRecord, encodeRecordInto, recordBytes } from '../codec/records.js';
import { EncodedBatch } from '../codec/value-body.js';
import { Replica, batchLength } from '../core/replica.js';
import type { DeferredMessage, Entry, LogRecord, Message, Ready, Role } from '../core/types.js';
import { PeerTransport } from '../net/peer-transport.js';
import { Doorbell } from '../ring/doorbell.js';
import { RingConsumer, RingProducer } from '../ring/spsc-ring.js';
import { errorShape } from './errors.js';
import { observeGc, StallWriter } from './stall-journal.js';
import { PERSIST_MARK_REPAIRED } from './log-stage.js';
import type { ResolvedReplicaOptions } from './options.js';
import {
  C_BALLOT, C_COMMITTED, C_DECREES_PROPOSED, C_ELECTIONS, C_HEAP_CONSENSUS, C_MESSAGES_RECEIVED, C_MESSAGES_SENT,
  C_PRIMARY, C_RETENTION_FLOOR, C_ROLE, F_CANDIDACY_BLOCKED, F_PEER_BLOCKED, REQUEST_HEADER_BYTES, ROLE_PREPARING, ROLE_PRIMARY,
  ROLE_SECONDARY, startHeapSampling, type StageShared,
} from './stage-protocol.js';

export interface ConsensusStageInit {
  readonly options: ResolvedReplicaOptions;
  readonly shared: StageShared;
  readonly doorbell: SharedArrayBuffer;
  readonly incarnation: number;
  readonly records: Uint8Array[];
  readonly promisedAtLeast: number;
  readonly repairUpTo: number;
  readonly executedUpTo: number;
}

export type RejectionKind = 'notPrimary' | 'outcomeUnknown' | 'busy';

/** Posted to the main thread. */
export type ConsensusEvent =
  | { readonly type: 'listening'; readonly port: number }
  | { readonly type: 'rejected'; readonly kind: RejectionKind; readonly seqs: number[]; readonly primary: number }
  | { readonly type: 'role'; readonly role: Role; readonly primary: number; readonly ballot: number }
  | { readonly type: 'status'; readonly id: number; readonly status: unknown }
  | { readonly type: 'failed'; readonly error: ReturnType<typeof errorShape> }
  | { readonly type: 'closed' };

const ROLE_CODE: Record<Role, number> = { secondary: ROLE_SECONDARY, preparing: ROLE_PREPARING, primary: ROLE_PRIMARY };
const WAIT_MS = 200;

export class Overflowing {
  private readonly queue: Uint8Array[] = [];
  /** Something pushed since the last waking publish wants its consumer woken. */
  private wakeWanted = false;

  constructor(private readonly ring: RingProducer) {}

  /** `wake` false: a message no one waits on (see RingProducer.publish). */
  push(bytes: Uint8Array, wake = true): void {
    this.wakeWanted ||= wake;
    if (this.queue.length > 0 || !this.ring.tryPush(bytes)) this.queue.push(bytes);
  }

  /**
   * Pushes a message of `size` bytes that `write(out, dv, at)` writes: straight into the ring's
   * slot when it has room and nothing is queued (no intermediate buffer), else into a fresh
   * buffer kept in order in the queue.
   */
  pushWith(size: number, write: (out: Uint8Array, dv: DataView, at: number) => void, wake = true): void {
    this.wakeWanted ||= wake;
    const at = this.queue.length > 0 ? -1 : this.ring.tryReserve(size);
    if (at >= 0) {
      write(this.ring.bytes, this.ring.dataView, at);
      return;
    }
    const out = new Uint8Array(size);
    write(out, new DataView(out.buffer), 0);
    this.queue.push(out);
  }

  /** Retries the queue; publishes. Returns whether anything is still waiting. */
  flush(): boolean {
    let i = 0;
    while (i < this.queue.length && this.ring.tryPush(this.queue[i]!)) i++;
    if (i > 0) this.queue.splice(0, i);
    this.ring.publish(this.wakeWanted);
    if (this.queue.length === 0) this.wakeWanted = false;
    return this.queue.length > 0;
  }
}

export async function runConsensusStage(init: ConsensusStageInit, port: MessagePort): Promise<void> {
  const o = init.options;
  const self = o.replicaId;
  const counters = new Float64Array(init.shared.counters);
  const records: LogRecord[] = init.records.map((b) => decodeRecord(b));
  // The checkpoint's decree is executed (hence chosen): the core starts from it, even when the
  // log's segments below it were retired.
  const core = Replica.restore({
    replicaId: self,
    members: o.members.map((m) => m.id),
    electionTimeoutTicksMin: o.electionTimeoutTicksMin,
    electionTimeoutTicksMax: o.electionTimeoutTicksMax,
    heartbeatTicks: o.heartbeatTicks,
    checkQuorumTicks: o.checkQuorumTicks,
    newLeaderGracePeriodTicks: o.newLeaderGracePeriodTicks,
    pipelineDepth: o.pipelineDepth,
    batchCountMax: o.batchCountMax,
    batchBytesMax: o.batchBytesMax,
    proposalQueueMax: o.inflightMax,
    retainDecrees: o.retainDecrees,
    messageEntriesMax: o.messageEntriesMax,
    makeBatch: EncodedBatch.of,
    executedUpTo: init.executedUpTo,
    random: Math.random,
  }, records, {
    promisedAtLeast: init.promisedAtLeast,
    checkpointDecree: init.executedUpTo,
    ...(init.repairUpTo > 0 ? { repairUpTo: init.repairUpTo } : {}),
  });
  records.length = 0;

  const flags = new Int32Array(init.shared.flags);
  const memberIndex = new Map(o.members.map((m, i) => [m.id, i] as const));
  const bell = new Doorbell(init.doorbell);
  const proposals = new RingConsumer(init.shared.proposals);
  const durable = new RingConsumer(init.shared.durable);
  const logBell = new Doorbell(init.shared.logDoorbell);
  const persist = new Overflowing(new RingProducer(init.shared.persist, logBell));
  const logReads = new RingProducer(init.shared.logReads, logBell);
  const logReadReplies = new RingConsumer(init.shared.logReadReplies);
  const execute = new Overflowing(new RingProducer(init.shared.execute));
  let deferred: DeferredMessage[] = [];
  let durableSeq = 0;
  let wasRepairing = core.needsRepair();
  let stopped = false;
  let pumpScheduled = false;
  let backlog = false;
  let sent = 0;
  let received = 0;
  /** batchDelayMs (see the file comment): proposals waiting for a cut, in order; the last cut. */
  let held: Uint8Array[] = [];
  let lastCutMs = 0;
  let holdTimer: ReturnType<typeof setTimeout> | null = null;
  /**
   * How many of the first held commands make whole batches (the core's rule, batchLength): a
   * batch is whole when it reached batchCountMax or the next held command would not fit it.
   */
  const wholeBatches = (): number => {
    let whole = 0;
    for (;;) {
      const n = batchLength(held, whole, o.batchCountMax, o.batchBytesMax);
      if (n === 0 || (whole + n === held.length && n < o.batchCountMax)) return whole;
      whole += n;
    }
  };
  /**
   * Hands held commands to `enqueue`: all of them when this replica is not primary or the delay
   * since the last cut is up, else the whole batches among them; arms the timer for the rest.
   */
  const releaseHeld = (primary: boolean, enqueue: (command: Uint8Array) => void): void => {
    const now = performance.now();
    const due = lastCutMs + o.batchDelayMs;
    const n = !primary || now >= due ? held.length : wholeBatches();
    if (n > 0) {
      for (let i = 0; i < n; i++) enqueue(held[i]!);
      held = n === held.length ? [] : held.slice(n);
      lastCutMs = now;
    }
    if (holdTimer !== null && (held.length === 0 || n > 0)) {
      clearTimeout(holdTimer);
      holdTimer = null;
    }
    if (held.length > 0 && holdTimer === null) {
      const wait = Math.max(0, lastCutMs + o.batchDelayMs - now);
      holdTimer = setTimeout(() => { holdTimer = null; schedulePump(); }, wait);
    }
  };

  const transport = await PeerTransport.start({
    self,
    clusterId: o.clusterId,
    configNumber: 1,
    incarnation: init.incarnation,
    listen: { host: o.members.find((m) => m.id === self)!.host, port: o.members.find((m) => m.id === self)!.port },
    peers: o.members.filter((m) => m.id !== self),
    onMessage: (m: Message) => {
      received++;
      const from = memberIndex.get(m.from);
      if (from !== undefined && Atomics.load(flags, F_PEER_BLOCKED + from) === 1) return; // acceptMessageFrom said no
      core.receive(m);
      schedulePump();
    },
  });
  port.postMessage({ type: 'listening', port: transport.port } satisfies ConsensusEvent);

  const send = (m: Message): void => {
    sent++;
    transport.send(m);
  };

  const headerView = (c: Uint8Array): DataView => new DataView(c.buffer, c.byteOffset, REQUEST_HEADER_BYTES);
  /** Request seqs of this incarnation's own commands among `commands`. */
  const ownSeqs = (commands: readonly Uint8Array[]): number[] => {
    const seqs: number[] = [];
    for (const c of commands) {
      if (c.length < REQUEST_HEADER_BYTES) continue;
      const v = headerView(c);
      if (v.getUint32(0, true) === self && v.getUint32(4, true) === init.incarnation) seqs.push(v.getFloat64(8, true));
    }
    return seqs;
  };
  const reject = (kind: RejectionKind, commands: readonly Uint8Array[], primary: number): void => {
    const seqs = ownSeqs(commands);
    if (seqs.length > 0) port.postMessage({ type: 'rejected', kind, seqs, primary } satisfies ConsensusEvent);
  };

  const route = (r: Ready): void => {
    for (const { seq, record } of r.persist) {
      // f64 seq | record, written straight into the persist ring.
      // A commit record alone does not wake the log stage: it starts no fdatasync (log-stage.ts)
      // and nobody waits for it, so it goes with the next record that does, or the stage's
      // wait timeout — one wake-up per decree fewer on every replica.
      persist.pushWith(8 + recordBytes(record), (out, dv, at) => {
        dv.setFloat64(at, seq, true);
        encodeRecordInto(record, out, dv, at + 8);
      }, record.type !== 'commit');
    }
    const repairing = core.needsRepair();
    if (wasRepairing && !repairing) {
      const msg = new Uint8Array(9); // seq 0, type PERSIST_MARK_REPAIRED
      msg[8] = PERSIST_MARK_REPAIRED;
      persist.push(msg);
    }
    wasRepairing = repairing;
    for (const m of r.send) send(m);
    for (const d of r.sendAfterPersist) {
      if (d.afterSeq <= durableSeq) send(d.message);
      else deferred.push(d);
    }
    for (const read of r.readLog) {
      const req = new Uint8Array(32);
      const v = new DataView(req.buffer);
      v.setFloat64(0, read.to, true);
      v.setFloat64(8, read.fromDecree, true);
      v.setFloat64(16, read.toDecree, true);
      v.setFloat64(24, read.committed, true);
      if (logReads.tryPush(req)) logReads.publish(); // else dropped: the fetcher retries
    }
    for (const e of r.execute) {
      const record: LogRecord = { type: 'accept', decree: e.decree, ballot: e.ballot, value: e.value };
      execute.pushWith(recordBytes(record), (out, dv, at) => encodeRecordInto(record, out, dv, at));
    }
    if (r.dropped.neverProposed.length > 0) reject('notPrimary', r.dropped.neverProposed, core.status().knownPrimary);
    if (r.dropped.outcomeUnknown.length > 0) reject('outcomeUnknown', r.dropped.outcomeUnknown, core.status().knownPrimary);
    if (r.role !== null) {
      const s = core.status();
      counters[C_ROLE] = ROLE_CODE[r.role];
      counters[C_PRIMARY] = s.knownPrimary;
      counters[C_BALLOT] = s.leaderBallot || s.promised;
      if (r.role === 'primary') counters[C_ELECTIONS]!++;
      port.postMessage({ type: 'role', role: r.role, primary: r.role === 'primary' ? self : s.knownPrimary, ballot: s.promised } satisfies ConsensusEvent);
    }
  };

  const pump = (): void => {
    pumpScheduled = false;
    if (stopped) return;
    // Proposals: every available one, in order.
    const notPrimary: Uint8Array[] = [];
    const busy: Uint8Array[] = [];
    let hint = -1;
    let queued = 0;
    const holding = o.batchDelayMs > 0 && counters[C_ROLE] === ROLE_PRIMARY;
    const enqueue = (command: Uint8Array): void => {
      const res = core.enqueue(command);
      if (res.ok) {
        queued++;
      } else {
        hint = res.primaryHint;
        (res.reason === 'busy' ? busy : notPrimary).push(command);
      }
    };
    // One copy of everything drained, commands handed to the core as views of it (the ring's
    // slots are reused once drain returns): one allocation per drain, not per command.
    const batch = new Uint8Array(proposals.pendingBytes);
    let batchAt = 0;
    proposals.drain((bytes) => {
      let command: Uint8Array;
      if (batchAt + bytes.length <= batch.length) {
        batch.set(bytes, batchAt);
        command = batch.subarray(batchAt, batchAt + bytes.length);
        batchAt += bytes.length;
      } else {
        command = bytes.slice(); // published after pendingBytes was read
      }
      // Queued, not proposed one by one: a decree per command while the pipeline has room
      // would split this drain into many small decrees (each costs its round of messages,
      // fsyncs and thread wake-ups); proposeQueued() below cuts them as one batch.
      // With batchDelayMs, held here (not in the core, which cuts on any input while the
      // pipeline has room) until a decree may be cut; behind what is held already, in order.
      if (holding || held.length > 0) held.push(command);
      else enqueue(command);
    });
    if (held.length > 0) releaseHeld(holding, enqueue);
    if (queued > 0) core.proposeQueued();
    if (notPrimary.length > 0) reject('notPrimary', notPrimary, hint);
    if (busy.length > 0) reject('busy', busy, self);
    // Durable positions.
    let upTo = durableSeq;
    durable.drain((bytes) => {
      upTo = Math.max(upTo, new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true));
    });
    if (upTo > durableSeq) {
      durableSeq = upTo;
      core.persisted(upTo);
      if (deferred.length > 0) {
        const keep: DeferredMessage[] = [];
        for (const d of deferred) (d.afterSeq <= upTo ? send(d.message) : keep.push(d));
        deferred = keep;
      }
    }
    logReadReplies.drain((bytes) => {
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const to = v.getFloat64(0, true);
      const committed = v.getFloat64(8, true);
      const count = v.getUint32(16, true);
      const entries: Entry[] = [];
      for (let i = 0, at = 20; i < count; i++) {
        const len = v.getUint32(at, true);
        const rec = decodeRecord(bytes.slice(at + 4, at + 4 + len));
        if (rec.type === 'learned' || rec.type === 'accept') entries.push({ decree: rec.decree, ballot: rec.ballot, value: rec.value });
        at += 4 + len;
      }
      send({ type: 'fetchReply', from: self, to, config: 1, entries, committed });
    });
    route(core.takeReady());
    backlog = persist.flush();
    backlog = execute.flush() || backlog;
    const s = core.status();
    counters[C_COMMITTED] = s.committed;
    counters[C_RETENTION_FLOOR] = core.retentionFloor();
    counters[C_PRIMARY] = s.role === 'primary' ? self : s.knownPrimary;
    counters[C_BALLOT] = s.promised;
    counters[C_DECREES_PROPOSED] = core.stats.decreesProposed;
    counters[C_MESSAGES_SENT] = sent;
    counters[C_MESSAGES_RECEIVED] = received;
    if (backlog) schedulePump();
  };

  function schedulePump(): void {
    if (pumpScheduled || stopped) return;
    pumpScheduled = true;
    setImmediate(pump);
  }

  const heapTimer = startHeapSampling(counters, C_HEAP_CONSENSUS);
  const stopGcWatch = observeGc(new StallWriter(init.shared.stalls, 'consensus', o.stallThresholdMs));
  const ticker = setInterval(() => {
    core.setCandidacyAllowed(Atomics.load(flags, F_CANDIDACY_BLOCKED) === 0);
    core.tick();
    pump();
  }, o.tickMs);

  // The rings' doorbell: proposals from the main thread, durable positions from the log stage.
  const hasWork = (): boolean => !proposals.isEmpty() || !durable.isEmpty() || !logReadReplies.isEmpty();
  const ringLoop = async (): Promise<void> => {
    while (!stopped) {
      await bell.wait(hasWork, WAIT_MS);
      if (hasWork()) pump();
      // When the rings never run dry the wait resolves at once, in a microtask: yield a turn so
      // socket reads and the tick timer (heartbeats, elections) are not starved.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  void ringLoop();

  port.on('message', (msg: { type: string; id?: number }) => {
    if (msg.type === 'status') {
      const status = { core: core.status(), stats: { ...core.stats }, transport: transport.stats(), durableSeq, deferred: deferred.length, doorbellWakeups: bell.wakeups };
      port.postMessage({ type: 'status', id: msg.id ?? 0, status } satisfies ConsensusEvent);
    } else if (msg.type === 'close') {
      stopped = true;
      clearInterval(ticker);
      if (holdTimer !== null) clearTimeout(holdTimer);
      clearInterval(heapTimer);
      stopGcWatch();
      void transport.close().then(() => port.postMessage({ type: 'closed' } satisfies ConsensusEvent));
    }
  });
  pump();
}
