/**
 * The public façade of a running replica (DESIGN §1, §4): the only part on the application's
 * main thread. It starts the three stage workers, submits commands through the proposal ring and
 * resolves replicate() promises from the completion ring, matched by request seq.
 *
 *   const replica = await createReplica({ clusterId, replicaId, members, dataDir, stateMachine });
 *   const result = await replica.replicate(commandBytes);
 *
 * Start-up order: the log stage recovers (and checks the data directory), then the apply stage
 * loads the newest valid checkpoint, then the consensus stage restores the core from the
 * recovered records and opens its peer port.
 *
 * Rejections (coded errors, see errors.ts): PAXLINE_NOT_PRIMARY (with `primary`, the primary's
 * id when known) only for a command that was never proposed; PAXLINE_OUTCOME_UNKNOWN for one that
 * was proposed before leadership was lost (it may still execute); PAXLINE_BUSY past inflightMax
 * outstanding calls; PAXLINE_SHUTTING_DOWN once close() started.
 */
import { EventEmitter } from 'node:events';
import { getHeapStatistics } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { createDoorbell, Doorbell } from '../ring/doorbell.js';
import { RingConsumer, RingProducer } from '../ring/spsc-ring.js';
import type { ConsensusEvent, RejectionKind } from './consensus-stage.js';
import { PendingTable } from './pending-table.js';
import { observeGc, readStalls, StallWriter, type StallEvent } from './stall-journal.js';
import { StartupWatch } from './startup-watch.js';
import { PaxlineError, revive, reviveBytes, type ErrorShape } from './errors.js';
import type { LogRecovered } from './log-stage.js';
import { resolveReplicaOptions, type ReplicaOptions, type ResolvedReplicaOptions } from './options.js';
import {
  C_APPENDED_SEQ, C_BALLOT, C_CHECKPOINT_DECREE, C_CHECKPOINTS, C_COMMANDS_EXECUTED, C_COMMITTED,
  C_DECREES_PROPOSED, C_DURABLE_SEQ, C_ELECTIONS, C_EXECUTED, C_FSYNCS, C_LOG_BYTES, C_LOG_FAILURES, C_LOG_READS,
  C_APPLY_NICE, C_MESSAGES_RECEIVED, C_MESSAGES_SENT, C_PRIMARY, COMPLETION_ERROR, COMPLETION_READ, COMPLETION_READ_ERROR, COMPLETION_RESULT,
  C_FSYNC_HIST, C_HEAP_APPLY, C_HEAP_CONSENSUS, C_HEAP_LOG, HEAP_PHYSICAL_OFFSET, C_RETENTION_FLOOR, C_SEGMENTS_CREATED, C_SEGMENTS_RETIRED, createStageShared, F_STOP, FSYNC_HIST_BUCKETS, fsyncQuantileMs, REQUEST_HEADER_BYTES, type StageShared,
} from './stage-protocol.js';
import type { ReplicaRole } from './state-machine.js';

export interface FastReadOptions {
  /** Serve only once this replica has executed at least (its known commit point − this). Default 0. */
  readonly maxLagDecrees?: number;
  /** Reject with PAXLINE_TIMEOUT after this long. Default 5000. */
  readonly timeoutMs?: number;
}

