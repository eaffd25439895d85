/**
 * The apply stage (DESIGN §1): loads the user's state machine module, executes committed decrees
 * strictly in decree order, answers fast reads, and saves / loads checkpoints.
 *
 * Committed decrees arrive on the execute ring (Atomics.waitAsync: this thread also answers fast
 * reads and status requests from its event loop). Each command carries its request id (origin
 * replica, incarnation, seq — stage-protocol.ts); a command submitted on this replica in this
 * incarnation gets its result pushed to the completion ring, which the main thread turns into
 * the resolution of replicate()'s promise. Commands from other replicas or earlier incarnations
 * execute all the same but resolve nobody here.
 *
 * Checkpoints: once `checkpointEveryBytes` (±20 %) of decree records or `checkpointEveryDecrees`
 * decrees have executed since the last one, the state is captured through saveState into memory
 * here, between two decrees, and written as a checksummed checkpoint file (src/log/checkpoint.ts)
 * by a writer thread while execution goes on (checkpoint-writer.ts, decision 0010); the newest
 * `checkpointsKept` are kept. At start the newest valid one is loaded (an older one if the newest
 * fails verification); decrees at or below it are skipped when the log replays them.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MessagePort } from 'node:worker_threads';
import {
  BATCH_COUNT_AT, BATCH_FIRST_AT, RECORD_BALLOT_AT, RECORD_DECREE_AT, decodeRecord, isAcceptedBatch,
} from '../codec/records.js';
import { assert } from '../core/assert.js';
import { listCheckpoints, openNewestValidCheckpoint } from '../log/checkpoint.js';
import { NodeFileLayer } from '../log/node-file-layer.js';
import { RingConsumer, RingProducer } from '../ring/spsc-ring.js';
import { CheckpointWriterHost, StateBuffer } from './checkpoint-writer.js';
import { observeGc, StallWriter } from './stall-journal.js';
import { errorShape, errorShapeBytes, PaxlineError } from './errors.js';
import type { ResolvedReplicaOptions } from './options.js';
import {
  C_APPLY_NICE, C_CHECKPOINT_DECREE, C_CHECKPOINTS, C_PRIMARY, C_ROLE, C_COMMANDS_EXECUTED, C_EXECUTED, C_HEAP_APPLY, C_OLDEST_CHECKPOINT, COMPLETION_READ,
  COMPLETION_ERROR, COMPLETION_READ_ERROR, COMPLETION_RESULT, F_CANDIDACY_BLOCKED, F_PEER_BLOCKED, F_STOP, REQUEST_HEADER_BYTES, startHeapSampling, type StageShared,
} from './stage-protocol.js';
import type { StateMachine, StateMachineFactory } from './state-machine.js';
import { secondaryNiceForThisThread } from './thread-nice.js';

export interface ApplyStageInit {
  readonly options: ResolvedReplicaOptions;
  readonly shared: StageShared;
  readonly incarnation: number;
}

const WAIT_MS = 200;
const POLICY_POLL_MS = 100;
const DECREES_PER_TURN = 256;
/**
 * Results are published to the main thread every this many, not only once a drain of the
 * execute ring is done: the main thread resolves the first callers (whose next commands start
 * the next decree) while this thread executes the rest of a large decree — the two overlap on
 * two cores (profiles/OPTIMIZATIONS.md, 32: median +30 % ops/s at 2,048 in flight, −3 % to +48 %).
 */
const COMPLETIONS_PER_PUBLISH = 128;

export function checkpointDirOf(dataDir: string): string {
  return join(dataDir, 'checkpoints');
}

async function loadFactory(path: string): Promise<StateMachineFactory> {
  const url = path.startsWith('file:') ? path : pathToFileURL(path).href;
  const mod = (await import(url)) as { default?: unknown; createStateMachine?: unknown };
  const factory = typeof mod.default === 'function' ? mod.default : mod.createStateMachine;
  if (typeof factory !== 'function') {
    throw new PaxlineError('PAXLINE_STATE_MACHINE', `state machine module ${path} exports no factory (default export or createStateMachine)`);
  }
  return factory as StateMachineFactory;
}

