/**
 * The log-fsync stage (DESIGN §1, §3): owns the data directory's files. At start it checks and
 * bumps the replica metadata (cluster id, replica id, incarnation), recovers the segmented log
 * and hands the recovered records to the main thread. Then it loops on its own thread, which
 * may freeze (no sockets here): Atomics.wait on the persist ring, append everything available,
 * one fdatasync per group, mirror the highest promised ballot into the metadata file, and only
 * then publish the durable record seq on the durable ring. Between groups it answers catch-up
 * reads of decrees the core compacted from memory (a lagging peer is served from the log).
 *
 * Commit records alone do not start an fdatasync: nobody waits for one (it only moves the
 * durable commit point the retention floor is computed from, and a commit lost in a crash is
 * learned again from the peers). They ride in the next group that holds a promise, accept or
 * learned record, or are synced on their own once COMMIT_SYNC_MS has passed. At low load this
 * saves the second fdatasync per decree, and an accept no longer queues behind a commit's. The
 * consensus stage publishes them without ringing this stage's doorbell either: they are read at
 * the next wake-up, or within WAIT_MS when nothing else comes (then synced COMMIT_SYNC_MS later).
 *
 * Failure handling (storage issue): a failed write or fdatasync stops acknowledging. The stage
 * retries with backoff through recoverAfterFailure(), which rewrites every unacknowledged record
 * into a fresh segment — it never retries an fdatasync and trusts the page cache.
 */
import { join } from 'node:path';
import type { MessagePort } from 'node:worker_threads';
import { readMetadata, MetadataStore } from '../log/metadata.js';
import { NodeFileLayer } from '../log/node-file-layer.js';
import { encodeRecord } from '../codec/records.js';
import type { Entry } from '../core/types.js';
import { entriesFromLogRecords } from '../log/log-read.js';
import { SegmentLog } from '../log/segment-log.js';
import {
  STORED_ACCEPT, STORED_COMMIT, STORED_LEARNED, STORED_PROMISE, VALUE_PREFIX_BYTES, storedToRecordBytes,
} from '../log/stored-record.js';
import { Doorbell } from '../ring/doorbell.js';
import { RingConsumer, RingProducer } from '../ring/spsc-ring.js';
import { errorShape, PaxlineError } from './errors.js';
import { StallWriter } from './stall-journal.js';
import {
  C_APPENDED_SEQ, C_DURABLE_SEQ, C_FSYNCS, C_HEAP_LOG, C_LOG_BYTES, C_LOG_FAILURES, C_LOG_READS, C_OLDEST_CHECKPOINT,
  C_RETENTION_FLOOR, C_SEGMENTS_CREATED, C_SEGMENTS_RETIRED, F_STOP, fsyncHistogramSlot, sampleHeap,
  type StageShared,
} from './stage-protocol.js';

export interface LogStageInit {
  readonly shared: StageShared;
  /** The network+consensus stage's doorbell, rung with every durable position published. */
  readonly doorbell: SharedArrayBuffer;
  readonly dataDir: string;
  readonly clusterId: string;
  readonly replicaId: number;
  readonly init: boolean;
  readonly segmentBytes: number;
  /** ReplicaOptions.stallThresholdMs. */
  readonly stallThresholdMs: number;
}

/** What the log stage reports once recovered (posted to the main thread). */
export interface LogRecovered {
  readonly type: 'recovered';
  readonly incarnation: number;
  /** Every recovered core record, as codec/records.ts bytes, in log order. */
  readonly records: Uint8Array[];
  readonly promisedAtLeast: number;
  /** > 0 when the log is corrupt: the replica needs repair up to this decree. */
  readonly repairUpTo: number;
  readonly report: string;
}

/** Persist-ring control message (seq 0, type byte 0): mark the reported damage repaired. */
export const PERSIST_MARK_REPAIRED = 0;

const WAIT_MS = 50;
/** Segments stop taking groups up to 1/8 of their size early, differently on each replica. */
const ROLLOVER_SPREAD_DIVISOR = 8;
/** How long appended commit records may wait for a group that needs an fdatasync anyway. */
const COMMIT_SYNC_MS = 20;
const GROUP_RECORDS_MAX = 8192;
const RETENTION_EVERY_MS = 1000;

