/**
 * The log benchmark behind `paxline bench-log` (storage issue): measures, in one run, on a real
 * file system with real fdatasync,
 *
 *  - groupCommitMBps: SegmentLog appends of 64 KiB records, `groupRecords` per sync, on a log in
 *    its steady state: retention retires every segment but the current one and the one before
 *    it as soon as the log rolls over (as a replica that checkpoints at least once a segment
 *    does), and the log recycles retired segment files (recycleSegments, default 2). Before the
 *    first measured round the log is written until its pool of free files is full (it has
 *    rolled over recycleSegments + 2 times), unmeasured; the rounds then continue that log, so
 *    rollovers during them take a recycled file;
 *  - groupCommitFirstPassMBps: the same appends on a fresh log (each round a new one), whose
 *    segments are preallocated by zero-fill: what a new replica sees until its first segments
 *    are retired. Reported so that the steady-state figure hides nothing;
 *  - rawFloorMBps: the floor under both — sequential writeSync of the same records into a
 *    preallocated file, one fdatasync per group of the same size — alternated with the above in
 *    rounds (raw, first pass, steady state), so all see the same neighbours;
 *  - commandsPerSec: 16-byte commands through the log stage: another thread builds decrees
 *    (≤ 1,024 commands or ≤ 64 KiB) and hands them over an SPSC ring; this thread appends each
 *    as a record (CRC and index included) and syncs once per drained batch (one fdatasync per
 *    group);
 *  - recoveryMBps: SegmentLog.open verifying a large log (default 1 GiB) and keeping every record
 *    (recoveryVerifyOnlyMBps: keeping none, as behind a checkpoint), with a cold page cache
 *    when it can drop caches (as root), else reported as warm.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { NodeFileLayer } from '../../src/log/node-file-layer.js';
import { SegmentLog } from '../../src/log/segment-log.js';
import { RingConsumer, createRingBuffer } from '../../src/ring/spsc-ring.js';

export interface LogBenchOptions {
  /** Where to put the files (a directory on the disk to measure). Default: os.tmpdir(). */
  readonly dir?: string;
  readonly recordBytes?: number;
  readonly groupRecords?: number;
  /** Per measured phase, per round. */
  readonly phaseMs?: number;
  readonly rounds?: number;
  readonly commandBytes?: number;
  readonly commandsMs?: number;
  readonly recoveryBytes?: number;
}

export interface LogBenchResult {
  groupCommitMBps: number;
  rawFloorMBps: number;
  groupCommitVsRaw: number;
  groupCommitFirstPassMBps: number;
  groupCommitFirstPassVsRaw: number;
  commandsPerSec: number;
  commandsPerFsync: number;
  fsyncsPerSec: number;
  recoveryMBps: number;
  /** The same log verified without keeping any record in memory. */
  recoveryVerifyOnlyMBps: number;
  recoveryBytes: number;
  cache: 'cold' | 'warm';
  filesystem: string;
  crc: string;
}

const MB = 1e6;
/** Decrees appended per fdatasync at most (64 decrees of ≤ 64 KiB: ≤ 4 MiB per group). */
const DECREES_PER_GROUP_MAX = 64;
const TMPFS_MAGIC = 0x01021994;
const FS_NAMES: Record<number, string> = { 0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', [TMPFS_MAGIC]: 'tmpfs', 0x794c7630: 'overlayfs' };

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function fill(bytes: number, seed: number): Uint8Array {
  const b = new Uint8Array(bytes);
  let x = seed | 1;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Sequential writes of the same records, one fdatasync per group: the floor. */
function rawFloor(dir: string, record: Uint8Array, groupRecords: number, ms: number): number {
  const path = join(dir, 'raw.bin');
  const fileBytes = 64 * 1024 * 1024;
  const zeros = new Uint8Array(1 << 20);
  const fd = openSync(path, 'w+');
  for (let at = 0; at < fileBytes; at += zeros.length) writeSync(fd, zeros, 0, zeros.length, at);
  fdatasyncSync(fd);
  let at = 0;
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < groupRecords; i++) {
      if (at + record.length > fileBytes) at = 0;
      writeSync(fd, record, 0, record.length, at);
      at += record.length;
    }
    fdatasyncSync(fd);
    bytes += record.length * groupRecords;
  }
  const mbps = bytes / MB / ((performance.now() - start) / 1000);
  closeSync(fd);
  rmSync(path, { force: true });
  return mbps;
}

const GC_SEGMENT_BYTES = 64 * 1024 * 1024;