export async function runApplyStage(init: ApplyStageInit, port: MessagePort): Promise<void> {
  const o = init.options;
  const self = o.replicaId;
  const fs = new NodeFileLayer();
  const ckptDir = checkpointDirOf(o.dataDir);
  fs.mkdirp(ckptDir);
  const factory = await loadFactory(o.stateMachine);
  const smInit = { replicaId: self, members: o.members.map((m) => m.id), options: o.stateMachineOptions };
  let sm: StateMachine = factory(smInit);
  const opened = openNewestValidCheckpoint(fs, ckptDir, (reader) => {
    sm = factory(smInit); // start clean: an earlier, failed attempt may have loaded part of a state
    if (!sm.loadState) return false;
    sm.loadState(reader);
    return true;
  });
  let executed = opened.loaded?.decree ?? 0;
  const checkpointBase = executed;
  /** Decree of the last checkpoint captured (written or being written). */
  let lastCheckpoint = executed;
  /** Record bytes executed since the last capture, and the (randomised) amount that triggers one. */
  let bytesSinceCheckpoint = 0;
  const drawCheckpointBytes = (): number => Math.round(o.checkpointEveryBytes * (0.8 + 0.4 * Math.random()));
  let checkpointBytes = drawCheckpointBytes();
  const counters = new Float64Array(init.shared.counters);
  const flags = new Int32Array(init.shared.flags);
  counters[C_EXECUTED] = executed;
  counters[C_CHECKPOINT_DECREE] = executed;
  counters[C_OLDEST_CHECKPOINT] = listCheckpoints(fs, ckptDir)[0]?.decree ?? 0;
  const ring = new RingConsumer(init.shared.execute);
  // Off the commit path while secondary: a lower priority then (option secondaryApplyNice).
  // (A warning posted from here reaches the application as a process warning on its thread.)
  const nice = await secondaryNiceForThisThread(self, o.secondaryApplyNice,
    (message) => port.postMessage({ type: 'warning', code: 'PAXLINE_APPLY_NICE', message }));
  const baseNice = nice.nice;
  const followRole = (): void => {
    nice.follow(counters[C_ROLE]!, counters[C_PRIMARY]!, ring.pendingBytes / ring.capacity);
    counters[C_APPLY_NICE] = nice.nice;
  };
  followRole();
  port.postMessage({
    type: 'ready', executedUpTo: executed,
    skipped: opened.skipped.map((s) => `${s.name}: ${s.reason}`),
  });
  const completions = new RingProducer(init.shared.completions);
  const overflow: Uint8Array[] = [];
  let commands = 0;
  let lastBallot = 0;
  /** Fast reads waiting for the replica to catch up; dropped at their caller's deadline. */
  const pendingReads: { id: number; minDecree: number; query: Uint8Array; deadline: number }[] = [];

  /** Completions written since the last publish (see COMPLETIONS_PER_PUBLISH). */
  let sincePublish = 0;
  const complete = (kind: number, id: number, resultIn: Uint8Array): void => {
    let result = resultIn;
    if (9 + result.length > completions.messageBytesMax) {
      // Too large for the completion ring: the caller gets a coded error, the replica lives on.
      const message = `the state machine's result of ${result.length} bytes exceeds the limit of ${completions.messageBytesMax - 9} (ringBytes / 2)`;
      result = errorShapeBytes({ code: 'PAXLINE_STATE_MACHINE', message });
      kind = kind === COMPLETION_RESULT ? COMPLETION_ERROR : COMPLETION_READ_ERROR;
    }
    // Straight into the completion ring; a copy only when it is full (kept in order).
    const at = overflow.length > 0 ? -1 : completions.tryReserve(9 + result.length);
    if (at >= 0) {
      completions.bytes[at] = kind;
      completions.dataView.setFloat64(at + 1, id, true);
      completions.bytes.set(result, at + 9);
      if (++sincePublish >= COMPLETIONS_PER_PUBLISH) {
        sincePublish = 0;
        completions.publish();
      }
      return;
    }
    const msg = new Uint8Array(9 + result.length);
    msg[0] = kind;
    new DataView(msg.buffer).setFloat64(1, id, true);
    msg.set(result, 9);
    overflow.push(msg);
  };

  const checkDecree = (decree: number): boolean => {
    if (decree <= executed) {
      if (decree <= checkpointBase) return false; // already in the loaded checkpoint
      throw new Error(`apply stage: decree ${decree} again after ${executed}`);
    }
    if (decree !== executed + 1) throw new Error(`apply stage: decree ${decree} after ${executed}`);
    return true;
  };

  const onDecree = (bytes: Uint8Array): void => {
    if (isAcceptedBatch(bytes)) {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      // The usual record, walked in place: one view per command (what the state machine gets),
      // the request header read through one DataView of the whole record.
      const decree = dv.getFloat64(RECORD_DECREE_AT, true);
      if (!checkDecree(decree)) return;
      const context = { decree };
      const n = dv.getUint32(BATCH_COUNT_AT, true);
      let p = BATCH_FIRST_AT;
      for (let i = 0; i < n; i++) {
        const len = dv.getUint32(p, true);
        const h = p + 4;
        if (len < REQUEST_HEADER_BYTES || h + len > bytes.length) throw new Error(`apply stage: decree ${decree} has a malformed command`);
        const result = sm.execute(new Uint8Array(bytes.buffer, bytes.byteOffset + h + REQUEST_HEADER_BYTES, len - REQUEST_HEADER_BYTES), context);
        if (dv.getUint32(h, true) === self && dv.getUint32(h + 4, true) === init.incarnation) {
          complete(COMPLETION_RESULT, dv.getFloat64(h + 8, true), result);
        }
        p = h + len;
        commands++;
      }
      if (p !== bytes.length) throw new Error(`apply stage: decree ${decree} has trailing bytes`);
      executed = decree;
      bytesSinceCheckpoint += bytes.length;
      lastBallot = dv.getFloat64(RECORD_BALLOT_AT, true);
      return;
    }
    const rec = decodeRecord(bytes, false);
    if (rec.type !== 'accept') throw new Error('apply stage: execute ring carries accept records only');
    if (!checkDecree(rec.decree)) return;
    if (rec.value.kind === 'config') sm.notifyConfigurationChanged?.(rec.value.members);
    else assert(rec.value.kind === 'noop', 'apply stage: a batch record not walked in place');
    executed = rec.decree;
    bytesSinceCheckpoint += bytes.length;
    lastBallot = rec.ballot;
  };

  const serveReads = (): void => {
    const now = Date.now();
    for (let i = 0; i < pendingReads.length;) {
      const r = pendingReads[i]!;
      if (r.deadline < now) { pendingReads.splice(i, 1); continue; } // its caller timed out
      if (r.minDecree > executed) { i++; continue; }
      pendingReads.splice(i, 1);
      try {
        if (!sm.executeFastRead) throw new PaxlineError('PAXLINE_STATE_MACHINE', 'the state machine has no executeFastRead');
        complete(COMPLETION_READ, r.id, sm.executeFastRead(r.query));
      } catch (e) {
        complete(COMPLETION_READ_ERROR, r.id, errorShapeBytes(errorShape(e)));
      }
    }
  };

  // The writer thread takes the apply thread's base nice value when it starts (a thread inherits
  // its creator's, which may be raised by then), where allowed; it is started with the loop below.
  const writer = sm.saveState ? new CheckpointWriterHost(ckptDir, o.checkpointsKept, baseNice, { journal: init.shared.stalls, thresholdMs: o.stallThresholdMs }) : null;
  /** The checkpoint being written, if any (one at a time). */
  let writing: Promise<number> | null = null;
  /** Set once the stage stops or fails: no checkpoint is captured after that (the state may be
   *  half-way through a decree that threw, and a new write would outlive the writer's close). */
  let noMoreCheckpoints = false;
  const checkpointDue = (): boolean =>
    (o.checkpointEveryBytes > 0 && bytesSinceCheckpoint >= checkpointBytes) ||
    (o.checkpointEveryDecrees > 0 && executed - lastCheckpoint >= o.checkpointEveryDecrees);
  /**
   * Captures the state after `executed` (saveState into memory, on this thread) and has the
   * writer thread make it a durable checkpoint; resolves with its decree once it is. On failure
   * (disk full, say) the next one comes an interval later: the log still holds everything after
   * the last checkpoint written.
   */
  const startCheckpoint = (): Promise<number> => {
    if (noMoreCheckpoints) return Promise.reject(new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the apply stage is stopping'));
    const meta = { decree: executed, ballot: lastBallot, configNumber: 1, members: smInit.members };
    lastCheckpoint = executed;
    bytesSinceCheckpoint = 0;
    checkpointBytes = drawCheckpointBytes();
    const capture = new StateBuffer();
    try {
      sm.saveState!(capture);
    } catch (e) {
      return Promise.reject(e);
    }
    const done = writer!.write(meta, capture.take()).then((w) => {
      counters[C_CHECKPOINTS]!++;
      counters[C_CHECKPOINT_DECREE] = w.decree;
      // The log stage retires segments only below the oldest checkpoint kept (a fallback target).
      counters[C_OLDEST_CHECKPOINT] = w.oldestKept;
      return w.decree;
    }).finally(() => {
      if (writing === done) writing = null;
    });
    writing = done;
    return done;
  };
  const maybeCheckpoint = (): void => {
    if (writer === null || writing !== null || !checkpointDue()) return;
    startCheckpoint().catch((e: unknown) => {
      if (!noMoreCheckpoints) port.postMessage({ type: 'logError', error: errorShape(e) });
    });
  };
  /** Resolves once no checkpoint is being written (whatever became of the last one). */
  const writesSettled = async (): Promise<void> => {
    while (writing !== null) await writing.catch(() => undefined);
  };
  /** checkpointNow: after the one in flight (if any), a new one of the state as it is then. */
  const checkpointNow = async (): Promise<number> => {
    await writesSettled();
    return startCheckpoint();
  };

  // RSL's canBecomePrimary / acceptMessageFrom run here, with the state machine; the consensus
  // stage reads their answers from shared flags (polled, so a change applies within POLL_MS).
  const memberIds = smInit.members;
  const pollPolicy = (): void => {
    if (sm.canBecomePrimary) Atomics.store(flags, F_CANDIDACY_BLOCKED, sm.canBecomePrimary() ? 0 : 1);
    if (sm.acceptMessageFrom) {
      memberIds.forEach((id, i) => Atomics.store(flags, F_PEER_BLOCKED + i, sm.acceptMessageFrom!(id) ? 0 : 1));
    }
  };
  pollPolicy();
  const heapTimer = startHeapSampling(counters, C_HEAP_APPLY);
  const stopGcWatch = observeGc(new StallWriter(init.shared.stalls, 'apply', o.stallThresholdMs));
  const policyTimer = sm.canBecomePrimary || sm.acceptMessageFrom ? setInterval(pollPolicy, POLICY_POLL_MS) : null;
  let stopping = false;
  port.on('message', (msg: { type: string; id?: number; minDecree?: number; query?: Uint8Array; deadline?: number; role?: string; primary?: number; ballot?: number }) => {
    if (msg.type === 'read') {
      pendingReads.push({ id: msg.id!, minDecree: msg.minDecree!, query: msg.query!, deadline: msg.deadline ?? Infinity });
      serveReads();
      flush();
    } else if (msg.type === 'notifyStatus') {
      sm.notifyStatus?.({ role: msg.role as 'primary', primary: msg.primary!, ballot: msg.ballot! });
    } else if (msg.type === 'checkpointNow') {
      if (!sm.saveState) {
        port.postMessage({ type: 'checkpointed', id: msg.id, error: { code: 'PAXLINE_STATE_MACHINE', message: 'the state machine has no saveState' } });
        return;
      }
      checkpointNow().then(
        (decree) => port.postMessage({ type: 'checkpointed', id: msg.id, decree }),
        (e: unknown) => port.postMessage({ type: 'checkpointed', id: msg.id, error: errorShape(e) }),
      );
    } else if (msg.type === 'close') {
      stopping = true;
    }
  });

  const flush = (): void => {
    let i = 0;
    while (i < overflow.length && completions.tryPush(overflow[i]!)) i++;
    if (i > 0) overflow.splice(0, i);
    sincePublish = 0;
    completions.publish();
  };

  try {
    writer?.start(); // inside the try: closed on every way out
    while (!stopping && Atomics.load(flags, F_STOP) === 0) {
      followRole();
      const n = ring.drain(onDecree, DECREES_PER_TURN);
      if (n > 0) {
        counters[C_EXECUTED] = executed;
        counters[C_COMMANDS_EXECUTED] = commands;
        serveReads();
        maybeCheckpoint();
      }
      flush();
      if (overflow.length > 0) await completions.waitForRoomAsync(1024, 10);
      else if (n < DECREES_PER_TURN) await ring.waitForDataAsync(WAIT_MS);
      else await new Promise((r) => setImmediate(r)); // let reads and control messages in
    }
  } catch (e) {
    noMoreCheckpoints = true; // before the close: a waiting checkpointNow must not capture this state
    await writer?.close();
    port.postMessage({ type: 'failed', error: errorShape(e) });
    return;
  }
  if (policyTimer) clearInterval(policyTimer);
  clearInterval(heapTimer);
  stopGcWatch();
  // A checkpoint being written is finished (it is a few fsyncs), not abandoned half-way; none
  // starts after this point (a waiting checkpointNow is refused).
  noMoreCheckpoints = true;
  await writesSettled();
  await writer?.close();
  sm.shutDown?.();
  port.postMessage({ type: 'closed', executed });
}