export interface ReplicaStatus {
  readonly replicaId: number;
  readonly role: ReplicaRole;
  /** The primary's id when known, else -1. */
  readonly primary: number;
  readonly ballot: number;
  readonly incarnation: number;
  readonly peerPort: number;
  readonly decrees: { readonly committed: number; readonly executed: number; readonly proposed: number; readonly checkpoint: number };
  readonly log: {
    readonly appendedSeq: number; readonly durableSeq: number; readonly fsyncs: number; readonly bytes: number;
    readonly failures: number; readonly fsyncP50Ms: number; readonly fsyncP99Ms: number;
    /** Catch-up reads of compacted decrees answered from the log for lagging peers. */
    readonly readsServed: number;
    /**
     * fdatasync latencies since start: fsyncHistogram[k] counts syncs of [2^k, 2^(k+1)) µs
     * (subtract two snapshots for a window).
     */
    readonly fsyncHistogram: readonly number[];
    /** Segment files started (rollovers) and retired by retention since start. */
    readonly segmentsCreated: number;
    readonly segmentsRetired: number;
    /** Decrees every member has durably committed (retention may retire below it). */
    readonly retentionFloor: number;
  };
  readonly commandsExecuted: number;
  readonly checkpoints: number;
  readonly elections: number;
  readonly messages: { readonly sent: number; readonly received: number };
  readonly outstanding: number;
  /**
   * V8 heap in use, bytes, per thread: this (main) thread now, each stage as it last sampled
   * itself (about once a second). RSS covers all of them plus native memory (rings, buffers).
   */
  readonly heapUsedBytes: { readonly main: number; readonly consensus: number; readonly log: number; readonly apply: number };
  /**
   * The same heaps' physical size (pages written at least once, so part of RSS), bytes. A young
   * generation the process's flags fix large reaches RSS page by page as its thread allocates.
   */
  readonly heapPhysicalBytes: { readonly main: number; readonly consensus: number; readonly log: number; readonly apply: number };
  /**
   * The apply thread's nice value now: raised while this replica is a secondary with a known
   * primary, put back when it becomes primary (option secondaryApplyNice).
   */
  readonly applyNice: number;
  /** The consensus stage's own view: core status and stats, transport stats. */
  readonly consensus: unknown;
}

interface Pending {
  readonly resolve: (v: Uint8Array) => void;
  readonly reject: (e: Error) => void;
}

const WORKERS = new URL('../../workers/', import.meta.url);
const STARTUP_TIMEOUT_MS = 60_000;


export class PaxlineReplica extends EventEmitter {
  readonly replicaId: number;
  private readonly pending: PendingTable<Uint8Array>;
  private readonly reads = new Map<number, Pending & { timer: NodeJS.Timeout }>();
  private readonly statusWaiters = new Map<number, (s: unknown) => void>();
  private readonly checkpointWaiters = new Map<number, { resolve: (decree: number) => void; reject: (e: Error) => void }>();
  private readonly proposals: RingProducer;
  private readonly completions: RingConsumer;
  private readonly counters: Float64Array;
  private readonly overflow: Uint8Array[] = [];
  private nextSeq = 0;
  private nextRead = 0;
  private publishScheduled = false;
  private closing: Promise<void> | null = null;
  private failed: Error | null = null;
  private currentRole: ReplicaRole = 'secondary';
  private readonly stopGcWatch: () => void;

  private constructor(
    private readonly o: ResolvedReplicaOptions,
    private readonly shared: StageShared,
    doorbell: SharedArrayBuffer,
    readonly incarnation: number,
    readonly peerPort: number,
    private readonly logWorker: Worker,
    private readonly applyWorker: Worker,
    private readonly consensusWorker: Worker,
  ) {
    super();
    this.replicaId = o.replicaId;
    // Slots for the calls outstanding at once (beyond 65,536 the rest spill to a Map).
    this.pending = new PendingTable(Math.min(o.inflightMax, 65_536));
    this.proposals = new RingProducer(shared.proposals, new Doorbell(doorbell));
    this.completions = new RingConsumer(shared.completions);
    this.counters = new Float64Array(shared.counters);
    this.stopGcWatch = observeGc(new StallWriter(shared.stalls, 'main', o.stallThresholdMs));
    consensusWorker.on('message', (m: ConsensusEvent) => this.onConsensus(m));
    for (const [w, name] of [[logWorker, 'log'], [applyWorker, 'apply'], [consensusWorker, 'consensus']] as const) {
      w.on('message', (m: { type: string; error?: ErrorShape }) => {
        if (m.type === 'failed') this.fail(new PaxlineError('PAXLINE_STAGE_FAILED', `${name} stage failed: ${m.error!.code}: ${m.error!.message}`));
        else if (m.type === 'logError') this.emit('logError', revive(m.error!));
      });
      w.on('error', (e) => this.fail(new PaxlineError('PAXLINE_STAGE_FAILED', `${name} stage crashed: ${e.message}`)));
      w.on('exit', (code) => {
        if (this.closing === null) this.fail(new PaxlineError('PAXLINE_STAGE_FAILED', `${name} stage exited with code ${code}`));
      });
    }
    applyWorker.on('message', (m: { type: string; id?: number }) => {
      if (m.type !== 'checkpointed') return;
      const w = this.checkpointWaiters.get(m.id ?? 0);
      this.checkpointWaiters.delete(m.id ?? 0);
      const r = m as { decree?: number; error?: ErrorShape };
      if (r.error) w?.reject(revive(r.error));
      else w?.resolve(r.decree ?? 0);
    });
    void this.completionLoop();
  }