/** Group commit on a fresh log: every segment zero-filled ahead of the appends (first pass). */
function groupCommitFirstPass(dir: string, record: Uint8Array, groupRecords: number, ms: number): number {
  const logDir = join(dir, 'gc');
  const { log } = SegmentLog.open(new NodeFileLayer(), logDir, { segmentBytes: GC_SEGMENT_BYTES });
  let bytes = 0;
  let decree = 1;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < groupRecords; i++) log.append(2, decree++, 1024, record);
    log.sync();
    bytes += record.length * groupRecords;
  }
  const mbps = bytes / MB / ((performance.now() - start) / 1000);
  log.close();
  rmSync(logDir, { recursive: true, force: true });
  return mbps;
}

/**
 * A log in its steady state, kept open across rounds: retention retires every segment below the
 * one before the current segment as soon as the log rolls over, and retired files are recycled.
 */
class SteadyLog {
  readonly log: SegmentLog;
  private decree = 1;
  private retiredBelow = 1;
  constructor(readonly dir: string) {
    this.log = SegmentLog.open(new NodeFileLayer(), dir, { segmentBytes: GC_SEGMENT_BYTES }).log;
  }
  /** One group of `groupRecords` records, then retention (a replica's checkpoint, simplified). */
  group(record: Uint8Array, groupRecords: number): void {
    for (let i = 0; i < groupRecords; i++) this.log.append(2, this.decree++, 1024, record);
    this.log.sync();
    const keepFrom = this.log.durablePosition.segment - 1;
    if (keepFrom > this.retiredBelow) {
      this.log.retireSegmentsBelow(keepFrom);
      this.retiredBelow = keepFrom;
    }
  }
  /** Unmeasured: writes until the pool of free files is full. */
  warmUp(record: Uint8Array, groupRecords: number): void {
    const pool = this.log.options.recycleSegments;
    while (this.log.stats.segmentsFreed < pool + 1) this.group(record, groupRecords);
  }
  measure(record: Uint8Array, groupRecords: number, ms: number): number {
    let bytes = 0;
    const start = performance.now();
    while (performance.now() - start < ms) {
      this.group(record, groupRecords);
      bytes += record.length * groupRecords;
    }
    return bytes / MB / ((performance.now() - start) / 1000);
  }
  close(): void {
    this.log.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function commandsThroughLog(dir: string, commandBytes: number, ms: number): Promise<{ perSec: number; perFsync: number; fsyncsPerSec: number }> {
  const commandsPerDecree = Math.min(1024, Math.floor((64 * 1024 - 4) / (4 + commandBytes)));
  const ring = createRingBuffer(1 << 22);
  const control = new SharedArrayBuffer(8);
  const ctl = new Int32Array(control);
  const worker = new Worker(new URL('./log-producer.worker.js', import.meta.url), {
    workerData: { ring, control, commandBytes, commandsPerDecree },
  });
  await new Promise((resolve) => worker.once('online', resolve));
  const logDir = join(dir, 'cmds');
  const { log } = SegmentLog.open(new NodeFileLayer(), logDir, { segmentBytes: 64 * 1024 * 1024 });
  const consumer = new RingConsumer(ring);
  let decrees = 0;
  let syncs = 0;
  let decree = 1;
  const start = performance.now();
  while (performance.now() - start < ms) {
    consumer.waitForData(20);
    // One group per drain, bounded like the runtime's log stage bounds a group.
    const n = consumer.drain((payload) => {
      log.append(2, decree++, 1024, payload);
    }, DECREES_PER_GROUP_MAX);
    if (n === 0) continue;
    log.sync();
    decrees += n;
    syncs++;
  }
  const seconds = (performance.now() - start) / 1000;
  Atomics.store(ctl, 0, 1);
  consumer.drain(() => {});
  await new Promise((resolve) => worker.once('message', resolve));
  await worker.terminate();
  log.close();
  rmSync(logDir, { recursive: true, force: true });
  const commands = decrees * commandsPerDecree;
  return { perSec: commands / seconds, perFsync: syncs ? commands / syncs : 0, fsyncsPerSec: syncs / seconds };
}

function dropCaches(): boolean {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

function recovery(dir: string, totalBytes: number): { mbps: number; verifyOnlyMBps: number; bytes: number; cache: 'cold' | 'warm' } {
  const logDir = join(dir, 'recovery');
  const record = fill(64 * 1024, 7);
  const { log } = SegmentLog.open(new NodeFileLayer(), logDir, { segmentBytes: 256 * 1024 * 1024 });
  let written = 0;
  let decree = 1;
  while (written < totalBytes) {
    for (let i = 0; i < 64 && written < totalBytes; i++) {
      log.append(2, decree++, 1024, record);
      written += record.length;
    }
    log.sync();
  }
  log.close();
  // Twice, each from a cold cache: keeping every record (a replica with no checkpoint: the
  // headline recoveryMBps), then verifying only (keepRecordsFromDecree past the end: a replica
  // whose checkpoint covers the log keeps none of these payloads).
  const timeOpen = (keepNone: boolean): number => {
    const cold = dropCaches();
    const start = performance.now();
    const opened = SegmentLog.open(new NodeFileLayer(), logDir, {
      segmentBytes: 256 * 1024 * 1024, ...(keepNone ? { keepRecordsFromDecree: decree } : {}),
    });
    const seconds = (performance.now() - start) / 1000;
    const expected = keepNone ? 0 : decree - 1;
    if (opened.report.kind !== 'clean' || opened.records.length !== expected) {
      throw new Error(`recovery benchmark: expected a clean log and ${expected} records, got ${opened.report.message}`);
    }
    opened.log.close();
    coldAll &&= cold;
    return written / MB / seconds;
  };
  let coldAll = true;
  const mbps = timeOpen(false);
  const verifyOnlyMBps = timeOpen(true);
  rmSync(logDir, { recursive: true, force: true });
  return { mbps, verifyOnlyMBps, bytes: written, cache: coldAll ? 'cold' : 'warm' };
}

export function filesystemOf(dir: string): string {
  const type = statfsSync(dir).type;
  return FS_NAMES[type] ?? `0x${type.toString(16)}`;
}

export async function runLogBench(o: LogBenchOptions = {}, progress: (line: string) => void = () => {}): Promise<LogBenchResult> {
  const base = mkdtempSync(join(o.dir ?? tmpdir(), 'paxline-bench-log-'));
  try {
    const filesystem = filesystemOf(base);
    if (filesystem === 'tmpfs') {
      throw Object.assign(new Error(`${base} is on tmpfs: fdatasync there measures memory, not a disk`), {
        code: 'PAXLINE_USAGE',
      });
    }
    const record = fill(o.recordBytes ?? 64 * 1024, 1);
    const groupRecords = o.groupRecords ?? 4;
    const phaseMs = o.phaseMs ?? 2000;
    const raw: number[] = [];
    const gc: number[] = [];
    const first: number[] = [];
    const steady = new SteadyLog(join(base, 'gc-steady'));
    try {
      steady.warmUp(record, groupRecords);
      for (let r = 0; r < (o.rounds ?? 3); r++) {
        raw.push(rawFloor(base, record, groupRecords, phaseMs));
        first.push(groupCommitFirstPass(base, record, groupRecords, phaseMs));
        gc.push(steady.measure(record, groupRecords, phaseMs));
        progress(`round ${r + 1}: raw ${raw.at(-1)!.toFixed(0)} MB/s, group commit ${gc.at(-1)!.toFixed(0)} MB/s (steady state), ${first.at(-1)!.toFixed(0)} MB/s (first pass)`);
      }
      progress(`steady state: ${steady.log.stats.segmentsRecycled} rollovers onto recycled files, ${steady.log.stats.preallocBytes} bytes zero-filled`);
    } finally {
      steady.close();
    }
    const cmds = await commandsThroughLog(base, o.commandBytes ?? 16, o.commandsMs ?? 4000);
    progress(`commands: ${Math.round(cmds.perSec)}/s, ${Math.round(cmds.perFsync)} per fsync`);
    const rec = recovery(base, o.recoveryBytes ?? 1024 * 1024 * 1024);
    progress(`recovery: ${rec.mbps.toFixed(0)} MB/s (${rec.cache})`);
    const { crc32cImplementation } = await import('../../src/util/crc32c.js');
    return {
      groupCommitMBps: Math.round(median(gc)), rawFloorMBps: Math.round(median(raw)),
      groupCommitVsRaw: Math.round((median(gc) / median(raw)) * 1000) / 1000,
      groupCommitFirstPassMBps: Math.round(median(first)),
      groupCommitFirstPassVsRaw: Math.round((median(first) / median(raw)) * 1000) / 1000,
      commandsPerSec: Math.round(cmds.perSec), commandsPerFsync: Math.round(cmds.perFsync),
      fsyncsPerSec: Math.round(cmds.fsyncsPerSec), recoveryMBps: Math.round(rec.mbps),
      recoveryVerifyOnlyMBps: Math.round(rec.verifyOnlyMBps),
      recoveryBytes: rec.bytes, cache: rec.cache, filesystem, crc: crc32cImplementation,
    };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
