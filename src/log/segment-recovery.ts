/**
 * Recovery scan of a segmented log: walks the chain of groups in log order, verifying every
 * checksum and link, and at the first break decides between a torn tail and corruption by the
 * durable frontier. Pure reading: the caller (SegmentLog.open) performs the cut, the syncs and the
 * metadata update the verdict calls for.
 *
 * The chain. Groups are accepted one after another at the positions where they must be: the end
 * of the previous group, or the first group position of the next segment (a segment's tail after
 * its last group is slack: preallocated zeros, or groups abandoned after a failed fdatasync).
 * A data group G continues the chain after the last accepted group L when
 *   - G.epoch >= L.epoch, and G's frontier names a recently accepted group F exactly
 *     (segment, end offset and header CRC), and
 *   - G.seq = L.seq + 1 (the normal case; F may be L or, when one sync wrote several groups, the
 *     group before them), or G.seq = F.seq + 1 with F before L: G rewrote what followed F after a
 *     failed fdatasync, so the groups after F are abandoned and their records dropped.
 * A skip group (a repaired damaged range) continues after any L with seq >= L.seq, and the group
 * after a skip group needs only G.seq = skip.seq + 1 (its frontier may name lost groups).
 *
 * The verdict at a break at position P (segment S). Search every later position (8-byte aligned,
 * hopping over the groups found) for valid group headers with seq > L.seq and epoch >= L.epoch.
 * Their frontiers, and the floor recorded at the previous open, are positions known to have been
 * durable. If any of them lies beyond P, bytes that were fsynced are damaged: corruption. The
 * damaged ranges run from P to the first fully valid such group (the resync point), where the
 * chain resumes. Otherwise everything from P on was never proven durable: a torn tail.
 *
 * Retired prefix. Segments below `meta.firstSegment` were retired on purpose (retention) and are
 * gone by design: the walk starts at the first segment, and a data group there whose frontier
 * names a group below it continues the (retired) chain, exactly as after a repaired skip group:
 * the named group stands in for the retired ones, so a fresh segment rewritten after a failed
 * fdatasync can still abandon the groups after it. Files below the first segment are garbage
 * left by a crash during retirement; SegmentLog.open deletes them without reading them.
 *
 * Streaming. Segment files are read through one reused window buffer (WINDOW_BYTES, grown only
 * for a group larger than it), not into a buffer per file: fresh buffers cost a page fault per
 * 4 KiB on first touch, which halved recovery speed. Payloads of the records the caller keeps
 * (`keepFromDecree`) are copied out of the window, one copy per group body; every record, kept
 * or not, is verified and its location reported for the index. When much is kept, the copies
 * go into memory a helper thread pre-faulted (recovery-arenas.ts, `prefault`), so the faults
 * are paid on another core, and large bodies are read from their file straight into it and
 * verified there (directBody: no window fill, no second copy). The helper never sees the log;
 * only where kept bytes live depends on it (and on its timing), never what is kept or any
 * verdict.
 *
 * Recycled segments. A segment file may be a recycled one (its header names the segment whose
 * file it was): past its last group it holds the old groups of that earlier life. Group header
 * CRCs are bound to the segment number, so those never verify here and read like any other
 * garbage after the end of the written data: the end of a clean log, or a torn tail.
 *
 * Invariants: records are returned in log order, only from accepted groups, minus abandoned ones;
 * `provenMax` is never below the floor; a verdict never depends on bytes past a group's end
 * except through headers whose own CRC is valid.
 */
import { assert } from '../core/assert.js';
import type { FileLayer } from './file-layer.js';
import {
  FORMAT_VERSION,
  segmentBinding,
  GROUP_KIND_DATA,
  GROUP_KIND_SKIP,
  GROUP_MAGIC,
  alignUp,
  checkRecordAt,
  checkSegmentHeader,
  foldRecordCrc,
  groupSpanBytes,
  parseGroupHeader,
  type MetaState,
  type ParsedGroupHeader,
  type RecordView,
  type SegmentHeaderCheck,
} from './segment-format.js';
import { LogError } from './log-error.js';
import { RecoveryArenas } from './recovery-arenas.js';
import type { RecoveryPrefault } from './segment-log-options.js';
import {
  FIRST_GROUP_OFFSET,
  GROUP_ALIGN_BYTES,
  GROUP_HEADER_BYTES,
  RECOVERY_PREFAULT_BYTES_MIN,
  SEGMENT_HEADER_BYTES,
} from './segment-limits.js';

