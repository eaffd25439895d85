/**
 * SegmentLog: paxline's durable record log (DESIGN.md §3). A segmented, append-only stream of
 * checksummed records with group commit, a durable frontier in every group header, and a
 * recovery that tells a torn tail (never acknowledged: cut it) from corruption (bytes that were
 * durable are damaged: never cut, report the damage and keep every valid record before and after
 * it). Written against FileLayer only, so it runs on node:fs and on SimFs alike.
 *
 * On disk, in `dir`:
 *
 *   log.meta                 two 64-byte slots (at 0 and 512): generation, epoch, floor,
 *                            first segment (segments below it were retired on purpose)
 *   seg-00000001.plog        segment files, each `segmentBytes` long once preallocated
 *   seg-00000002.plog ...
 *   free-00000007.plog       retired segment files kept for reuse (recycleSegments): a rollover
 *                            stamps a new segment header into one, fsyncs it, and renames it
 *                            into place, so steady-state appends overwrite allocated blocks
 *
 *   segment: ┌──────────────┬──────────────────────┬─────────────┬─────┬──────────────────┐
 *            │ seg header   │ group                │ group       │ ... │ zeros (prealloc) │
 *            │ 32 B         │ at an 8-aligned pos  │             │     │ / slack          │
 *            └──────────────┴──────────────────────┴─────────────┴─────┴──────────────────┘
 *   group:   ┌──────────────────────────────────────────────────┬────────┬────────┬─────┬─────┐
 *            │ group header 56 B: magic, version, kind, epoch,  │ record │ record │ ... │ pad │
 *            │ body bytes, group seq, frontier (segment, end,   │        │        │     │ to 8│
 *            │ crc of the last fsynced group), record count,    │        │        │     │     │
 *            │ high-water decree, body crc, header crc          │        │        │     │     │
 *            └──────────────────────────────────────────────────┴────────┴────────┴─────┴─────┘
 *   record:  ┌─────────────┬──────────┬─────────┬────────────┬────────────┬─────────────────┐
 *            │ payload len │ crc32c   │ type u8 │ decree f64 │ ballot f64 │ payload         │
 *            │ u32         │ u32      │         │            │            │                 │
 *            └─────────────┴──────────┴─────────┴────────────┴────────────┴─────────────────┘
 *   Each record's CRC32C covers its length, type, decree, ballot and payload; a group's body CRC
 *   is the CRC32C of its records' CRCs (one pass over the payload bytes when writing and when
 *   verifying); the header CRC covers the body CRC, so it identifies the whole group and is what
 *   a later group's frontier names. A skip group (kind 2) stands in for a repaired damaged range.
 *   (byte-level layouts: segment-format.ts; the chain rules and the verdict: segment-recovery.ts)
 *
 * Invariants:
 *  - `durableSeq` (and `durablePosition`) advance only after fdatasync of every file written
 *    returned, and the directory entry of every new segment was fsynced.
 *  - Every group names, as its frontier, the last group already fsynced when it was written; a
 *    group's header CRC covers its body CRC, which covers every record CRC.
 *  - Records not yet durable stay in memory (`pending`) until they are: after a failed
 *    fdatasync they are rewritten into a fresh segment, never trusted to the page cache.
 *  - Groups already laid out (planned) are rewritten byte for byte on a retry after ENOSPC, so a
 *    partial earlier attempt can never leave a different valid group behind.
 *  - Bytes are written only at or after the write position of the current segment, except
 *    skip groups over reported damage (markRepaired) and zero-fill of a cut torn tail.
 *  - The epoch in log.meta is bumped durably at open before any new group, so no group of an
 *    earlier incarnation can chain after a group of this one.
 *  - The first segment in log.meta only grows, and it is advanced durably before any segment
 *    below it is closed or unlinked (retireSegmentsBelow): recovery never reads below it, and
 *    deletes (or recycles) files found there as garbage of an interrupted retirement.
 *  - A free file is only ever a retired segment: its valid header names the number in its file
 *    name, which is below the first segment and so never used again; group header CRCs are
 *    bound to the segment number, so none of its old groups can verify in the segment it
 *    becomes. A rollover stamps the new header durably before the rename and before any group
 *    is written into it, so a free file whose header names another number (an interrupted
 *    rollover) may hold groups of a number still to come: open deletes it.
 */
import { assert } from '../core/assert.js';
import type { FileLayer } from './file-layer.js';
import { LogError, systemErrorCode, type LogErrorCode } from './log-error.js';
import {
  FORMAT_VERSION,
  GROUP_KIND_DATA,
  GROUP_KIND_SKIP,
  checkRecordAt,
  decodeMetaSlot,
  encodeGroupHeader,
  encodeMetaSlot,
  encodeRecordAt,
  encodeSegmentHeader,
  checkSegmentHeader,
  foldRecordCrc,
  groupSpanBytes,
  segmentBinding,
  isCount,
  recordBytes,
  type MetaState,
  type RecordView,
} from './segment-format.js';
import {
  resolveSegmentLogOptions,
  rolloverShortfall,
  type ResolvedSegmentLogOptions,
  type SegmentLogOptions,
} from './segment-log-options.js';
import {
  FIRST_GROUP_OFFSET,
  GROUP_HEADER_BYTES,
  LOCATION_SEGMENT_FACTOR,
  META_FILE_BYTES,
  META_SLOT_BYTES,
  META_SLOT_STRIDE_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_TYPE_MAX,
  RECORD_TYPE_MIN,
  SEGMENT_HEADER_BYTES,
  SEGMENT_NUMBER_MAX,
  ZERO_BUFFER_BYTES,
} from './segment-limits.js';
import {
  LogScanner,
  ORIGIN,
  comparePositions,
  segmentFileName,
  segmentNumbers,
  type DamageEvent,
  type DamagedRange,
  type LogPosition,
  type RecoveredRecord,
  type ScanResult,
  type StoredRecord,
} from './segment-recovery.js';

export type {
  RecoveryPrefault,
  ResolvedSegmentLogOptions,
  SegmentLogOptions,
} from './segment-log-options.js';
export { resolveSegmentLogOptions } from './segment-log-options.js';
export type {
  DamageReason,
  DamagedRange,
  LogPosition,
  RecoveredRecord,
  StoredRecord,
} from './segment-recovery.js';
export { segmentFileName } from './segment-recovery.js';
export { LogError, type LogErrorCode } from './log-error.js';

export const META_FILE_NAME = 'log.meta';

export interface RecoveryReport {
  /** 'clean': nothing cut; 'tornTail': an unacknowledged tail was cut; 'corrupt': see damaged. */
  readonly kind: 'clean' | 'tornTail' | 'corrupt';
  /** Non-zero bytes of torn tail cut (zeroed, or deleted with their segment). */
  readonly bytesCut: number;
  /** Segment files deleted as part of the torn tail. */
  readonly segmentsCut: readonly string[];
  /**
   * Segment files below the first segment recorded in log.meta, deleted as garbage: a crash
   * interrupted retireSegmentsBelow after it had retired them durably. Not damage.
   */
  readonly segmentsRetired: readonly string[];
  /** Free files (retired segments kept for reuse) the log holds after open. */
  readonly freeSegments: number;
  /** Ranges of bytes that were durable and are damaged (corrupt only). */
  readonly damaged: readonly DamagedRange[];
  /** The highest decree a lost record could be about (corrupt only; else 0). */
  readonly repairDecreeMax: number;
  /** The error a user sees for 'corrupt' (naming files and offsets); null otherwise. */
  readonly error: LogError | null;
  /** This incarnation's epoch. */
  readonly epoch: number;
  readonly segments: number;
  readonly groups: number;
  /** Groups dropped because a later group rewrote them after a failed fdatasync. */
  readonly groupsAbandoned: number;
  readonly records: number;
  /** Where the chain ends: everything up to here is durable. */
  readonly durable: LogPosition;
  /** One line for logs. */
  readonly message: string;
}

export interface OpenedSegmentLog {
  readonly log: SegmentLog;
  /**
   * Every recovered record in log order (each payload its own copy), or, with
   * `keepRecordsFromDecree`, those of decree 0 or at least that decree.
   */
  readonly records: RecoveredRecord[];
  readonly report: RecoveryReport;
}