export function logDirOf(dataDir: string): string {
  return join(dataDir, 'log');
}

/** Opens metadata and log; throws PaxlineError for a refused data directory. */
function openStorage(o: LogStageInit): { meta: MetadataStore; log: SegmentLog; recovered: LogRecovered } {
  const fs = new NodeFileLayer();
  fs.mkdirp(o.dataDir);
  const found = readMetadata(fs, o.dataDir);
  let meta: MetadataStore;
  if (found.kind === 'none') {
    if (!o.init) {
      throw new PaxlineError('PAXLINE_DATA_DIR_EMPTY',
        `data directory ${o.dataDir} holds no replica metadata: start a NEW cluster with init ` +
        '(--init); a member whose disk was wiped must not rejoin under its old id (it would forget its promises)');
    }
    meta = MetadataStore.create(fs, o.dataDir, {
      clusterId: o.clusterId, replicaId: o.replicaId, incarnation: 0, promisedBallot: 0, logEpoch: 0,
    });
  } else {
    const m = found.metadata;
    if (m.clusterId !== o.clusterId || m.replicaId !== o.replicaId) {
      throw new PaxlineError('PAXLINE_DATA_DIR_MISMATCH',
        `data directory ${o.dataDir} belongs to cluster '${m.clusterId}' replica ${m.replicaId}, ` +
        `not cluster '${o.clusterId}' replica ${o.replicaId}`);
    }
    meta = MetadataStore.open(fs, o.dataDir)!;
  }
  const cur = meta.current;
  const incarnation = cur.incarnation + 1;
  meta.write({ clusterId: cur.clusterId, replicaId: cur.replicaId, incarnation, promisedBallot: cur.promisedBallot, logEpoch: cur.logEpoch });
  // Replicas on one disk must not all roll over at once (segment-log-options.ts).
  const opened = SegmentLog.open(fs, logDirOf(o.dataDir), {
    segmentBytes: o.segmentBytes,
    rolloverSpreadBytes: Math.floor(o.segmentBytes / ROLLOVER_SPREAD_DIVISOR / 8) * 8,
    rolloverSeed: o.replicaId,
  });
  const records: Uint8Array[] = [];
  for (const r of opened.records) records.push(storedToRecordBytes(r));
  return {
    meta, log: opened.log,
    recovered: {
      type: 'recovered', incarnation, records, promisedAtLeast: meta.current.promisedBallot,
      repairUpTo: opened.report.kind === 'corrupt' ? opened.report.repairDecreeMax : 0,
      report: opened.report.message,
    },
  };
}