/** Bytes of the reused read window of a recovery scan. */
export const WINDOW_BYTES = 8 * 1024 * 1024;
/** Group bodies at least this large are read straight into arenas when in use (directBody). */
export const DIRECT_BODY_BYTES_MIN = 256 * 1024;
/** What a group header read loads after a body read straight into an arena. */
export const HEADER_PEEK_BYTES = 64 * 1024;

export interface LogPosition {
  readonly segment: number;
  readonly offset: number;
}

export const ORIGIN: LogPosition = Object.freeze({ segment: 0, offset: 0 });

export type DamageReason = 'checksum' | 'header' | 'truncated' | 'missing' | 'segmentHeader';

export interface DamagedRange {
  readonly segment: number;
  readonly fileName: string;
  readonly offsetFrom: number;
  readonly offsetTo: number;
  readonly reason: DamageReason;
}

/** One break in the chain proven to be corruption, with what markRepaired needs to close it. */
export interface DamageEvent {
  readonly ranges: readonly DamagedRange[];
  /** Epoch and seq of the last valid group before the damage (0 if none). */
  readonly epochBefore: number;
  readonly seqBefore: number;
  /** Seq of the group where the chain resumes after the damage; null: the next group written. */
  readonly resumeSeq: number | null;
}

export interface StoredRecord {
  readonly type: number;
  readonly decree: number;
  readonly ballot: number;
  readonly payload: Uint8Array;
}

export interface RecoveredRecord extends StoredRecord {
  readonly segment: number;
  /** File offset of the record header. */
  readonly offset: number;
}

/** A group accepted into the chain. */
export interface ChainGroup {
  readonly segment: number;
  readonly position: number;
  readonly end: number;
  readonly crc: number;
  readonly seq: number;
  readonly epoch: number;
  readonly kind: number;
  readonly highDecree: number;
  /** records.length (kept records) once this group's records are in. */
  readonly recordsEnd: number;
  /** locations.length (every record) once this group's records are in. */
  readonly locationsEnd: number;
}

const ORIGIN_GROUP: ChainGroup = Object.freeze({
  segment: 0, position: 0, end: 0, crc: 0, seq: 0, epoch: 0, kind: GROUP_KIND_DATA,
  highDecree: 0, recordsEnd: 0, locationsEnd: 0,
});

/** What recovery knows of one segment file; its bytes are read through the scan's window. */
export interface SegmentImage {
  readonly number: number;
  readonly fileName: string;
  readonly path: string;
  readonly exists: boolean;
  /** File size in bytes (0 when missing). */
  readonly size: number;
  /** Open descriptor while the scan lasts; -1 when missing. */
  readonly fd: number;
  /** Seed of the header CRCs of groups written in this segment (segmentBinding). */
  readonly binding: number;
  /** null when the file is missing. */
  readonly header: SegmentHeaderCheck | null;
}

export interface TailVerdict {
  /** Where the chain ends and appending continues (segment of the last group, or the first). */
  readonly segment: number;
  readonly position: number;
  /** False when `segment`'s header is damaged or missing: the whole file is cut. */
  readonly headerOk: boolean;
}

export interface ScanResult {
  /** The records kept (decree 0, or >= keepFromDecree), in log order. */
  readonly records: RecoveredRecord[];
  /** Decree and packed location (segment · 2^31 + offset) of every record, kept or not. */
  readonly decrees: number[];
  readonly locations: number[];
  /** The last accepted group (an all-zero origin when none). */
  readonly last: ChainGroup;
  readonly damage: DamageEvent[];
  /** Torn or clean end; null when corruption left no valid group after it (append elsewhere). */
  readonly tail: TailVerdict | null;
  /** The furthest position proven durable (frontiers, floor, chain end). */
  readonly provenMax: LogPosition;
  readonly seqMax: number;
  readonly highDecreeMax: number;
  readonly groups: number;
  readonly groupsAbandoned: number;
  readonly lastSegment: number;
  /** Reads the scanned files on (for the torn-tail cut); closed by the caller. */
  readonly files: LogScanner;
}

type GroupAt =
  | { readonly ok: true; readonly group: ParsedGroup }
  | {
      readonly ok: false;
      readonly cause: 'header' | 'checksum' | 'truncated';
      readonly skipTo: number | null;
    };

interface ParsedGroup {
  readonly header: ParsedGroupHeader;
  readonly segment: number;
  readonly position: number;
  readonly end: number;
  readonly records: RecoveredRecord[];
  readonly decrees: number[];
  readonly locations: number[];
}

interface SearchResult {
  frontierMax: LogPosition;
  readonly provenEnd: Map<number, number>;
  seqMax: number;
  highDecreeMax: number;
  resync: ParsedGroup | null;
}

export function segmentFileName(segment: number): string {
  return `seg-${String(segment).padStart(8, '0')}.plog`;
}