/** One segment file of the log, shaped for retention planning (RetentionSegment). */
export interface SegmentSummary {
  readonly segment: number;
  /** Lowest and highest decree (> 0) with a record in it; lastDecree < firstDecree: none. */
  readonly firstDecree: number;
  readonly lastDecree: number;
  /** File size in bytes (preallocated zeros included). */
  readonly bytes: number;
}

export interface SegmentLogStats {
  syncs: number;
  groupsWritten: number;
  bytesWritten: number;
  segmentsCreated: number;
  /** Segments that reused a free file (counted in segmentsCreated too). */
  segmentsRecycled: number;
  /** Retired segment files kept as free files instead of being deleted. */
  segmentsFreed: number;
  preallocBytes: number;
  preallocFailures: number;
  diskFullErrors: number;
}

/** A group laid out by a sync attempt; frozen until the sync succeeds or the log fails over. */
interface GroupPlan {
  readonly segment: number;
  readonly position: number;
  readonly end: number;
  readonly seq: number;
  readonly crc: number;
  readonly header: Uint8Array;
  readonly bodyFrom: number;
  readonly bodyTo: number;
  readonly recordFrom: number;
  readonly recordTo: number;
}

/** The last group known durable: what the next group names as its frontier. */
interface SyncedPoint {
  readonly segment: number;
  readonly end: number;
  readonly crc: number;
  /** The next group's seq is this + 1. */
  readonly seq: number;
  readonly highDecree: number;
}

const ZEROS = new Uint8Array(ZERO_BUFFER_BYTES);
const EMPTY_META: MetaState = Object.freeze({
  generation: 0, epoch: 0, firstSegment: 1, floorSegment: 0, floorEnd: 0, floorHighDecree: 0,
});
const PENDING_BYTES_INITIAL = 64 * 1024;

export class SegmentLog {
  readonly stats: SegmentLogStats = {
    syncs: 0, groupsWritten: 0, bytesWritten: 0, segmentsCreated: 0, segmentsRecycled: 0,
    segmentsFreed: 0, preallocBytes: 0, preallocFailures: 0, diskFullErrors: 0,
  };
  /** Paths of free files (retired segments kept for reuse), taken from the end. */
  private readonly free: string[];
  /** Segments of this incarnation made from a free file: segment → the segment it was. */
  private readonly recycledFrom = new Map<number, number>();
  /** Descriptors of every segment file, for writes (current segment) and reads (index). */
  private readonly fds = new Map<number, number>();
  /** decree → packed location (segment · 2^31 + offset), or several for a repeated decree. */
  private readonly index = new Map<number, number | number[]>();
  /** Retired segment files may be left below the first segment (removeRetiredFiles). */
  private removalPending = false;
  /** Files removed since the directory was last fsynced. */
  private removalsSinceDirSync = 0;
  /** Lowest and highest decree indexed in each segment, kept with the index (segmentSummaries). */
  private readonly segmentRanges = new Map<number, { first: number; last: number }>();
  private segment: number;
  private writePos: number;
  private zeroedEnd: number;
  private nextSegment: number;
  private forceFresh: boolean;
  private lastSynced: SyncedPoint;
  private nextGroupSeq: number;
  private plannedHighDecree: number;
  // Pending records: encoded back to back after a reserved group-header gap.
  private pending = new Uint8Array(PENDING_BYTES_INITIAL);
  private pendingView = new DataView(this.pending.buffer);
  private pendingBytes = GROUP_HEADER_BYTES;
  private pendingCount = 0;
  private readonly pendingOffsets: number[] = [];
  private readonly pendingCrcs: number[] = [];
  private readonly pendingDecrees: number[] = [];
  private plans: GroupPlan[] = [];
  private plannedRecords = 0;
  private dirDirty = false;
  private scratch = new Uint8Array(0);
  private readonly crcScratch = new Uint8Array(4);
  private appended = 0;
  private durable = 0;
  private failure: LogError | null = null;
  /** The failure came from a preallocation after sync() returned: no caller has seen it yet. */
  private failureUnreported = false;
  private closed = false;
  private damage: DamageEvent[];
  private meta: MetaState;

  private constructor(
    private readonly fs: FileLayer,
    readonly dir: string,
    readonly options: ResolvedSegmentLogOptions,
    private readonly metaFd: number,
    meta: MetaState,
    start: WriterStart,
  ) {
    this.meta = meta;
    this.segment = start.segment;
    this.writePos = start.writePos;
    this.zeroedEnd = start.zeroedEnd;
    this.nextSegment = start.nextSegment;
    this.forceFresh = start.forceFresh;
    this.lastSynced = start.lastSynced;
    this.nextGroupSeq = start.lastSynced.seq + 1;
    this.plannedHighDecree = start.lastSynced.highDecree;
    this.damage = start.damage;
    this.free = [...start.free];
    for (const [n, fd] of start.fds) this.fds.set(n, fd);
  }

  /**
   * Opens (creating if missing) the log in `dir`: recovers it, cuts a torn tail, makes what it
   * keeps durable, bumps the epoch durably, and returns the log ready to append with every
   * recovered record and a report. Throws LogError for unreadable metadata, an unknown format
   * version, or corruption under `onCorruption: 'refuse'`.
   */
  static open(fs: FileLayer, dir: string, options: SegmentLogOptions = {}): OpenedSegmentLog {
    const resolved = resolveSegmentLogOptions(options);
    fs.mkdirp(dir);
    const metaPath = `${dir}/${META_FILE_NAME}`;
    const existing = segmentNumbers(fs.readdir(dir));
    const metaLost = (): LogError =>
      new LogError(
        'PAXLINE_LOG_CORRUPT',
        `${metaPath} is missing or both of its slots are damaged, but segment files exist ` +
          `(${segmentFileName(existing[0]!)} …): the log's epoch and durable floor are lost; ` +
          'refusing to open',
        { file: metaPath, offset: 0 },
      );
    // The metadata file is created (and its entry synced) before the first segment ever is.
    if (existing.length > 0 && !fs.exists(metaPath)) throw metaLost();
    const metaFd = fs.open(metaPath, { create: true });
    const fds = new Map<number, number>();
    try {
      let meta = readMeta(fs, metaFd, metaPath);
      if (meta === null) {
        if (existing.length > 0) throw metaLost();
        meta = EMPTY_META;
      }
      // Files below the first segment were retired durably; a crash kept them. Garbage (kept
      // for reuse when the pool has room, as are free files left by the previous incarnation).
      const firstSegment = meta.firstSegment;
      const retired = existing.filter((n) => n < firstSegment);
      const free = adoptFreeFiles(fs, dir, resolved, firstSegment, retired);
      const live = existing.filter((n) => n >= firstSegment);
      const scanner = new LogScanner(
        fs, dir, meta, live, resolved.keepRecordsFromDecree, resolved.recoveryPrefault,
      );
      let scan: ScanResult;
      let plan: CutPlan;
      try {
        scan = scanner.scan();
        plan = planCut(scan, live);
      } finally {
        scanner.close();
      }
      const repairDecreeMax = Math.max(scan.highDecreeMax, meta.floorHighDecree);
      const error =
        scan.damage.length === 0 ? null : corruptionError(dir, scan.damage, repairDecreeMax);
      if (error !== null && resolved.onCorruption === 'refuse') throw error;
      const cut = cutTornTail(fs, dir, plan);
      // What recovery keeps must be durable before anything acts on it (a restart without power
      // loss may find it only in the page cache: data, and the entries of segments created just
      // before the crash), and before the floor below claims it.
      atOpen(dir, 'fsync', dir, null, () => fs.fsyncDir(dir));
      for (const n of live) {
        if (cut.unlinked.includes(n)) continue;
        const path = `${dir}/${segmentFileName(n)}`;
        const fd = fs.open(path, { create: false });
        fds.set(n, fd);
        atOpen(dir, 'fdatasync', path, 0, () => fs.fdatasync(fd));
      }
      const start = writerStart(scan, cut, plan, fds, free, resolved);
      const floor = maxPos({ segment: meta.floorSegment, offset: meta.floorEnd }, scan.provenMax);
      meta = {
        generation: meta.generation + 1,
        epoch: meta.epoch + 1,
        firstSegment: meta.firstSegment,
        floorSegment: floor.segment,
        floorEnd: floor.offset,
        floorHighDecree: Math.max(
          meta.floorHighDecree,
          scan.last.highDecree,
          error === null ? 0 : repairDecreeMax,
        ),
      };
      writeMeta(fs, metaFd, metaPath, meta);
      const log = new SegmentLog(fs, dir, resolved, metaFd, meta, start);
      log.buildIndex(scan.decrees, scan.locations);
      const segments = live.length - cut.unlinked.length;
      const report = buildReport(
        scan, cut, error, repairDecreeMax, meta.epoch, segments, retired, free.length,
      );
      return { log, records: scan.records, report };
    } catch (e) {
      for (const fd of fds.values()) fs.close(fd);
      fs.close(metaFd);
      throw e;
    }
  }