  static async create(options: ReplicaOptions): Promise<PaxlineReplica> {
    const o = resolveReplicaOptions(options);
    const shared = createStageShared(o.ringBytes);
    const doorbell = createDoorbell();
    const logWorker = new Worker(new URL('log.worker.js', WORKERS), {
      workerData: { shared, doorbell, dataDir: o.dataDir, clusterId: o.clusterId, replicaId: o.replicaId, init: o.init, segmentBytes: o.segmentBytes, stallThresholdMs: o.stallThresholdMs },
      name: `paxline-log-r${o.replicaId}`,
    });
    const started: Worker[] = [logWorker];
    // A stage that fails while a later one starts fails the creation (startup-watch.ts).
    const watch = new StartupWatch();
    watch.watch(logWorker, 'log');
    try {
      const recovered = await watch.next<LogRecovered>(logWorker, 'log stage', 'recovered', STARTUP_TIMEOUT_MS);
      const applyWorker = new Worker(new URL('apply.worker.js', WORKERS), {
        workerData: { options: o, shared, incarnation: recovered.incarnation },
        name: `paxline-apply-r${o.replicaId}`,
      });
      started.push(applyWorker);
      watch.watch(applyWorker, 'apply');
      // The apply stage's warnings (secondaryApplyNice) become process warnings of this thread.
      applyWorker.on('message', (m: { type: string; code?: string; message?: string }) => {
        if (m.type === 'warning') process.emitWarning(m.message ?? '', { code: m.code ?? 'PAXLINE_WARNING' });
      });
      const ready = await watch.next<{ executedUpTo: number }>(applyWorker, 'apply stage', 'ready',
        STARTUP_TIMEOUT_MS);
      const consensusWorker = new Worker(new URL('consensus.worker.js', WORKERS), {
        workerData: {
          options: o, shared, doorbell, incarnation: recovered.incarnation, records: recovered.records,
          promisedAtLeast: recovered.promisedAtLeast, repairUpTo: recovered.repairUpTo, executedUpTo: ready.executedUpTo,
        },
        name: `paxline-consensus-r${o.replicaId}`,
      });
      started.push(consensusWorker);
      watch.watch(consensusWorker, 'consensus');
      const listening = await watch.next<{ port: number }>(consensusWorker, 'consensus stage', 'listening',
        STARTUP_TIMEOUT_MS);
      watch.detach(); // from here the replica's own listeners watch the workers
      if (watch.failure !== null) throw watch.failure;
      return new PaxlineReplica(o, shared, doorbell, recovered.incarnation, listening.port, logWorker, applyWorker, consensusWorker);
    } catch (e) {
      Atomics.store(new Int32Array(shared.flags), F_STOP, 1);
      await Promise.all(started.map((w) => w.terminate()));
      watch.detach(); // after the workers are gone: an 'error' while they stop is absorbed
      throw e;
    }
  }

  get role(): ReplicaRole {
    return this.currentRole;
  }

  /** The primary's replica id when known, else -1. */
  get primary(): number {
    return this.counters[C_PRIMARY]!;
  }