const SEGMENT_NAME = /^seg-(\d{8})\.plog$/;

/** Segment numbers present in `names`, ascending. */
export function segmentNumbers(names: readonly string[]): number[] {
  const out: number[] = [];
  for (const name of names) {
    const m = SEGMENT_NAME.exec(name);
    if (m !== null) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.segment !== b.segment ? a.segment - b.segment : a.offset - b.offset;
}

function maxPosition(a: LogPosition, b: LogPosition): LogPosition {
  return comparePositions(a, b) >= 0 ? a : b;
}

/** End of the last non-zero byte at or after `from` (or `from` when all are zero). */
export function nonzeroEnd(bytes: Uint8Array, from: number): number {
  let i = bytes.length;
  while (i > from && bytes[i - 1] === 0) i--;
  return i;
}

/** 2^31: multiplier packing (segment, offset) into one safe integer (as segment-limits'). */
const LOCATION_FACTOR = 2 ** 31;

export function readWholeFile(fs: FileLayer, fd: number): Uint8Array {
  const size = fs.size(fd);
  const out = new Uint8Array(size);
  let got = 0;
  while (got < size) {
    const n = fs.read(fd, out.subarray(got), size - got, got);
    if (n === 0) break;
    got += n;
  }
  assert(got === size, 'readWholeFile: file shorter than its size');
  return out;
}

export class LogScanner {
  private readonly images = new Map<number, SegmentImage>();
  private readonly records: RecoveredRecord[] = [];
  private readonly decrees: number[] = [];
  private readonly locations: number[] = [];
  // The read window: file bytes [base, base + loaded) of `windowOf` are at window[0, loaded).
  private window: Uint8Array;
  private windowView: DataView;
  private windowBytes: Uint8Array;
  private windowOf: SegmentImage | null = null;
  private base = 0;
  private loaded = 0;
  private readonly damage: DamageEvent[] = [];
  /** Accepted groups a later frontier may still name, in chain order. */
  private recent: ChainGroup[] = [ORIGIN_GROUP];
  private last: ChainGroup = ORIGIN_GROUP;
  private provenMax: LogPosition;
  private seqMax = 0;
  private highDecreeMax = 0;
  private groups = 0;
  private groupsAbandoned = 0;
  private readonly floor: LogPosition;
  private readonly lastSegment: number;
  private readonly recordScratch: RecordView = {
    type: 0, decree: 0, ballot: 0, payloadAt: 0, payloadBytes: 0, crc: 0,
  };
  private readonly crcScratch = new Uint8Array(4);
  /** Pre-faulted memory for kept payloads; started at the first kept group (see keepCopy). */
  private arenas: RecoveryArenas | null = null;
  private arenasDecided = false;
  /**
   * Bytes a group header read loads: the whole window, or only HEADER_PEEK_BYTES after a group
   * whose body was read straight into an arena (its successor is likely large too, and read so).
   */
  private peekBytes: number;

  constructor(
    private readonly fs: FileLayer,
    private readonly dir: string,
    private readonly meta: MetaState,
    existing: readonly number[],
    /** Records below this decree (other than decree 0) are verified and indexed, not kept. */
    private readonly keepFromDecree = 0,
    private readonly prefault: RecoveryPrefault = 'auto',
    windowBytes = WINDOW_BYTES,
  ) {
    this.window = new Uint8Array(windowBytes);
    this.windowView = viewOf(this.window);
    this.windowBytes = this.window.subarray(0, 0);
    this.peekBytes = windowBytes;
    this.floor = { segment: meta.floorSegment, offset: meta.floorEnd };
    this.provenMax = this.floor;
    this.highDecreeMax = meta.floorHighDecree;
    this.lastSegment = Math.max(existing.at(-1) ?? 0, meta.floorSegment);
  }

  scan(): ScanResult {
    const tail = this.lastSegment >= this.meta.firstSegment ? this.walk() : this.emptyTail();
    const chainEnd = { segment: this.last.segment, offset: this.last.end };
    return {
      records: this.records,
      decrees: this.decrees,
      locations: this.locations,
      last: this.last,
      damage: this.damage,
      tail,
      provenMax: maxPosition(this.provenMax, chainEnd),
      seqMax: this.seqMax,
      highDecreeMax: this.highDecreeMax,
      groups: this.groups,
      groupsAbandoned: this.groupsAbandoned,
      lastSegment: this.lastSegment,
      files: this,
    };
  }

  /** Closes every file the scan opened. */
  close(): void {
    for (const img of this.images.values()) if (img.fd >= 0) this.fs.close(img.fd);
    this.images.clear();
    this.windowOf = null;
    this.arenas?.close();
  }

  /**
   * A copy of `bytes` [from, to) to keep: in a pre-faulted arena when the helper has one ready,
   * else a fresh slice. `fileAt`: where the bytes are in segment `img` (for the estimate of what
   * is left to scan when deciding to start the helper).
   */
  private keepCopy(
    img: SegmentImage,
    fileAt: number,
    bytes: Uint8Array,
    from: number,
    to: number,
  ): Uint8Array {
    if (!this.arenasDecided) this.decideArenas(img, fileAt);
    const kept = this.arenas === null ? null : this.arenas.copy(bytes.subarray(from, to));
    return kept ?? bytes.slice(from, to);
  }

  private decideArenas(img: SegmentImage, fileAt: number): void {
    this.arenasDecided = true;
    // Later segments are taken to be as large as this one (they are, but for the last).
    const left = (this.lastSegment - img.number) * img.size + (img.size - fileAt);
    const start =
      this.prefault === 'always' ||
      (this.prefault === 'auto' && left >= RECOVERY_PREFAULT_BYTES_MIN);
    if (start) this.arenas = new RecoveryArenas(this.prefault === 'always');
  }

  /** Segment `n` as recovery sees it (opened once; its header checked). */
  image(n: number): SegmentImage {
    let img = this.images.get(n);
    if (img !== undefined) return img;
    const fileName = segmentFileName(n);
    const path = `${this.dir}/${fileName}`;
    let header: SegmentHeaderCheck | null = null;
    const exists = this.fs.exists(path);
    const fd = exists ? this.fs.open(path, { create: false }) : -1;
    const size = exists ? this.fs.size(fd) : 0;
    img = { number: n, fileName, path, exists, size, fd, binding: segmentBinding(n), header };
    this.images.set(n, img);
    if (exists) {
      const at = this.load(img, 0, SEGMENT_HEADER_BYTES);
      header = checkSegmentHeader(this.windowBytes.subarray(at, at + SEGMENT_HEADER_BYTES), n);
      img = { ...img, header };
      this.images.set(n, img);
      this.windowOf = img;
      if (!header.ok && header.reason === 'version') {
        throw new LogError(
          'PAXLINE_LOG_VERSION',
          `${path}: segment format version ${header.version}; this paxline reads version ` +
            `${FORMAT_VERSION} (refusing to open the log rather than misread it)`,
          { file: path, offset: 4 },
        );
      }
    }
    return img;
  }

  /**
   * Makes file bytes [pos, pos + length) of `img` (clipped to its size) present in the window
   * and returns the window index of `pos`. Bytes already loaded are moved, never read twice.
   * A read fills the window, or stops after `readBytes` (when larger than `length`).
   */
  load(img: SegmentImage, pos: number, length: number, readBytes = this.window.length): number {
    const want = Math.min(length, img.size - pos);
    if (this.windowOf === img && pos >= this.base && pos + want <= this.base + this.loaded) {
      return pos - this.base;
    }
    if (want > this.window.length) {
      // A group larger than the window: grow it (bounded by the segment size).
      const grown = new Uint8Array(Math.max(want, this.window.length * 2));
      this.window = grown;
      this.windowView = viewOf(grown);
      this.windowOf = null;
    }
    let kept = 0;
    if (this.windowOf === img && pos >= this.base && pos < this.base + this.loaded) {
      kept = this.base + this.loaded - pos;
      this.window.copyWithin(0, pos - this.base, this.loaded);
    }
    const target = Math.min(this.window.length, img.size - pos, Math.max(want, readBytes));
    let got = kept;
    while (got < target) {
      const n = this.fs.read(img.fd, this.window.subarray(got), target - got, pos + got);
      if (n === 0) break;
      got += n;
    }
    assert(got >= want, 'load: file shorter than its size');
    this.windowOf = img;
    this.base = pos;
    this.loaded = got;
    this.windowBytes = this.window.subarray(0, got);
    return 0;
  }

  /** End of the last non-zero byte of segment `n` at or after `from` (`from` when all zero). */
  nonzeroEnd(n: number, from: number): number {
    const img = this.image(n);
    let end = img.size;
    while (end > from) {
      const chunkFrom = Math.max(from, end - this.window.length);
      const at = this.load(img, chunkFrom, end - chunkFrom);
      const bytes = this.windowBytes;
      let i = at + (end - chunkFrom);
      while (i > at && bytes[i - 1] === 0) i--;
      if (i > at) return chunkFrom + (i - at);
      end = chunkFrom;
    }
    return from;
  }

  /**
   * Where the bytes written by segment `n`'s own life end, at or after `from`: in a recycled
   * segment, the end of the furthest group header valid for `n` (older lives' groups never
   * verify, and are not cut: they are stale, not torn); in a new one, the last non-zero byte.
   */
  writtenEnd(n: number, from: number): number {
    const img = this.image(n);
    if (!img.exists) return from;
    const header = img.header;
    if (header === null || !header.ok || header.recycledFrom === 0) return this.nonzeroEnd(n, from);
    let end = from;
    this.eachHeader(img, Math.max(alignUp(from), FIRST_GROUP_OFFSET), (x, h) => {
      end = Math.max(end, Math.min(img.size, x + groupSpanBytes(h.bodyBytes)));
    });
    return end;
  }

  size(n: number): number {
    return this.image(n).size;
  }

  private emptyTail(): TailVerdict | null {
    return this.meta.firstSegment > 0
      ? { segment: this.meta.firstSegment, position: FIRST_GROUP_OFFSET, headerOk: false }
      : null;
  }

  /** Walks the chain to its end; returns the tail verdict (null: resume in a fresh segment). */
  private walk(): TailVerdict | null {
    let cur = this.meta.firstSegment;
    let pos = FIRST_GROUP_OFFSET;
    // A segment whose header is damaged is walked from where a resync found a valid group.
    let bypassed = 0;
    for (;;) {
      const img = this.image(cur);
      const headerOk = (img.header !== null && img.header.ok) || bypassed === cur;
      let cause: 'header' | 'checksum' | 'truncated' = 'header';
      let skipTo: number | null = null;
      if (headerOk) {
        const at = this.groupAt(img, pos, true);
        if (at.ok && this.continues(at.group.header)) {
          this.accept(at.group);
          pos = at.group.end;
          continue;
        }
        if (at.ok) skipTo = at.group.end; // valid but not ours: search after it
        else {
          cause = at.cause;
          skipTo = at.skipTo;
        }
      }
      const failPos = headerOk ? pos : 0;
      // A segment ends where its groups end; the chain goes on in a later segment.
      const next = this.nextSegmentContinuing(cur);
      if (next !== 0) {
        cur = next;
        pos = FIRST_GROUP_OFFSET;
        continue;
      }
      const search = this.search(cur, failPos, skipTo);
      const proven = maxPosition(search.frontierMax, this.floor);
      this.provenMax = maxPosition(this.provenMax, proven);
      const failAt = { segment: cur, offset: failPos };
      if (comparePositions(proven, failAt) <= 0) {
        return { segment: cur, position: failPos, headerOk };
      }
      // Bytes at or past failAt were durable: corruption. Never cut; resume after the damage.
      const ranges = this.damagedRanges(cur, failPos, headerOk ? cause : 'segmentHeader', search);
      const resync = search.resync;
      if (ranges.length === 0) {
        // Nothing non-zero and nothing proven lies between the break and the resync point.
        if (resync === null) return { segment: cur, position: failPos, headerOk };
      } else {
        this.damage.push({
          ranges,
          epochBefore: this.last.epoch,
          seqBefore: this.last.seq,
          resumeSeq: resync === null ? null : resync.header.seq,
        });
      }
      if (resync === null) return null;
      this.acceptResync(resync);
      cur = resync.segment;
      pos = resync.end;
      bypassed = cur;
    }
  }

  /**
   * The first segment after `cur` whose first group continues the chain, or 0. Usually cur + 1;
   * segments skipped over were fresh segments abandoned after a failed write or fdatasync: a
   * first group naming a group before them proves that nothing in them was ever durable.
   */
  private nextSegmentContinuing(cur: number): number {
    for (let n = cur + 1; n <= this.lastSegment; n++) {
      const img = this.image(n);
      if (img.header === null || !img.header.ok) continue;
      const at = this.groupAt(img, FIRST_GROUP_OFFSET, true);
      if (at.ok && this.continues(at.group.header)) return n;
    }
    return 0;
  }

  /** Whether a fully valid group at an expected position continues the chain. */
  private continues(g: ParsedGroupHeader): boolean {
    const last = this.last;
    if (g.epoch < last.epoch) return false;
    if (g.kind === GROUP_KIND_SKIP) return g.seq >= last.seq;
    if (last.kind === GROUP_KIND_SKIP) return g.seq === last.seq + 1;
    if (this.namesRetired(g)) return true;
    const f = this.findRecent(g);
    if (f === null) return false;
    if (g.seq === last.seq + 1) return true;
    return f !== last && g.seq === f.seq + 1;
  }

  /**
   * Whether `g` is the first group of the walk and names a group in the retired prefix (below
   * the first segment): the chain before it was retired by design, not lost. That includes the
   * origin (frontier segment 0) once segments were retired: the first sync of a log names the
   * origin in every group it writes, and may spread them over several segments, the first of
   * which may be retired (found by the power-loss test with retention: seeds 239, 298).
   */
  private namesRetired(g: ParsedGroupHeader): boolean {
    return (
      this.last === ORIGIN_GROUP &&
      g.kind === GROUP_KIND_DATA &&
      (g.frontierSegment > 0 || this.meta.firstSegment > 1) &&
      g.frontierSegment < this.meta.firstSegment
    );
  }

  private findRecent(g: ParsedGroupHeader): ChainGroup | null {
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const f = this.recent[i]!;
      if (f.segment === g.frontierSegment && f.end === g.frontierEnd) {
        return f.crc === g.frontierCrc ? f : null;
      }
    }
    return null;
  }

  private accept(g: ParsedGroup): void {
    const h = g.header;
    if (this.namesRetired(h)) {
      // The retired group it names stands in for the retired chain; a rewrite of what followed
      // it (after a failed fdatasync) in a later segment may still name it.
      this.recent.push(this.namedFrontier(h));
    } else if (h.kind === GROUP_KIND_DATA && this.last.kind === GROUP_KIND_SKIP) {
      // Its frontier names a group lost in the repaired damage; groups of the same sync may too.
      this.recent.push(this.namedFrontier(h));
    } else if (h.kind === GROUP_KIND_DATA) {
      const f = this.findRecent(h);
      assert(f !== null, 'accept: the group names no recent group');
      if (h.seq !== this.last.seq + 1) {
        // Abandonment: G rewrote everything after F in a fresh segment.
        const at = this.recent.indexOf(f);
        this.groupsAbandoned += this.recent.length - 1 - at;
        this.recent.length = at + 1;
        this.records.length = f.recordsEnd;
        this.decrees.length = f.locationsEnd;
        this.locations.length = f.locationsEnd;
      }
      // Groups before the frontier are proven synced; no later group can name them.
      this.recent = this.recent.slice(this.recent.indexOf(f));
    }
    this.push(g);
  }

  /** Starts the chain again at a resync point found after damage. */
  private acceptResync(g: ParsedGroup): void {
    // The resync group's frontier stands for groups lost in the damage; later groups of the
    // same sync may name it too.
    this.recent = [this.namedFrontier(g.header)];
    this.push(g);
  }

  /** A stand-in for the (lost) group that `h` names as its frontier. */
  private namedFrontier(h: ParsedGroupHeader): ChainGroup {
    return {
      ...ORIGIN_GROUP,
      segment: h.frontierSegment,
      end: h.frontierEnd,
      crc: h.frontierCrc,
      seq: h.seq - 1,
      epoch: h.epoch,
      recordsEnd: this.records.length,
      locationsEnd: this.locations.length,
    };
  }

  private push(g: ParsedGroup): void {
    const h = g.header;
    for (const r of g.records) this.records.push(r);
    for (let i = 0; i < g.decrees.length; i++) {
      this.decrees.push(g.decrees[i]!);
      this.locations.push(g.locations[i]!);
    }
    const chained: ChainGroup = {
      segment: g.segment,
      position: g.position,
      end: g.end,
      crc: h.headerCrc,
      seq: h.seq,
      epoch: h.epoch,
      kind: h.kind,
      highDecree: h.highDecree,
      recordsEnd: this.records.length,
      locationsEnd: this.locations.length,
    };
    this.recent.push(chained);
    this.last = chained;
    this.groups++;
    if (h.seq > this.seqMax) this.seqMax = h.seq;
    if (h.highDecree > this.highDecreeMax) this.highDecreeMax = h.highDecree;
  }

  /**
   * Parses and fully verifies the group at `pos` of `img`. `expected`: the position is one the
   * chain requires, so a valid header of an unknown version refuses the open.
   */
  private groupAt(img: SegmentImage, pos: number, expected: boolean): GroupAt {
    if (!img.exists || pos + GROUP_HEADER_BYTES > img.size) {
      return { ok: false, cause: 'truncated', skipTo: null };
    }
    const hat = this.load(img, pos, GROUP_HEADER_BYTES, this.peekBytes);
    const h = parseGroupHeader(this.windowBytes, this.windowView, hat, img.binding);
    if (h === null) return { ok: false, cause: 'header', skipTo: null };
    if (h.version !== FORMAT_VERSION) {
      if (!expected) return { ok: false, cause: 'header', skipTo: null };
      throw new LogError(
        'PAXLINE_LOG_VERSION',
        `${img.path}: group at offset ${pos} has format version ${h.version}; this paxline reads ` +
          `version ${FORMAT_VERSION}`,
        { file: img.path, offset: pos },
      );
    }
    const bodyAt = pos + GROUP_HEADER_BYTES;
    const bodyEnd = bodyAt + h.bodyBytes;
    if (h.kind !== GROUP_KIND_DATA && h.kind !== GROUP_KIND_SKIP) {
      return { ok: false, cause: 'header', skipTo: null };
    }
    if (bodyEnd > img.size) return { ok: false, cause: 'truncated', skipTo: null };
    const end = pos + groupSpanBytes(h.bodyBytes);
    const group: ParsedGroup = {
      header: h, segment: img.number, position: pos, end, records: [], decrees: [], locations: [],
    };
    if (h.kind === GROUP_KIND_DATA) {
      const direct = this.directBody(img, bodyAt, h.bodyBytes);
      let ok: boolean;
      if (direct !== null) {
        ok = this.checkBody(img, h, direct, viewOf(direct), 0, direct.length, pos, group, direct);
        // Nothing of it kept (damaged, or older than keepFromDecree): the arena takes it back.
        if (!ok || group.records.length === 0) this.arenas!.release(direct);
      } else {
        const at = this.load(img, pos, bodyEnd - pos);
        const from = at + GROUP_HEADER_BYTES;
        const to = at + bodyEnd - pos;
        ok = this.checkBody(img, h, this.windowBytes, this.windowView, from, to, pos, group, null);
      }
      this.peekBytes = direct !== null ? HEADER_PEEK_BYTES : this.window.length;
      if (!ok) return { ok: false, cause: 'checksum', skipTo: Math.min(end, img.size) };
    }
    return { ok: true, group };
  }

  /**
   * With the helper's arenas in use, a large body not yet in the window is read straight into
   * an arena (what the window holds of it is copied), where it is verified and its kept payloads
   * stay: no window fill and no second copy. Null: read it through the window.
   */
  private directBody(img: SegmentImage, bodyAt: number, bodyBytes: number): Uint8Array | null {
    if (this.arenas === null || bodyBytes < DIRECT_BODY_BYTES_MIN) return null;
    const inWindow = this.windowOf === img && bodyAt >= this.base;
    const loadedEnd = this.base + this.loaded;
    if (inWindow && bodyAt + bodyBytes <= loadedEnd) return null; // loaded: keepCopy copies it
    const into = this.arenas.reserve(bodyBytes);
    if (into === null) return null;
    let got = 0;
    if (inWindow && bodyAt < loadedEnd) {
      into.set(this.window.subarray(bodyAt - this.base, this.loaded));
      got = loadedEnd - bodyAt;
    }
    while (got < bodyBytes) {
      const n = this.fs.read(img.fd, into.subarray(got), bodyBytes - got, bodyAt + got);
      if (n === 0) break;
      got += n;
    }
    assert(got === bodyBytes, 'directBody: file shorter than its size');
    return into;
  }

  /**
   * Verifies a group body at `bytes` [bodyAt, bodyEnd); `fileAt`: file offset of the group.
   * `kept`: the body already lies in memory to keep (`bytes` itself); null: copy what is kept.
   */
  private checkBody(
    img: SegmentImage,
    h: ParsedGroupHeader,
    bytes: Uint8Array,
    view: DataView,
    bodyAt: number,
    bodyEnd: number,
    fileAt: number,
    out: ParsedGroup,
    kept: Uint8Array | null,
  ): boolean {
    const { decrees, locations } = out;
    const recordsOut = out.records;
    const r = this.recordScratch;
    let at = bodyAt;
    let bodyCrc = 0;
    // Kept payloads are views of one copy of the group body (one allocation per group, not per
    // record: per-record copies cost more than the verification itself).
    let body = kept;
    for (let i = 0; i < h.recordCount; i++) {
      const next = checkRecordAt(bytes, view, at, bodyEnd, r);
      if (next < 0) return false;
      bodyCrc = foldRecordCrc(bodyCrc, r.crc, this.crcScratch);
      const offset = fileAt + GROUP_HEADER_BYTES + (at - bodyAt);
      decrees.push(r.decree);
      locations.push(img.number * LOCATION_FACTOR + offset);
      if (r.decree === 0 || r.decree >= this.keepFromDecree) {
        recordsOut.push({
          type: r.type,
          decree: r.decree,
          ballot: r.ballot,
          payload: (body ??= this.keepCopy(img, fileAt, bytes, bodyAt, bodyEnd)).subarray(
            r.payloadAt - bodyAt,
            r.payloadAt - bodyAt + r.payloadBytes,
          ),
          segment: img.number,
          offset,
        });
      }
      at = next;
    }
    return at === bodyEnd && bodyCrc === h.bodyCrc;
  }

  /**
   * Visits every aligned position after the break, hopping over groups whose header is valid,
   * collecting the frontiers of headers that could follow the last valid group, and the first
   * fully valid such group (the resync point).
   */
  private search(cur: number, failPos: number, skipTo: number | null): SearchResult {
    const last = this.last;
    const result: SearchResult = {
      frontierMax: ORIGIN, provenEnd: new Map(), seqMax: last.seq, highDecreeMax: 0, resync: null,
    };
    for (let s = cur; s <= this.lastSegment; s++) {
      const img = this.image(s);
      if (!img.exists) continue;
      let x = FIRST_GROUP_OFFSET;
      if (s === cur && failPos >= FIRST_GROUP_OFFSET) x = skipTo ?? failPos + GROUP_ALIGN_BYTES;
      this.eachHeader(img, alignUp(x), (at, h) => {
        if (h.seq > last.seq && h.epoch >= last.epoch) this.noteHit(result, img, at, h);
      });
    }
    if (result.seqMax > this.seqMax) this.seqMax = result.seqMax;
    if (result.highDecreeMax > this.highDecreeMax) this.highDecreeMax = result.highDecreeMax;
    return result;
  }

  /**
   * Calls `visit` for every valid group header of `img` (bound to it, of this format version) at
   * an aligned position from `from` on, hopping over the span of each one found.
   */
  private eachHeader(
    img: SegmentImage,
    from: number,
    visit: (at: number, h: ParsedGroupHeader) => void,
  ): void {
    const limit = img.size - GROUP_HEADER_BYTES;
    let x = from;
    while (x <= limit) {
      const at = this.load(img, x, GROUP_HEADER_BYTES);
      const view = this.windowView;
      // Scan the loaded part for the magic without reloading.
      const stop = Math.min(limit, this.base + this.loaded - GROUP_HEADER_BYTES);
      let i = at;
      while (x <= stop && view.getUint32(i, true) !== GROUP_MAGIC) {
        x += GROUP_ALIGN_BYTES;
        i += GROUP_ALIGN_BYTES;
      }
      if (x > stop) continue;
      const h = parseGroupHeader(this.windowBytes, view, i, img.binding);
      if (h === null || h.version !== FORMAT_VERSION) {
        x += GROUP_ALIGN_BYTES;
        continue;
      }
      visit(x, h);
      const span = groupSpanBytes(h.bodyBytes);
      x = x + span <= img.size ? x + span : x + GROUP_ALIGN_BYTES;
    }
  }

  private noteHit(result: SearchResult, img: SegmentImage, x: number, h: ParsedGroupHeader): void {
    if (h.kind === GROUP_KIND_DATA && h.frontierSegment > 0) {
      const f = { segment: h.frontierSegment, offset: h.frontierEnd };
      result.frontierMax = maxPosition(result.frontierMax, f);
      const known = result.provenEnd.get(f.segment) ?? 0;
      if (f.offset > known) result.provenEnd.set(f.segment, f.offset);
    }
    if (h.seq > result.seqMax) result.seqMax = h.seq;
    if (h.highDecree > result.highDecreeMax) result.highDecreeMax = h.highDecree;
    if (result.resync === null) {
      const at = this.groupAt(img, x, false);
      if (at.ok) result.resync = at.group;
    }
  }

  /** The damaged ranges from the break to the resync point (or to the end of the log). */
  private damagedRanges(
    cur: number,
    failPos: number,
    cause: DamageReason,
    search: SearchResult,
  ): DamagedRange[] {
    const resync = search.resync;
    const endSegment = resync === null ? this.lastSegment : resync.segment;
    const ranges: DamagedRange[] = [];
    for (let s = cur; s <= endSegment; s++) {
      const img = this.image(s);
      const headerOk = img.header !== null && img.header.ok;
      const from = s === cur ? failPos : headerOk ? FIRST_GROUP_OFFSET : 0;
      let proven = search.provenEnd.get(s) ?? 0;
      if (this.floor.segment === s) proven = Math.max(proven, this.floor.offset);
      let to: number;
      if (resync !== null && s === endSegment) to = resync.position;
      else if (!img.exists) to = Math.max(proven, FIRST_GROUP_OFFSET + GROUP_HEADER_BYTES);
      else to = Math.max(alignUp(this.nonzeroEnd(s, from)), proven);
      if (to <= from) continue;
      let reason: DamageReason;
      if (!img.exists) reason = 'missing';
      else if (!headerOk) reason = 'segmentHeader';
      else if (to > img.size) reason = 'truncated';
      else reason = s === cur ? cause : 'header';
      ranges.push({ segment: s, fileName: img.fileName, offsetFrom: from, offsetTo: to, reason });
    }
    return ranges;
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