  /** This incarnation's epoch (bumped at every open). */
  get epoch(): number {
    return this.meta.epoch;
  }

  /** Sequence number of the last appended record (1-based per open; 0 if none). */
  get appendedSeq(): number {
    return this.appended;
  }

  /** Every record with a sequence number up to this is durable. */
  get durableSeq(): number {
    return this.durable;
  }

  /** End of the last durable group: everything before it in log order is durable. */
  get durablePosition(): LogPosition {
    return { segment: this.lastSynced.segment, offset: this.lastSynced.end };
  }

  /** The failure that stopped syncing (call recoverAfterFailure), or null. */
  get failed(): LogError | null {
    return this.failure;
  }

  /** Damaged ranges still unrepaired (see markRepaired). */
  get damagedRanges(): readonly DamagedRange[] {
    return this.damage.flatMap((d) => d.ranges);
  }

  /**
   * Buffers one record; it is durable once `sync()` returned a seq >= the one returned here.
   * Allowed while the log is failed: the record is written by `recoverAfterFailure()`.
   */
  append(type: number, decree: number, ballot: number, payload: Uint8Array): number {
    this.checkOpen();
    if (!Number.isInteger(type) || type < RECORD_TYPE_MIN || type > RECORD_TYPE_MAX) {
      throw badArgument('type', `must be an integer in [${RECORD_TYPE_MIN}, ${RECORD_TYPE_MAX}]`);
    }
    if (!isCount(decree)) throw badArgument('decree', 'must be a safe integer >= 0');
    if (!isCount(ballot)) throw badArgument('ballot', 'must be a safe integer >= 0');
    if (!(payload instanceof Uint8Array)) throw badArgument('payload', 'must be a Uint8Array');
    if (payload.length > this.options.recordPayloadBytesMax) {
      throw badArgument(
        'payload',
        `is ${payload.length} bytes; the limit is ${this.options.recordPayloadBytesMax}`,
      );
    }
    const at = this.pendingBytes;
    this.reservePending(recordBytes(payload.length));
    const crc = encodeRecordAt(this.pending, this.pendingView, at, type, decree, ballot, payload);
    this.pendingOffsets.push(at);
    this.pendingCrcs.push(crc);
    this.pendingDecrees.push(decree);
    this.pendingCount++;
    this.pendingBytes = at + recordBytes(payload.length);
    return ++this.appended;
  }

  /** append() taking a record object. */
  appendRecord(record: StoredRecord): number {
    return this.append(record.type, record.decree, record.ballot, record.payload);
  }

  /**
   * Writes every buffered record as one group (more when they exceed groupBodyBytesMax or a
   * segment) with one write call each, then one fdatasync per file written; only then advances
   * `durableSeq`, which it returns. Throws LogError: PAXLINE_DISK_FULL from a write (nothing
   * acknowledged; retry later), PAXLINE_FSYNC_FAILED / PAXLINE_WRITE_FAILED (the log stops until
   * recoverAfterFailure), PAXLINE_LOG_FAILED when already stopped.
   *
   * A failure no caller has seen yet — the fdatasync of preallocated zeros after an earlier
   * sync() had returned, which stops the log — is thrown as itself, once, by the next sync():
   * PAXLINE_DISK_FULL for ENOSPC, so a caller that waits for space on PAXLINE_DISK_FULL works.
   * Its message says to call recoverAfterFailure(), and `failed` is non-null: a caller resumes
   * with `log.failed === null ? log.sync() : log.recoverAfterFailure()` once space returns.
   * Later calls throw PAXLINE_LOG_FAILED with the failure as `cause`.
   */
  sync(): number {
    this.checkOpen();
    if (this.failure !== null && this.failureUnreported) {
      this.failureUnreported = false;
      throw this.failure;
    }
    if (this.failure !== null) {
      throw new LogError(
        'PAXLINE_LOG_FAILED',
        `log ${this.dir} stopped after: ${this.failure.message}; call recoverAfterFailure()`,
        { cause: this.failure },
      );
    }
    if (this.pendingCount === 0) return this.durable;
    this.planPending();
    const touched: number[] = [];
    for (const plan of this.plans) {
      this.writePlan(plan);
      if (!touched.includes(plan.segment)) touched.push(plan.segment);
    }
    for (const n of touched) this.fdatasyncOrFail(n);
    if (this.dirDirty) this.fsyncDirOrFail();
    this.commitPlans();
    if (this.options.preallocOnSync) this.preallocate();
    return this.durable;
  }

  /**
   * After a failed fdatasync or write: forgets where the unsynced groups went (they may or may
   * not be on disk; the page cache is not trusted), and rewrites every not-yet-durable record
   * into a fresh segment whose first group names the last good group as its frontier, so
   * recovery drops the abandoned groups. Returns the new durable seq; throws like sync().
   */
  recoverAfterFailure(): number {
    this.checkOpen();
    this.plans = [];
    this.plannedRecords = 0;
    this.nextGroupSeq = this.lastSynced.seq + 1;
    this.plannedHighDecree = this.lastSynced.highDecree;
    this.forceFresh = true;
    this.segment = 0;
    this.failure = null;
    this.failureUnreported = false;
    return this.sync();
  }

  /**
   * Writes zeros ahead of the write position (whole chunks, up to `preallocAheadBytes` ahead)
   * and fdatasyncs them, so later groups overwrite allocated blocks instead of extending the
   * file. Best effort: a failed write just stops it; a failed fdatasync stops the log (fsyncgate:
   * the file's later pages cannot be trusted), and the next sync() throws that failure itself
   * (PAXLINE_DISK_FULL for ENOSPC, else PAXLINE_FSYNC_FAILED). Returns the bytes zeroed.
   */
  preallocate(): number {
    if (this.closed || this.failure !== null || this.segment === 0) return 0;
    const fd = this.fds.get(this.segment)!;
    const { segmentBytes, preallocAheadBytes, preallocChunkBytes, rolloverSeed, rolloverSpreadBytes } = this.options;
    // A segment that stops taking groups `shortfall` early (rolloverSpreadBytes) is still
    // zero-filled to its end, as one filled to its end is: only a file of exactly segmentBytes
    // is kept for reuse. The horizon runs that much further ahead, so no burst at the end.
    const ahead = preallocAheadBytes + rolloverShortfall(rolloverSeed, this.segment, rolloverSpreadBytes);
    let wrote = 0;
    try {
      while (this.zeroedEnd - this.writePos < ahead && this.zeroedEnd < segmentBytes) {
        // Chunks end on chunk boundaries, so zero-fill writes whole pages after the first.
        const toBoundary = preallocChunkBytes - (this.zeroedEnd % preallocChunkBytes);
        const n = Math.min(toBoundary, segmentBytes - this.zeroedEnd);
        this.fs.pwrite(fd, ZEROS.subarray(0, n), this.zeroedEnd);
        this.zeroedEnd += n;
        wrote += n;
      }
    } catch (e) {
      if (systemErrorCode(e) === undefined) throw e;
      this.stats.preallocFailures++;
    }
    if (wrote === 0) return 0;
    try {
      this.fs.fdatasync(fd);
    } catch (e) {
      const code = systemErrorCode(e);
      if (code === undefined) throw e;
      const path = this.segmentPath(this.segment);
      const from = this.zeroedEnd - wrote;
      if (code === 'ENOSPC') this.stats.diskFullErrors++;
      this.failure = new LogError(
        code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_FSYNC_FAILED',
        `fdatasync of zeros preallocated in ${path} at [${from}, ${this.zeroedEnd}) failed ` +
          `(${code}) after sync() had returned: every record acknowledged is durable, but the ` +
          'log stops syncing; call recoverAfterFailure() (once space returns, for ENOSPC) to ' +
          'rewrite the unsynced records into a fresh segment',
        { file: path, offset: from, cause: e },
      );
      this.failureUnreported = true;
      return 0;
    }
    this.stats.preallocBytes += wrote;
    return wrote;
  }