export function runLogStage(o: LogStageInit, port: MessagePort): void {
  let storage: ReturnType<typeof openStorage>;
  try {
    storage = openStorage(o);
  } catch (e) {
    port.postMessage({ type: 'failed', error: errorShape(e) });
    return;
  }
  const { meta, log } = storage;
  port.postMessage(storage.recovered);

  const persist = new RingConsumer(o.shared.persist);
  const logReads = new RingConsumer(o.shared.logReads);
  const logReadReplies = new RingProducer(o.shared.logReadReplies, new Doorbell(o.doorbell));
  const bell = new Doorbell(o.shared.logDoorbell);
  const stalls = new StallWriter(o.shared.stalls, 'log', o.stallThresholdMs);
  const hasWork = (): boolean => !persist.isEmpty() || !logReads.isEmpty();
  /** A fetch of decrees compacted from the core's memory: answered from the log (log-read.ts). */
  const onLogRead = (m: Uint8Array): void => {
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const peer = v.getFloat64(0, true);
    const fromDecree = v.getFloat64(8, true);
    const toDecree = v.getFloat64(16, true);
    const committed = v.getFloat64(24, true);
    let entries: Entry[];
    try {
      entries = entriesFromLogRecords(log.readRecords(fromDecree, toDecree), fromDecree, toDecree);
    } catch (e) {
      port.postMessage({ type: 'logError', error: errorShape(e) });
      return; // the fetcher asks another peer
    }
    // A prefix of consecutive entries that fits the reply ring (at least one: a decree is at
    // most batchBytesMax, which options keep well inside the ring).
    const encoded: Uint8Array[] = [];
    let size = 20;
    for (const e of entries) {
      const b = encodeRecord({ type: 'learned', ...e });
      if (encoded.length > 0 && size + 4 + b.length > logReadReplies.messageBytesMax) break;
      encoded.push(b);
      size += 4 + b.length;
    }
    const reply = new Uint8Array(size);
    const rv = new DataView(reply.buffer);
    rv.setFloat64(0, peer, true);
    rv.setFloat64(8, committed, true);
    rv.setUint32(16, encoded.length, true);
    let at = 20;
    for (const b of encoded) {
      rv.setUint32(at, b.length, true);
      reply.set(b, at + 4);
      at += 4 + b.length;
    }
    if (reply.length <= logReadReplies.messageBytesMax && logReadReplies.tryPush(reply)) {
      logReadReplies.publish();
      counters[C_LOG_READS]!++;
    } else {
      port.postMessage({ type: 'logError', error: { code: 'PAXLINE_LOG_READ_DROPPED', message: `a catch-up reply of ${reply.length} bytes did not fit the reply ring; the peer will ask again` } });
    }
  };
  const durable = new RingProducer(o.shared.durable, new Doorbell(o.doorbell));
  const counters = new Float64Array(o.shared.counters);
  const flags = new Int32Array(o.shared.flags);
  const seqBytes = new Uint8Array(8);
  const seqView = new DataView(seqBytes.buffer);
  let lastSeq = 0;
  let markRepairedPending = false;
  let promiseToMirror = meta.current.promisedBallot;
  let bytes = 0;
  /** A record someone waits on (promise, accept, learned) was appended since the last sync. */
  let syncWanted = false;
  /** When the commit records appended since the last sync started waiting (-1: none waits). */
  let commitsWaitingSince = -1;

  const onRecord = (m: Uint8Array): void => {
    const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const seq = v.getFloat64(0, true);
    const type = m[8]!;
    if (seq === 0 && type === PERSIST_MARK_REPAIRED) {
      markRepairedPending = true;
      return;
    }
    if (type !== STORED_COMMIT) syncWanted = true;
    if (type === STORED_PROMISE) {
      const ballot = v.getFloat64(9, true);
      log.append(type, 0, ballot, EMPTY);
      if (ballot > promiseToMirror) promiseToMirror = ballot;
    } else if (type === STORED_COMMIT) {
      log.append(type, v.getFloat64(9, true), 0, EMPTY);
    } else if (type === STORED_ACCEPT || type === STORED_LEARNED) {
      const ballot = v.getFloat64(17, true);
      log.append(type, v.getFloat64(9, true), ballot, m.subarray(8 + VALUE_PREFIX_BYTES));
      if (type === STORED_ACCEPT && ballot > promiseToMirror) promiseToMirror = ballot;
    } else {
      throw new Error(`log stage: unknown record type ${type}`);
    }
    bytes += m.length;
    lastSeq = seq;
  };

  /**
   * Retention: retire the segments that hold only decrees every member has durably committed
   * (the consensus stage's retention floor) and that are older than the oldest checkpoint kept
   * (the apply stage's counter) — what no restart here and no lagging peer can still need.
   * Promise records in them are mirrored in the metadata file. Checked every RETENTION_EVERY_MS.
   */
  let lastRetentionCheck = performance.now();
  const retain = (): void => {
    lastRetentionCheck = performance.now();
    if (removalFailed) removeRetired(RETIRED_FILES_PER_RETRY);
    sampleHeap(counters, C_HEAP_LOG); // the status's heap figure, on the same beat
    const upTo = Math.min(counters[C_RETENTION_FLOOR]!, counters[C_OLDEST_CHECKPOINT]!);
    if (upTo <= 0) return;
    const segments = log.segmentSummaries().sort((a, b) => a.segment - b.segment);
    let below = 0;
    for (let i = 0; i < segments.length - 1; i++) { // never the newest (the write segment)
      const sg = segments[i]!;
      if (sg.lastDecree > upTo) break;
      below = sg.segment + 1;
    }
    if (below <= log.firstSegment) return;
    try {
      // The files go one per loop turn (removeRetired): ~10 unlinks at once held this thread
      // ~50 ms between two fsync groups.
      log.retireSegmentsBelow(below, { removeFilesNow: false });
    } catch (e) {
      port.postMessage({ type: 'logError', error: errorShape(e) });
    }
  };
  /** A removal failed: retried on the retention beat (retiredFilesPending is false after an error). */
  let removalFailed = false;
  /** Removes up to `n` retired segment files (between groups: ~3 ms each under load). */
  const removeRetired = (n: number): void => {
    removalFailed = false;
    try {
      counters[C_SEGMENTS_RETIRED]! += log.removeRetiredFiles(n).length;
    } catch (e) {
      removalFailed = true;
      port.postMessage({ type: 'logError', error: errorShape(e) });
    }
  };

  /** Housekeeping between two groups: retention on its beat, one retired file at a time. */
  const betweenGroups = (): void => {
    if (log.failed !== null) return;
    if (performance.now() - lastRetentionCheck >= RETENTION_EVERY_MS) retain();
    if (log.retiredFilesPending) removeRetired(1);
  };

  let backoffMs = 10;
  while (Atomics.load(flags, F_STOP) === 0) {
    const waitMs = commitsWaitingSince < 0 ? WAIT_MS
      : Math.max(0, COMMIT_SYNC_MS - (performance.now() - commitsWaitingSince));
    bell.waitSync(hasWork, waitMs);
    persist.drain(onRecord, GROUP_RECORDS_MAX);
    logReads.drain(onLogRead);
    if (lastSeq === counters[C_DURABLE_SEQ] && !markRepairedPending) {
      betweenGroups(); // idle: still retire what the floor and the checkpoints allow by now
      continue;
    }
    counters[C_APPENDED_SEQ] = lastSeq;
    if (!syncWanted && !markRepairedPending && log.failed === null) {
      // Only commit records since the last sync: let them wait for a group that syncs anyway.
      const now = performance.now();
      if (commitsWaitingSince < 0) commitsWaitingSince = now;
      if (now - commitsWaitingSince < COMMIT_SYNC_MS) continue;
    }
    syncWanted = false;
    commitsWaitingSince = -1;
    const t0 = performance.now();
    const segmentsBefore = log.stats.segmentsCreated;
    try {
      if (log.failed === null) log.sync();
      else log.recoverAfterFailure();
      const cur = meta.current;
      if (promiseToMirror > cur.promisedBallot) {
        meta.write({ clusterId: cur.clusterId, replicaId: cur.replicaId, incarnation: cur.incarnation, logEpoch: cur.logEpoch, promisedBallot: promiseToMirror });
      }
      if (markRepairedPending) {
        log.markRepaired();
        markRepairedPending = false;
      }
      backoffMs = 10;
    } catch (e) {
      counters[C_LOG_FAILURES]!++;
      port.postMessage({ type: 'logError', error: errorShape(e) });
      // Nothing since the last good sync is acknowledged; wait, then rewrite it (never retry
      // the failed fdatasync itself).
      Atomics.wait(flags, F_STOP, 0, backoffMs);
      backoffMs = Math.min(2000, backoffMs * 2);
      continue;
    }
    const micros = (performance.now() - t0) * 1000;
    stalls.logGroup(t0, micros / 1000, log.stats.segmentsCreated !== segmentsBefore);
    counters[fsyncHistogramSlot(micros)]!++;
    counters[C_FSYNCS]!++;
    counters[C_LOG_BYTES] = bytes;
    counters[C_DURABLE_SEQ] = lastSeq;
    counters[C_SEGMENTS_CREATED] = log.stats.segmentsCreated;
    seqView.setFloat64(0, lastSeq, true);
    while (!durable.tryPush(seqBytes)) durable.waitForRoom(8, WAIT_MS);
    durable.publish();
    betweenGroups();
  }
  // Stopping: the files still waiting go now (else the next open finds them as garbage).
  while (log.retiredFilesPending && log.failed === null && !removalFailed) removeRetired(RETIRED_FILES_PER_RETRY);
  log.close();
  port.postMessage({ type: 'closed' });
}

const EMPTY = new Uint8Array(0);
/** Retired files removed at once when retrying after an error, or when stopping. */
const RETIRED_FILES_PER_RETRY = 16;