  /**
   * Submits a command; resolves with the state machine's result once the command is committed
   * and executed on this replica. The bytes are copied at once (the caller may reuse its buffer).
   */
  replicate(command: Uint8Array): Promise<Uint8Array> {
    if (this.closing !== null || this.failed !== null) {
      return Promise.reject(this.failed ?? new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the replica is closing'));
    }
    if (!(command instanceof Uint8Array)) return Promise.reject(new PaxlineError('PAXLINE_BAD_OPTION', 'command must be a Uint8Array', { field: 'command' }));
    if (this.pending.size >= this.o.inflightMax) {
      return Promise.reject(new PaxlineError('PAXLINE_BUSY', `${this.pending.size} calls outstanding (inflightMax ${this.o.inflightMax})`));
    }
    if (command.length + REQUEST_HEADER_BYTES > this.o.batchBytesMax) {
      return Promise.reject(new PaxlineError('PAXLINE_BAD_OPTION', `command of ${command.length} bytes exceeds batchBytesMax`, { field: 'command' }));
    }
    const seq = ++this.nextSeq;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.add(seq, resolve, reject);
      // Written straight into the proposal ring (no intermediate buffer); only a full ring
      // makes a copy, kept in order in the overflow queue.
      const length = REQUEST_HEADER_BYTES + command.length;
      const at = this.overflow.length > 0 ? -1 : this.proposals.tryReserve(length);
      const out = at >= 0 ? this.proposals.bytes : new Uint8Array(length);
      const v = at >= 0 ? this.proposals.dataView : new DataView(out.buffer);
      const o = at >= 0 ? at : 0;
      v.setUint32(o, this.replicaId, true);
      v.setUint32(o + 4, this.incarnation, true);
      v.setFloat64(o + 8, seq, true);
      out.set(command, o + REQUEST_HEADER_BYTES);
      if (at < 0) {
        this.overflow.push(out);
        if (this.overflow.length === 1) void this.drainOverflow();
      }
      if (!this.publishScheduled) {
        this.publishScheduled = true;
        queueMicrotask(() => {
          this.publishScheduled = false;
          this.proposals.publish();
        });
      }
    });
  }

  /**
   * A read answered from this replica's state without going through the log: possibly stale,
   * by at most `maxLagDecrees` behind the commit point this replica knows.
   */
  fastRead(query: Uint8Array, options: FastReadOptions = {}): Promise<Uint8Array> {
    if (this.closing !== null || this.failed !== null) {
      return Promise.reject(this.failed ?? new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the replica is closing'));
    }
    const lag = options.maxLagDecrees ?? 0;
    const timeoutMs = options.timeoutMs ?? 5000;
    if (!Number.isSafeInteger(lag) || lag < 0) return Promise.reject(new PaxlineError('PAXLINE_BAD_OPTION', 'maxLagDecrees must be an integer ≥ 0', { field: 'maxLagDecrees' }));
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) return Promise.reject(new PaxlineError('PAXLINE_BAD_OPTION', 'timeoutMs must be > 0', { field: 'timeoutMs' }));
    const id = ++this.nextRead;
    const minDecree = Math.max(0, this.counters[C_COMMITTED]! - lag);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.reads.delete(id);
        reject(new PaxlineError('PAXLINE_TIMEOUT', `fast read: not caught up to decree ${minDecree} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.reads.set(id, { resolve, reject, timer });
      this.applyWorker.postMessage({ type: 'read', id, minDecree, query, deadline: Date.now() + timeoutMs });
    });
  }

  /**
   * The stall journal (src/runtime/stall-journal.ts): pauses of at least stallThresholdMs on this
   * replica's threads — log groups' write + fdatasync ('fsync', 'rollover' when the group moved to a
   * new segment), GC pauses of the main, consensus and apply threads ('gc'), checkpoint writes —
   * that began at or after `sinceMs` (ms since the epoch), oldest first; at most the last 2,047 of
   * each thread.
   */
  stalls(sinceMs = 0): StallEvent[] {
    if (typeof sinceMs !== 'number' || Number.isNaN(sinceMs)) {
      throw new PaxlineError('PAXLINE_BAD_OPTION', `sinceMs must be a number of ms since the epoch, got ${String(sinceMs)}`, { field: 'sinceMs' });
    }
    return readStalls(this.shared.stalls, sinceMs);
  }

  async status(): Promise<ReplicaStatus> {
    // The counters as they are now, not after the consensus stage's answer (up to 2 s later).
    const c = this.counters.slice();
    const consensus = this.closing === null && this.failed === null ? await this.ask() : null;
    return {
      replicaId: this.replicaId, role: this.currentRole, primary: c[C_PRIMARY]!, ballot: c[C_BALLOT]!,
      incarnation: this.incarnation, peerPort: this.peerPort,
      decrees: { committed: c[C_COMMITTED]!, executed: c[C_EXECUTED]!, proposed: c[C_DECREES_PROPOSED]!, checkpoint: c[C_CHECKPOINT_DECREE]! },
      log: {
        appendedSeq: c[C_APPENDED_SEQ]!, durableSeq: c[C_DURABLE_SEQ]!, fsyncs: c[C_FSYNCS]!, bytes: c[C_LOG_BYTES]!,
        failures: c[C_LOG_FAILURES]!, fsyncP50Ms: fsyncQuantileMs(c, 0.5), fsyncP99Ms: fsyncQuantileMs(c, 0.99),
        readsServed: c[C_LOG_READS]!,
        fsyncHistogram: Array.from(c.subarray(C_FSYNC_HIST, C_FSYNC_HIST + FSYNC_HIST_BUCKETS)),
        segmentsCreated: c[C_SEGMENTS_CREATED]!, segmentsRetired: c[C_SEGMENTS_RETIRED]!,
        retentionFloor: c[C_RETENTION_FLOOR]!,
      },
      commandsExecuted: c[C_COMMANDS_EXECUTED]!, checkpoints: c[C_CHECKPOINTS]!, elections: c[C_ELECTIONS]!,
      messages: { sent: c[C_MESSAGES_SENT]!, received: c[C_MESSAGES_RECEIVED]! },
      outstanding: this.pending.size,
      heapUsedBytes: { main: process.memoryUsage().heapUsed, consensus: c[C_HEAP_CONSENSUS]!, log: c[C_HEAP_LOG]!, apply: c[C_HEAP_APPLY]! },
      heapPhysicalBytes: {
        main: getHeapStatistics().total_physical_size, consensus: c[C_HEAP_CONSENSUS + HEAP_PHYSICAL_OFFSET]!,
        log: c[C_HEAP_LOG + HEAP_PHYSICAL_OFFSET]!, apply: c[C_HEAP_APPLY + HEAP_PHYSICAL_OFFSET]!,
      },
      applyNice: c[C_APPLY_NICE]!,
      consensus,
    };
  }

  /**
   * Takes a checkpoint now (after the decrees executed so far); resolves with its decree. Rejects
   * with the stage's error when it cannot be written (no saveState, disk full), and with
   * PAXLINE_SHUTTING_DOWN when the replica closes first.
   */
  checkpoint(): Promise<number> {
    if (this.closing !== null || this.failed !== null) {
      return Promise.reject(this.failed ?? new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the replica is closing'));
    }
    const id = ++this.nextRead;
    return new Promise((resolve, reject) => {
      this.checkpointWaiters.set(id, { resolve, reject });
      this.applyWorker.postMessage({ type: 'checkpointNow', id });
    });
  }

  /** Stops the stages in order (consensus, log, apply); rejects what is outstanding. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stopGcWatch();
    const waitClosed = (w: Worker): Promise<void> => new Promise((resolve) => {
      const t = setTimeout(() => void w.terminate().then(() => resolve()), 5000);
      const done = (): void => { clearTimeout(t); resolve(); };
      w.on('message', (m: { type: string }) => { if (m.type === 'closed') done(); });
      w.once('exit', done);
    });
    // Every listener is attached before any stage is told to stop, so no 'closed' is missed.
    const consensusClosed = waitClosed(this.consensusWorker);
    const logClosed = waitClosed(this.logWorker);
    const applyClosed = waitClosed(this.applyWorker);
    this.consensusWorker.postMessage({ type: 'close' });
    await consensusClosed;
    // The log stage finishes its group and stops; the flag is notified (it may be waiting on it
    // in a failure backoff) and its doorbell rung (it may be asleep on it).
    const flags = new Int32Array(this.shared.flags);
    Atomics.store(flags, F_STOP, 1);
    Atomics.notify(flags, F_STOP);
    new Doorbell(this.shared.logDoorbell).ring();
    await logClosed;
    this.applyWorker.postMessage({ type: 'close' });
    await applyClosed;
    // Results the apply stage produced before it stopped still resolve their callers.
    this.drainCompletions();
    const err = new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the replica closed before the command completed');
    this.pending.rejectAll(err);
    for (const r of this.reads.values()) { clearTimeout(r.timer); r.reject(err); }
    this.reads.clear();
    for (const w of this.checkpointWaiters.values()) w.reject(err);
    this.checkpointWaiters.clear();
    await Promise.all([this.consensusWorker.terminate(), this.logWorker.terminate(), this.applyWorker.terminate()]);
  }

  private fail(e: Error): void {
    if (this.failed !== null || this.closing !== null) return;
    this.failed = e;
    this.pending.rejectAll(e);
    this.emit('error', e);
    void this.close();
  }

  private ask(): Promise<unknown> {
    const id = ++this.nextRead;
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.statusWaiters.delete(id); resolve(null); }, 2000);
      this.statusWaiters.set(id, (s) => { clearTimeout(t); this.statusWaiters.delete(id); resolve(s); });
      this.consensusWorker.postMessage({ type: 'status', id });
    });
  }

  private onConsensus(m: ConsensusEvent): void {
    if (m.type === 'rejected') {
      const err = rejection(m.kind, m.primary);
      for (const seq of m.seqs) this.pending.reject(seq, err);
    } else if (m.type === 'role') {
      this.currentRole = m.role;
      this.applyWorker.postMessage({ type: 'notifyStatus', role: m.role, primary: m.primary, ballot: m.ballot });
      this.emit('role', { role: m.role, primary: m.primary, ballot: m.ballot });
      if (m.role === 'primary') this.emit('primary', { primary: m.primary, ballot: m.ballot });
    } else if (m.type === 'status') {
      this.statusWaiters.get(m.id)?.(m.status);
    }
  }

  private async drainOverflow(): Promise<void> {
    while (this.overflow.length > 0 && this.closing === null) {
      let i = 0;
      while (i < this.overflow.length && this.proposals.tryPush(this.overflow[i]!)) i++;
      if (i > 0) {
        this.overflow.splice(0, i);
        this.proposals.publish();
      }
      if (this.overflow.length > 0) await this.proposals.waitForRoomAsync(this.overflow[0]!.length, 50);
    }
  }

  private drainCompletions(): number {
    return this.completions.drainInPlace(this.onCompletion);
  }

  /** One completion, read in place: kind u8 | id f64 | result (copied out: the slot is reused). */
  private readonly onCompletion = (data: Uint8Array, at: number, length: number): void => {
    const kind = data[at];
    const id = this.completions.dataView.getFloat64(at + 1, true);
    const result = data.slice(at + 9, at + length);
    if (kind === COMPLETION_RESULT) {
      this.pending.resolve(id, result);
    } else if (kind === COMPLETION_READ || kind === COMPLETION_READ_ERROR) {
      const r = this.reads.get(id);
      if (!r) return;
      this.reads.delete(id);
      clearTimeout(r.timer);
      if (kind === COMPLETION_READ) r.resolve(result);
      else r.reject(reviveBytes(result));
    } else if (kind === COMPLETION_ERROR) {
      this.pending.reject(id, reviveBytes(result));
    }
  };

  private async completionLoop(): Promise<void> {
    while (this.closing === null && this.failed === null) {
      if (this.drainCompletions() === 0) await this.completions.waitForDataAsync(200);
    }
    this.drainCompletions();
  }
}

function rejection(kind: RejectionKind, primary: number): PaxlineError {
  if (kind === 'notPrimary') {
    return new PaxlineError('PAXLINE_NOT_PRIMARY', `not the primary${primary >= 0 ? ` (primary: replica ${primary})` : ''}`, primary >= 0 ? { primary } : {});
  }
  if (kind === 'busy') return new PaxlineError('PAXLINE_BUSY', 'the primary\'s proposal queue is full');
  return new PaxlineError('PAXLINE_OUTCOME_UNKNOWN', 'leadership was lost after the command was proposed: it may or may not execute');
}

/** Starts a replica: see PaxlineReplica and ReplicaOptions. */
export function createReplica(options: ReplicaOptions): Promise<PaxlineReplica> {
  return PaxlineReplica.create(options);
}