  /**
   * Every durable record whose decree is in [fromDecree, toDecree], in log order, read from the
   * segment files and checked against its CRC (PAXLINE_LOG_CORRUPT if it no longer matches).
   */
  readRecords(fromDecree: number, toDecree: number): RecoveredRecord[] {
    this.checkOpen();
    if (!isCount(fromDecree)) throw badArgument('fromDecree', 'must be a safe integer >= 0');
    if (!isCount(toDecree) || toDecree < fromDecree) {
      throw badArgument('toDecree', 'must be a safe integer >= fromDecree');
    }
    const locations: number[] = [];
    const add = (entry: number | number[]): void => {
      if (typeof entry === 'number') locations.push(entry);
      else for (const loc of entry) locations.push(loc);
    };
    if (toDecree - fromDecree < this.index.size) {
      for (let d = fromDecree; d <= toDecree; d++) {
        const entry = this.index.get(d);
        if (entry !== undefined) add(entry);
      }
    } else {
      for (const [d, entry] of this.index) if (d >= fromDecree && d <= toDecree) add(entry);
    }
    locations.sort((a, b) => a - b);
    return locations.map((loc) => this.readRecordAt(loc));
  }

  /** The first segment of the log: every segment below it was retired (retireSegmentsBelow). */
  get firstSegment(): number {
    return this.meta.firstSegment;
  }

  /**
   * Every segment file the log holds, ascending, with the decree range of its records and its
   * size: the `segments` input of planRetention.
   */
  segmentSummaries(): SegmentSummary[] {
    this.checkOpen();
    const ranges = this.segmentRanges;
    return [...this.fds.keys()]
      .sort((a, b) => a - b)
      .map((n) => {
        const r = ranges.get(n);
        const bytes = this.fs.size(this.fds.get(n)!);
        return { segment: n, firstDecree: r?.first ?? 0, lastDecree: r?.last ?? -1, bytes };
      });
  }

  /**
   * Retires every segment below `segment` (retention decided no one needs their records), in an
   * order under which a crash between any two steps never looks like lost durable data:
   *  1. records `segment` as the log's first segment in log.meta, durably: from then on recovery
   *     starts there, and deletes any file below it as garbage;
   *  2. closes their descriptors and drops their index entries (readRecords no longer sees them);
   *  3. unlinks their files (and garbage left below the first segment by an interrupted earlier
   *     call), then fsyncs the directory. With `removeFilesNow: false` step 3 is left to
   *     removeRetiredFiles(), a few files at a time: unlinking a retired segment costs ~3 ms
   *     under load, and a retirement frees ~10 at once — a pause a caller on the fsync path
   *     should not take in one piece (files below the first segment are garbage to open(), so
   *     a crash before they go loses nothing).
   * Returns the file names deleted, ascending (none when removal is left for later). Refuses
   * with PAXLINE_INVALID_ARGUMENT to retire the segment being written or any segment not wholly
   * durable (`segment` must be at most the segment of the durable frontier), or a segment with
   * unrepaired damage (markRepaired first).
   * Disk errors: PAXLINE_DISK_FULL / PAXLINE_FSYNC_FAILED from step 1 (nothing retired; retry),
   * PAXLINE_WRITE_FAILED / PAXLINE_FSYNC_FAILED from step 3 (retired already: the files are
   * garbage that a retry, or the next open, deletes). None of them stops the log.
   */
  retireSegmentsBelow(segment: number, options: { readonly removeFilesNow?: boolean } = {}): string[] {
    this.checkOpen();
    if (!Number.isSafeInteger(segment) || segment < 1) {
      throw badArgument('segment', 'must be an integer >= 1');
    }
    const durableSegment = this.lastSynced.segment;
    if (segment > durableSegment) {
      throw badArgument(
        'segment',
        `is ${segment}: only segments before the durable frontier ` +
          `(${segmentFileName(durableSegment)}@${this.lastSynced.end}) may be retired, never ` +
          'the segment being written or one not wholly durable',
      );
    }
    const damaged = this.damagedRanges.find((r) => r.segment < segment);
    if (damaged !== undefined) {
      throw badArgument(
        'segment',
        `is ${segment}: ${damaged.fileName} has unrepaired damage; call markRepaired() first`,
      );
    }
    assert(this.segment === 0 || segment <= this.segment, 'retire: would retire the write segment');
    if (segment > this.meta.firstSegment) this.advanceFirstSegment(segment);
    for (const [n, fd] of [...this.fds]) {
      if (n >= segment) continue;
      this.fds.delete(n);
      this.fs.close(fd);
    }
    this.dropIndexBelow(segment);
    this.removalPending = true;
    return options.removeFilesNow === false ? [] : this.unlinkBelowFirst(Infinity);
  }

  /** Retired segment files may be left to remove (retireSegmentsBelow with removeFilesNow false). */
  get retiredFilesPending(): boolean {
    return this.removalPending;
  }

  /**
   * Step 3 of retirement, a little at a time: deletes (or recycles into the free pool) at most
   * `maxFiles` segment files below the first segment; once none is left, fsyncs the directory
   * and retiredFilesPending turns false. Returns the names removed. Errors as step 3 of
   * retireSegmentsBelow; after one, retiredFilesPending is false until the next retirement (the
   * files stay garbage that the next retirement or open removes).
   */
  removeRetiredFiles(maxFiles: number): string[] {
    this.checkOpen();
    if (!Number.isSafeInteger(maxFiles) || maxFiles < 1) throw badArgument('maxFiles', 'must be an integer >= 1');
    return this.unlinkBelowFirst(maxFiles);
  }

  /**
   * Declares the damage reported at open repaired (the caller re-appended what was lost, e.g.
   * fetched from peers): overwrites each damaged range with a valid skip group of the same length
   * (recreating a missing segment or a damaged segment header), durably, so the next open does
   * not report it again. Returns the number of ranges repaired.
   */
  markRepaired(): number {
    this.checkOpen();
    let repaired = 0;
    const touched = new Set<number>();
    for (const event of this.damage) {
      // writerStart filled in the resume seq of damage with no valid group after it.
      assert(event.resumeSeq !== null, 'markRepaired: damage without a resume seq');
      for (const range of event.ranges) {
        try {
          this.writeSkip(range, event.resumeSeq - 1, event.epochBefore);
        } catch (e) {
          const code = systemErrorCode(e);
          if (code === undefined) throw e;
          const path = this.segmentPath(range.segment);
          throw new LogError(
            code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_WRITE_FAILED',
            `writing a skip group over ${path} [${range.offsetFrom}, ${range.offsetTo}) failed ` +
              `(${code}); the damage stays reported, retry markRepaired()`,
            { file: path, offset: range.offsetFrom, cause: e },
          );
        }
        touched.add(range.segment);
        repaired++;
      }
    }
    for (const n of touched) this.fdatasyncOrFail(n);
    if (this.dirDirty) this.fsyncDirOrFail();
    this.damage = [];
    return repaired;
  }

  /**
   * Closes every file. Records not yet synced are dropped (they were never acknowledged). A
   * healthy log records its durable position as the floor in log.meta, so damage below it is
   * recognised as corruption even at the very end of the log.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      const old = { segment: this.meta.floorSegment, offset: this.meta.floorEnd };
      const floor = maxPos(old, this.durablePosition);
      const moved = comparePositions(floor, old) > 0;
      if (this.failure === null && moved) {
        this.meta = {
          ...this.meta,
          generation: this.meta.generation + 1,
          floorSegment: floor.segment,
          floorEnd: floor.offset,
          floorHighDecree: Math.max(this.meta.floorHighDecree, this.lastSynced.highDecree),
        };
        writeMeta(this.fs, this.metaFd, `${this.dir}/${META_FILE_NAME}`, this.meta);
      }
    } finally {
      for (const fd of this.fds.values()) this.fs.close(fd);
      this.fds.clear();
      this.fs.close(this.metaFd);
    }
  }

  // ─── internals ─────────────────────────────────────────────────────────────────────────────

  /** Step 1 of retirement: the new first segment (and the floor) durably in log.meta. */
  private advanceFirstSegment(segment: number): void {
    const old = { segment: this.meta.floorSegment, offset: this.meta.floorEnd };
    const floor = maxPos(old, this.durablePosition);
    const next: MetaState = {
      ...this.meta,
      generation: this.meta.generation + 1,
      firstSegment: segment,
      floorSegment: floor.segment,
      floorEnd: floor.offset,
      floorHighDecree: Math.max(this.meta.floorHighDecree, this.lastSynced.highDecree),
    };
    // On failure the in-memory meta stays as it was: a retry rewrites the same (inactive) slot.
    writeMeta(this.fs, this.metaFd, `${this.dir}/${META_FILE_NAME}`, next);
    this.meta = next;
  }

  /**
   * Drops every index location below `segment`. Each such location's decree lies within its
   * segment's range (segmentRanges), so only the retired segments' ranges are walked — a
   * retirement drops a few segments of many — unless together they span more decrees than the
   * index holds (then the index itself is walked, as readRecords does).
   */
  private dropIndexBelow(segment: number): void {
    const limit = segment * LOCATION_SEGMENT_FACTOR;
    const retired: { first: number; last: number }[] = [];
    let span = 0;
    for (const [n, r] of this.segmentRanges) {
      if (n >= segment) continue;
      retired.push(r);
      span += r.last - r.first + 1;
      this.segmentRanges.delete(n);
    }
    if (span <= this.index.size) {
      for (const r of retired) for (let d = r.first; d <= r.last; d++) this.dropLocationsBelow(d, limit);
    } else {
      for (const decree of this.index.keys()) this.dropLocationsBelow(decree, limit);
    }
  }

  private dropLocationsBelow(decree: number, limit: number): void {
    const entry = this.index.get(decree);
    if (entry === undefined) return;
    if (typeof entry === 'number') {
      if (entry < limit) this.index.delete(decree);
      return;
    }
    const kept = entry.filter((loc) => loc >= limit);
    if (kept.length === 0) this.index.delete(decree);
    else if (kept.length === 1) this.index.set(decree, kept[0]!);
    else if (kept.length < entry.length) this.index.set(decree, kept);
  }

  /**
   * Step 3 of retirement: deletes up to `maxFiles` segment files below the first segment (or
   * keeps them as free files, while the pool has room); once none is left, fsyncs the directory.
   */
  private unlinkBelowFirst(maxFiles: number): string[] {
    try {
      return this.unlinkSomeBelowFirst(maxFiles);
    } catch (e) {
      this.removalPending = false;
      throw e;
    }
  }

  private unlinkSomeBelowFirst(maxFiles: number): string[] {
    const first = this.meta.firstSegment;
    const doomed = segmentNumbers(this.fs.readdir(this.dir)).filter((n) => n < first); // ascending
    const deleted: string[] = [];
    for (const n of doomed.slice(0, maxFiles)) {
      const path = this.segmentPath(n);
      try {
        const keep =
          this.free.length < this.options.recycleSegments &&
          freeFileUsable(this.fs, path, n, this.options.segmentBytes, first);
        if (keep) {
          const freePath = `${this.dir}/${freeFileName(n)}`;
          this.fs.rename(path, freePath);
          this.free.unshift(freePath);
          this.stats.segmentsFreed++;
        } else {
          this.fs.unlink(path);
        }
        deleted.push(segmentFileName(n));
        this.removalsSinceDirSync++;
      } catch (e) {
        const code = systemErrorCode(e);
        if (code === 'ENOENT') continue;
        if (code === undefined) throw e;
        throw new LogError(
          'PAXLINE_WRITE_FAILED',
          `unlinking (or recycling) retired segment ${path} failed (${code}); it is garbage ` +
            'below the first ' +
            'segment: retry retireSegmentsBelow() or removeRetiredFiles(), or the next open deletes it',
          { file: path, cause: e },
        );
      }
    }
    if (doomed.length > maxFiles) return deleted; // more to remove: the directory fsync comes last
    this.removalPending = false;
    if (this.removalsSinceDirSync === 0) return deleted;
    try {
      this.fs.fsyncDir(this.dir);
      this.removalsSinceDirSync = 0;
    } catch (e) {
      const code = systemErrorCode(e);
      if (code === undefined) throw e;
      throw new LogError(
        code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_FSYNC_FAILED',
        `fsync of directory ${this.dir} after unlinking retired segments failed (${code}); ` +
          'a crash may bring them back as garbage, which the next open deletes',
        { file: this.dir, cause: e },
      );
    }
    return deleted;
  }

  private checkOpen(): void {
    if (this.closed) throw new LogError('PAXLINE_LOG_CLOSED', `log ${this.dir} is closed`);
  }

  private reservePending(bytes: number): void {
    const need = this.pendingBytes + bytes + GROUP_HEADER_BYTES;
    if (need <= this.pending.length) return;
    const grown = new Uint8Array(Math.max(need, this.pending.length * 2));
    grown.set(this.pending.subarray(0, this.pendingBytes));
    this.pending = grown;
    this.pendingView = new DataView(grown.buffer);
  }

  /** Lays out every unplanned pending record into groups (frozen until success or failover). */
  private planPending(): void {
    const o = this.options;
    let rec = this.plannedRecords;
    const lastPlan = this.plans.at(-1);
    let segment = lastPlan?.segment ?? this.segment;
    let pos = lastPlan?.end ?? this.writePos;
    let hwm = this.plannedHighDecree;
    while (rec < this.pendingCount) {
      const bodyFrom = this.pendingOffsets[rec]!;
      let r = rec;
      let bodyCrc = 0;
      let bodyTo = bodyFrom;
      do {
        const next = r + 1 < this.pendingCount ? this.pendingOffsets[r + 1]! : this.pendingBytes;
        if (r > rec && next - bodyFrom > o.groupBodyBytesMax) break;
        bodyCrc = foldRecordCrc(bodyCrc, this.pendingCrcs[r]!, this.crcScratch);
        hwm = Math.max(hwm, this.pendingDecrees[r]!);
        bodyTo = next;
        r++;
      } while (r < this.pendingCount);
      const span = groupSpanBytes(bodyTo - bodyFrom);
      const full = pos + span > o.segmentBytes || (pos > FIRST_GROUP_OFFSET
        && pos + span > o.segmentBytes - rolloverShortfall(o.rolloverSeed, segment, o.rolloverSpreadBytes));
      if (segment === 0 || this.forceFresh || full) {
        segment = this.takeSegmentNumber();
        pos = FIRST_GROUP_OFFSET;
        this.forceFresh = false;
      }
      assert(pos + span <= o.segmentBytes, 'planPending: group does not fit an empty segment');
      assert(pos % 8 === 0, 'planPending: group position not aligned');
      const header = new Uint8Array(GROUP_HEADER_BYTES);
      const seq = this.nextGroupSeq++;
      const crc = encodeGroupHeader(header, 0, {
        kind: GROUP_KIND_DATA,
        epoch: this.meta.epoch,
        bodyBytes: bodyTo - bodyFrom,
        seq,
        frontierSegment: this.lastSynced.segment,
        frontierEnd: this.lastSynced.end,
        frontierCrc: this.lastSynced.crc,
        recordCount: r - rec,
        highDecree: hwm,
        bodyCrc,
      }, segmentBinding(segment));
      this.plans.push({
        segment, position: pos, end: pos + span, seq, crc, header, bodyFrom, bodyTo,
        recordFrom: rec, recordTo: r,
      });
      pos += span;
      rec = r;
    }
    this.plannedRecords = rec;
    this.plannedHighDecree = hwm;
  }

  private takeSegmentNumber(): number {
    const n = this.nextSegment++;
    if (n > SEGMENT_NUMBER_MAX) {
      throw new LogError('PAXLINE_LOG_FAILED', `log ${this.dir}: segment numbers exhausted`);
    }
    return n;
  }

  /** Writes one planned group (creating its segment if new) with one pwrite. */
  private writePlan(plan: GroupPlan): void {
    let fd = this.fds.get(plan.segment);
    const path = this.segmentPath(plan.segment);
    try {
      if (fd === undefined) fd = this.createSegmentFile(plan.segment, path);
      if (plan.position === FIRST_GROUP_OFFSET && !this.recycledFrom.has(plan.segment)) {
        const { segmentBytes } = this.options;
        this.fs.pwrite(fd, encodeSegmentHeader(plan.segment, this.meta.epoch, segmentBytes), 0);
      }
      const span = plan.end - plan.position;
      let image: Uint8Array;
      if (plan.bodyFrom === GROUP_HEADER_BYTES && plan.recordTo === this.pendingCount) {
        // The common case: the group is the whole pending buffer, header gap included.
        this.pending.set(plan.header, 0);
        this.pending.fill(0, plan.bodyTo, span);
        image = this.pending.subarray(0, span);
      } else {
        if (this.scratch.length < span) {
          this.scratch = new Uint8Array(Math.max(span, this.scratch.length * 2));
        }
        this.scratch.set(plan.header, 0);
        this.scratch.set(this.pending.subarray(plan.bodyFrom, plan.bodyTo), GROUP_HEADER_BYTES);
        this.scratch.fill(0, GROUP_HEADER_BYTES + plan.bodyTo - plan.bodyFrom, span);
        image = this.scratch.subarray(0, span);
      }
      this.fs.pwrite(fd, image, plan.position);
      this.stats.bytesWritten += span;
    } catch (e) {
      throw this.writeError(e, path, plan);
    }
  }

  /**
   * Creates segment `n`'s file: from a free file when there is one (stamp the new header,
   * fdatasync it, rename into place), else a new file. Either way the directory entry is
   * durable only after the fsyncDir that sync() does before acknowledging. On failure a free
   * file leaves the pool: the next open deletes it, since its header may no longer name it.
   */
  private createSegmentFile(n: number, path: string): number {
    const freePath = this.free.pop();
    if (freePath === undefined) {
      const fd = this.fs.open(path, { create: true });
      this.fds.set(n, fd);
      this.dirDirty = true;
      this.stats.segmentsCreated++;
      return fd;
    }
    const from = freeNumber(freePath);
    const fd = this.fs.open(freePath, { create: false });
    try {
      const { segmentBytes } = this.options;
      this.fs.pwrite(fd, encodeSegmentHeader(n, this.meta.epoch, segmentBytes, from), 0);
      // Durable before any group of `n` is written into the file (see the invariants).
      this.fs.fdatasync(fd);
      this.fs.rename(freePath, path);
    } catch (e) {
      this.fs.close(fd);
      throw e;
    }
    this.fds.set(n, fd);
    this.recycledFrom.set(n, from);
    this.dirDirty = true;
    this.stats.segmentsCreated++;
    this.stats.segmentsRecycled++;
    return fd;
  }

  private writeError(e: unknown, path: string, plan: GroupPlan): unknown {
    const code = systemErrorCode(e);
    if (code === undefined) return e;
    const bytes = plan.end - plan.position;
    const where = `group ${plan.seq} (${bytes} bytes) at offset ${plan.position}`;
    if (code === 'ENOSPC') {
      this.stats.diskFullErrors++;
      // Nothing was acknowledged and the layout is frozen: a later sync() rewrites it exactly.
      return new LogError(
        'PAXLINE_DISK_FULL',
        `no space left on device writing ${where} of ${path}; nothing acknowledged was lost, ` +
          'retry sync() when space returns',
        { file: path, offset: plan.position, cause: e },
      );
    }
    this.failure = new LogError(
      'PAXLINE_WRITE_FAILED',
      `write of ${where} of ${path} failed (${code}); unsynced records will be ` +
        'rewritten by recoverAfterFailure()',
      { file: path, offset: plan.position, cause: e },
    );
    return this.failure;
  }

  private fdatasyncOrFail(n: number): void {
    try {
      this.fs.fdatasync(this.fds.get(n)!);
    } catch (e) {
      if (systemErrorCode(e) === undefined) throw e;
      this.failure = this.fsyncError(e, n, null);
      throw this.failure;
    }
  }

  private fsyncDirOrFail(): void {
    try {
      this.fs.fsyncDir(this.dir);
      this.dirDirty = false;
    } catch (e) {
      if (systemErrorCode(e) === undefined) throw e;
      this.failure = new LogError(
        'PAXLINE_FSYNC_FAILED',
        `fsync of directory ${this.dir} failed (${systemErrorCode(e)})`,
        { file: this.dir, cause: e },
      );
      throw this.failure;
    }
  }

  private fsyncError(e: unknown, n: number, offset: number | null): LogError {
    const path = this.segmentPath(n);
    const code = systemErrorCode(e);
    const text =
      `fdatasync of ${path} failed (${code}): everything written since the last ` +
      'successful one counts as unsynced; the log stops syncing until recoverAfterFailure() ' +
      'rewrites it into a fresh segment';
    const details = offset === null
      ? { file: path, cause: e }
      : { file: path, offset, cause: e };
    const errorCode = code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_FSYNC_FAILED';
    return new LogError(errorCode, text, details);
  }

  /** After every planned group is durable: publish, index, and reset the pending buffer. */
  private commitPlans(): void {
    const last = this.plans.at(-1)!;
    assert(this.plannedRecords === this.pendingCount, 'commitPlans: unplanned records');
    assert(last.seq === this.nextGroupSeq - 1, 'commitPlans: group seqs out of step');
    for (const plan of this.plans) {
      const base = plan.segment * LOCATION_SEGMENT_FACTOR + plan.position + GROUP_HEADER_BYTES;
      for (let r = plan.recordFrom; r < plan.recordTo; r++) {
        this.indexAdd(this.pendingDecrees[r]!, base + this.pendingOffsets[r]! - plan.bodyFrom);
      }
      this.stats.groupsWritten++;
    }
    if (last.segment !== this.segment) {
      this.segment = last.segment;
      // A recycled file is allocated to its full size already: nothing to zero-fill.
      this.zeroedEnd = this.recycledFrom.has(last.segment) ? this.options.segmentBytes : last.end;
    }
    this.writePos = last.end;
    if (this.zeroedEnd < this.writePos) this.zeroedEnd = this.writePos;
    this.lastSynced = {
      segment: last.segment, end: last.end, crc: last.crc, seq: last.seq,
      highDecree: this.plannedHighDecree,
    };
    this.durable = this.appended;
    this.plans = [];
    this.plannedRecords = 0;
    this.pendingCount = 0;
    this.pendingBytes = GROUP_HEADER_BYTES;
    this.pendingOffsets.length = 0;
    this.pendingCrcs.length = 0;
    this.pendingDecrees.length = 0;
    this.stats.syncs++;
  }

  private indexAdd(decree: number, loc: number): void {
    if (decree === 0) return;
    const entry = this.index.get(decree);
    if (entry === undefined) this.index.set(decree, loc);
    else if (typeof entry === 'number') this.index.set(decree, [entry, loc]);
    else entry.push(loc);
    const segment = Math.floor(loc / LOCATION_SEGMENT_FACTOR);
    const r = this.segmentRanges.get(segment);
    if (r === undefined) this.segmentRanges.set(segment, { first: decree, last: decree });
    else {
      if (decree < r.first) r.first = decree;
      if (decree > r.last) r.last = decree;
    }
  }

  private buildIndex(decrees: readonly number[], locations: readonly number[]): void {
    for (let i = 0; i < decrees.length; i++) this.indexAdd(decrees[i]!, locations[i]!);
  }

  private readRecordAt(loc: number): RecoveredRecord {
    const segment = Math.floor(loc / LOCATION_SEGMENT_FACTOR);
    const offset = loc - segment * LOCATION_SEGMENT_FACTOR;
    const fd = this.fds.get(segment);
    const path = this.segmentPath(segment);
    assert(fd !== undefined, 'readRecords: indexed record in a segment without a descriptor');
    const head = new Uint8Array(RECORD_HEADER_BYTES);
    const corrupt = (): LogError =>
      new LogError(
        'PAXLINE_LOG_CORRUPT',
        `${path}: record at offset ${offset} fails its checksum`,
        { file: path, offset },
      );
    const got = this.fs.read(fd, head, RECORD_HEADER_BYTES, offset);
    if (got !== RECORD_HEADER_BYTES) throw corrupt();
    const payloadBytes = new DataView(head.buffer).getUint32(0, true);
    if (payloadBytes > this.options.recordPayloadBytesMax) throw corrupt();
    const bytes = new Uint8Array(RECORD_HEADER_BYTES + payloadBytes);
    if (this.fs.read(fd, bytes, bytes.length, offset) !== bytes.length) throw corrupt();
    const view: RecordView = {
      type: 0, decree: 0, ballot: 0, payloadAt: 0, payloadBytes: 0, crc: 0,
    };
    const end = checkRecordAt(bytes, new DataView(bytes.buffer), 0, bytes.length, view);
    if (end < 0) throw corrupt();
    return {
      type: view.type, decree: view.decree, ballot: view.ballot,
      payload: bytes.subarray(RECORD_HEADER_BYTES), segment, offset,
    };
  }

  /** Overwrites one damaged range with a skip group (and a segment header if it starts at 0). */
  private writeSkip(range: DamagedRange, seq: number, epoch: number): void {
    let fd = this.fds.get(range.segment);
    const path = this.segmentPath(range.segment);
    if (fd === undefined) {
      fd = this.fs.open(path, { create: true });
      this.fds.set(range.segment, fd);
      this.dirDirty = true;
    }
    let from = range.offsetFrom;
    if (from < FIRST_GROUP_OFFSET) {
      const header = encodeSegmentHeader(range.segment, this.meta.epoch, this.options.segmentBytes);
      this.fs.pwrite(fd, header, 0);
      from = FIRST_GROUP_OFFSET;
    }
    const length = range.offsetTo - from;
    if (length <= 0) return;
    assert(length >= GROUP_HEADER_BYTES && length % 8 === 0, 'markRepaired: range too short');
    const header = new Uint8Array(GROUP_HEADER_BYTES);
    encodeGroupHeader(header, 0, {
      kind: GROUP_KIND_SKIP, epoch, bodyBytes: length - GROUP_HEADER_BYTES, seq,
      frontierSegment: 0, frontierEnd: 0, frontierCrc: 0, recordCount: 0, highDecree: 0, bodyCrc: 0,
    }, segmentBinding(range.segment));
    this.fs.pwrite(fd, header, from);
    for (let at = from + GROUP_HEADER_BYTES; at < range.offsetTo; at += ZEROS.length) {
      this.fs.pwrite(fd, ZEROS.subarray(0, Math.min(ZEROS.length, range.offsetTo - at)), at);
    }
  }

  private segmentPath(n: number): string {
    return `${this.dir}/${segmentFileName(n)}`;
  }
}

// ─── open helpers ────────────────────────────────────────────────────────────────────────────

interface WriterStart {
  readonly segment: number;
  readonly writePos: number;
  readonly zeroedEnd: number;
  readonly nextSegment: number;
  readonly forceFresh: boolean;
  readonly lastSynced: SyncedPoint;
  readonly damage: DamageEvent[];
  readonly fds: ReadonlyMap<number, number>;
  readonly free: readonly string[];
}

interface CutResult {
  readonly bytesCut: number;
  readonly unlinked: number[];
}

/** What cutting a torn tail will do, decided while the scan's files are still open. */
interface CutPlan {
  /** The tail segment's bytes to zero: [zeroFrom, zeroTo) of tailPath (none when equal). */
  readonly tailPath: string;
  readonly zeroFrom: number;
  readonly zeroTo: number;
  /** Size of the tail segment's file (0 when it has none). */
  readonly tailSize: number;
  /** Segment files to delete, with the bytes they held that count as cut. */
  readonly doomed: readonly { readonly n: number; readonly bytes: number }[];
}

const FREE_NAME = /^free-(\d{8})\.plog$/;

/** The file name of a free file that was segment `n`. */
export function freeFileName(n: number): string {
  return `free-${String(n).padStart(8, '0')}.plog`;
}

/** The segment number a free file path was. */
function freeNumber(path: string): number {
  const m = FREE_NAME.exec(path.slice(path.lastIndexOf('/') + 1));
  assert(m !== null, 'freeNumber: not a free file');
  return Number(m[1]);
}

/**
 * Whether the file at `path`, which was segment `n`, may be reused: exactly `segmentBytes` long
 * (allocated by zero-fill, so reusing it never extends a file), its header valid and naming `n`,
 * and `n` retired (below `firstSegment`), so no group in it verifies in any segment to come.
 */
function freeFileUsable(
  fs: FileLayer,
  path: string,
  n: number,
  segmentBytes: number,
  firstSegment: number,
): boolean {
  if (n >= firstSegment) return false;
  const fd = fs.open(path, { create: false });
  try {
    if (fs.size(fd) !== segmentBytes) return false;
    const header = new Uint8Array(SEGMENT_HEADER_BYTES);
    if (fs.read(fd, header, SEGMENT_HEADER_BYTES, 0) !== SEGMENT_HEADER_BYTES) return false;
    return checkSegmentHeader(header, n).ok;
  } finally {
    fs.close(fd);
  }
}

/**
 * At open: keeps the free files of the previous incarnation that are usable, and garbage
 * segments below the first one (an interrupted retirement), as free files while the pool has
 * room; deletes the rest. Returns the free paths (reused from the end).
 */
function adoptFreeFiles(
  fs: FileLayer,
  dir: string,
  options: ResolvedSegmentLogOptions,
  firstSegment: number,
  retired: readonly number[],
): string[] {
  const free: string[] = [];
  const candidates: { path: string; n: number; isFree: boolean }[] = [];
  for (const name of fs.readdir(dir)) {
    const m = FREE_NAME.exec(name);
    if (m !== null) candidates.push({ path: `${dir}/${name}`, n: Number(m[1]), isFree: true });
  }
  for (const n of retired) {
    candidates.push({ path: `${dir}/${segmentFileName(n)}`, n, isFree: false });
  }
  for (const c of candidates) {
    const usable =
      free.length < options.recycleSegments &&
      freeFileUsable(fs, c.path, c.n, options.segmentBytes, firstSegment);
    if (!usable) {
      atOpen(dir, 'unlink', c.path, null, () => fs.unlink(c.path));
    } else if (c.isFree) {
      free.push(c.path);
    } else {
      const to = `${dir}/${freeFileName(c.n)}`;
      atOpen(dir, 'rename', c.path, null, () => fs.rename(c.path, to));
      free.push(to);
    }
  }
  return free;
}

function badArgument(field: string, message: string): LogError {
  return new LogError('PAXLINE_INVALID_ARGUMENT', `${field} ${message}`, { field });
}

/**
 * Runs one disk call of open() (a sync, a write of the torn-tail cut, an unlink), mapping a
 * system error to a coded LogError naming the file (and offset, when there is one). Nothing
 * has been acknowledged by an open that fails: the log is not opened.
 */
function atOpen<T>(
  dir: string,
  op: 'fdatasync' | 'fsync' | 'write' | 'unlink' | 'rename',
  file: string,
  offset: number | null,
  call: () => T,
): T {
  try {
    return call();
  } catch (e) {
    const code = systemErrorCode(e);
    if (code === undefined) throw e;
    const synced = op === 'fdatasync' || op === 'fsync';
    const failed: LogErrorCode = synced ? 'PAXLINE_FSYNC_FAILED' : 'PAXLINE_WRITE_FAILED';
    const errorCode: LogErrorCode = code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : failed;
    const at = offset === null ? '' : ` at offset ${offset}`;
    const advice =
      code === 'ENOSPC'
        ? 'retry the open once space returns'
        : 'a failed sync may have dropped the pages it covered: check the device before retrying';
    throw new LogError(
      errorCode,
      `opening log ${dir}: ${op} of ${file}${at} failed (${code}); the log was not opened; ` +
        advice,
      offset === null ? { file, cause: e } : { file, offset, cause: e },
    );
  }
}

function maxPos(a: LogPosition, b: LogPosition): LogPosition {
  return comparePositions(a, b) >= 0 ? a : b;
}

/** The valid metadata slot with the highest generation, or null if neither is valid. */
function readMeta(fs: FileLayer, fd: number, path: string): MetaState | null {
  const bytes = new Uint8Array(META_FILE_BYTES);
  const n = fs.read(fd, bytes, META_FILE_BYTES, 0);
  let best: MetaState | null = null;
  for (let slot = 0; slot < 2; slot++) {
    const at = slot * META_SLOT_STRIDE_BYTES;
    if (at + META_SLOT_BYTES > n) continue;
    const check = decodeMetaSlot(bytes.subarray(at, at + META_SLOT_BYTES));
    if (!check.ok && check.version !== null) {
      throw new LogError(
        'PAXLINE_LOG_VERSION',
        `${path}: format version ${check.version}; this paxline reads version ${FORMAT_VERSION}`,
        { file: path, offset: at },
      );
    }
    if (check.ok && (best === null || check.meta.generation > best.generation)) best = check.meta;
  }
  return best;
}

/** Writes the slot for `meta.generation` and makes it durable. */
function writeMeta(fs: FileLayer, fd: number, path: string, meta: MetaState): void {
  const at = (meta.generation % 2) * META_SLOT_STRIDE_BYTES;
  try {
    fs.pwrite(fd, encodeMetaSlot(meta), at);
    fs.fdatasync(fd);
  } catch (e) {
    const code = systemErrorCode(e);
    if (code === undefined) throw e;
    throw new LogError(
      code === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_FSYNC_FAILED',
      `writing ${path} failed (${code})`,
      { file: path, offset: at, cause: e },
    );
  }
}

/**
 * Decides the torn-tail cut: the tail segment's bytes after the chain end that its own life
 * wrote (in a recycled segment, the old groups of earlier lives are stale, not torn: they never
 * verify here, so they are neither cut nor counted), and every later segment file.
 */
function planCut(scan: ScanResult, existing: readonly number[]): CutPlan {
  const tail = scan.tail;
  const files = scan.files;
  const none = { tailPath: '', zeroFrom: 0, zeroTo: 0, tailSize: 0, doomed: [] };
  if (tail === null) return none;
  const doomedNumbers = existing.filter(
    (n) => n > tail.segment || (n === tail.segment && !tail.headerOk),
  );
  let zeroTo = tail.position;
  let tailSize = 0;
  const tailKept = tail.headerOk && existing.includes(tail.segment);
  if (tailKept) {
    zeroTo = files.writtenEnd(tail.segment, tail.position);
    tailSize = files.size(tail.segment);
  }
  const doomed = doomedNumbers.map((n) => ({ n, bytes: files.writtenEnd(n, 0) }));
  const tailPath = tailKept ? files.image(tail.segment).path : '';
  return { tailPath, zeroFrom: tail.position, zeroTo, tailSize, doomed };
}

/** Cuts a torn tail as planned: zeroes it in its segment and deletes every later segment file. */
function cutTornTail(fs: FileLayer, dir: string, plan: CutPlan): CutResult {
  const unlinked: number[] = [];
  let bytesCut = 0;
  const { tailPath, zeroFrom, zeroTo } = plan;
  if (zeroTo > zeroFrom) {
    const fd = fs.open(tailPath, { create: false });
    try {
      for (let at = zeroFrom; at < zeroTo; at += ZEROS.length) {
        const zeros = ZEROS.subarray(0, Math.min(ZEROS.length, zeroTo - at));
        atOpen(dir, 'write', tailPath, at, () => fs.pwrite(fd, zeros, at));
      }
      atOpen(dir, 'fdatasync', tailPath, zeroFrom, () => fs.fdatasync(fd));
    } finally {
      fs.close(fd);
    }
    bytesCut += zeroTo - zeroFrom;
  }
  for (const { n, bytes } of plan.doomed) {
    const path = `${dir}/${segmentFileName(n)}`;
    bytesCut += bytes;
    atOpen(dir, 'unlink', path, null, () => fs.unlink(path));
    unlinked.push(n);
  }
  return { bytesCut, unlinked };
}

function writerStart(
  scan: ScanResult,
  cut: CutResult,
  plan: CutPlan,
  fds: ReadonlyMap<number, number>,
  free: readonly string[],
  options: ResolvedSegmentLogOptions,
): WriterStart {
  const last = scan.last;
  const tail = scan.tail;
  const damage = scan.damage.map((d) => ({ ...d }));
  if (tail === null) {
    // Corruption with no valid group after it: the damaged bytes stay untouched; appends go to
    // a fresh segment, with a seq gap so that no new group can ever look like the continuation
    // of the group before the damage (which would hide the damage at the next open).
    const seq = scan.seqMax + 1;
    const resumed = damage.map((d) => (d.resumeSeq === null ? { ...d, resumeSeq: seq + 1 } : d));
    return {
      segment: 0, writePos: 0, zeroedEnd: 0, nextSegment: scan.lastSegment + 1, forceFresh: true,
      lastSynced: {
        segment: last.segment, end: last.end, crc: last.crc, seq, highDecree: scan.highDecreeMax,
      },
      damage: resumed, fds, free,
    };
  }
  const lastSynced = {
    segment: last.segment, end: last.end, crc: last.crc, seq: last.seq,
    highDecree: Math.max(last.highDecree, scan.highDecreeMax),
  };
  const keep = tail.headerOk && fds.has(tail.segment) && !cut.unlinked.includes(tail.segment);
  if (!keep) {
    return {
      segment: 0, writePos: 0, zeroedEnd: 0, nextSegment: Math.max(tail.segment, 1),
      forceFresh: false,
      lastSynced, damage, fds, free,
    };
  }
  const zeroedEnd = Math.min(Math.max(plan.tailSize, tail.position), options.segmentBytes);
  return {
    segment: tail.segment, writePos: tail.position, zeroedEnd, nextSegment: tail.segment + 1,
    forceFresh: false, lastSynced, damage, fds, free,
  };
}

function corruptionError(
  dir: string,
  damage: readonly DamageEvent[],
  repairDecreeMax: number,
): LogError {
  const ranges = damage.flatMap((d) => d.ranges);
  const list = ranges
    .map((r) => `${r.fileName} [${r.offsetFrom}, ${r.offsetTo}) ${r.reason}`)
    .join('; ');
  const first = ranges[0]!;
  return new LogError(
    'PAXLINE_LOG_CORRUPT',
    `log ${dir}: bytes that were durable are damaged: ${list}. Nothing was truncated; the valid ` +
      `records before and after the damage were recovered. Records about decrees up to ` +
      `${repairDecreeMax} may be lost and must be repaired from peers before this replica votes.`,
    { file: `${dir}/${first.fileName}`, offset: first.offsetFrom },
  );
}

function buildReport(
  scan: ScanResult,
  cut: CutResult,
  error: LogError | null,
  repairDecreeMax: number,
  epoch: number,
  segments: number,
  retired: readonly number[],
  freeSegments: number,
): RecoveryReport {
  const damaged = scan.damage.flatMap((d) => d.ranges);
  const kind = error !== null ? 'corrupt' : cut.bytesCut > 0 ? 'tornTail' : 'clean';
  const durable = { segment: scan.last.segment, offset: scan.last.end };
  const base =
    `epoch ${epoch}: ${scan.locations.length} records in ${scan.groups} groups over ${segments} ` +
    `segments, durable to ${segmentFileName(durable.segment)}@${durable.offset}`;
  const message =
    kind === 'clean'
      ? `${base}; clean`
      : kind === 'tornTail'
        ? `${base}; cut a torn tail of ${cut.bytesCut} bytes (never acknowledged)`
        : `${base}; CORRUPT: ${error!.message}`;
  return {
    kind,
    bytesCut: cut.bytesCut,
    segmentsCut: cut.unlinked.map(segmentFileName),
    segmentsRetired: retired.map(segmentFileName),
    freeSegments,
    damaged,
    repairDecreeMax: error !== null ? repairDecreeMax : 0,
    error,
    epoch,
    segments,
    groups: scan.groups,
    groupsAbandoned: scan.groupsAbandoned,
    records: scan.locations.length,
    durable: comparePositions(durable, ORIGIN) > 0 ? durable : ORIGIN,
    message,
  };
}
