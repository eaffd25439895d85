/**
 * Byte layouts of the segmented log (see segment-log.ts for the whole picture): segment header,
 * group header, record, and the two-slot metadata file. All integers are little-endian; decree,
 * ballot, group sequence and high-water mark are safe integers stored as float64 (exact below
 * 2^53), like the rest of paxline's codecs, so no BigInt is needed.
 *
 * Invariants:
 *  - Every structure carries a CRC32C over its own bytes; a zero-filled region never parses
 *    (magics are non-zero and record type 0 is reserved).
 *  - A group's body CRC is the CRC32C of its records' stored CRC fields, in order. Each record's
 *    CRC covers its length, type, decree, ballot and payload, so the body CRC covers every body
 *    byte transitively, while appending and verifying each pass over the payload bytes only once
 *    (the JavaScript CRC runs at ~1.2 GB/s; a second pass would halve recovery speed).
 *  - The group header CRC covers the body CRC, so it alone identifies a whole group: it is the
 *    "CRC of the last group" that durable frontiers name.
 *  - The group header CRC is seeded with its segment's number, so a group verifies only in the
 *    segment that wrote it: the old groups of a recycled file read as garbage, never as groups
 *    of the segment it now is. (Segment numbers of retired files are never used again.)
 */
import { crc32c } from '../util/crc32c.js';
import {
  GROUP_ALIGN_BYTES,
  GROUP_HEADER_BYTES,
  META_SLOT_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_TYPE_MIN,
  SEGMENT_HEADER_BYTES,
} from './segment-limits.js';

/**
 * 2: group header CRCs are bound to their segment (seeded with the segment number), and the
 * segment header records the segment whose file it recycled
 * (docs/decisions/0006-segment-recycling.md). Version 1 logs are refused, never misread.
 */
export const FORMAT_VERSION = 2;

/** 'PXSG', 'PXGR', 'PXMT' read as little-endian u32. */
export const SEGMENT_MAGIC = 0x47535850;
export const GROUP_MAGIC = 0x52475850;
export const META_MAGIC = 0x544d5850;

export const GROUP_KIND_DATA = 1;
/** A skip group stands in for a repaired damaged range: no records, body not checked. */
export const GROUP_KIND_SKIP = 2;

/*
 * Segment header (32 bytes)            Group header (56 bytes)
 *   0 u32 magic 'PXSG'                   0 u32 magic 'PXGR'     28 u32 frontier end offset
 *   4 u16 format version                 4 u16 format version   32 u32 frontier group CRC
 *   6 u16 header bytes (32)              6 u8  kind             36 u32 record count
 *   8 u32 segment number                 7 u8  0                40 f64 high-water decree
 *  12 u32 epoch at creation              8 u32 epoch            48 u32 body CRC
 *  16 u32 configured segment bytes      12 u32 body bytes       52 u32 header CRC (bytes 0..52,
 *  20 u32 recycled from segment (0: new)16 f64 group sequence          seeded with the binding)
 *  24 4 bytes zero                      24 u32 frontier segment
 *  28 u32 CRC of bytes 0..28
 *
 * Record (25-byte header + payload)    Meta slot (64 bytes, at 0 and at 512)
 *   0 u32 payload bytes                  0 u32 magic 'PXMT'     16 u32 floor segment
 *   4 u32 CRC of bytes 0..4 ‖ 8..end     4 u16 format version   20 u32 floor end offset
 *   8 u8  type (1..255)                  6 u16 0                24 f64 floor high-water decree
 *   9 f64 decree                         8 u32 generation       32 u32 first segment
 *  17 f64 ballot                        12 u32 epoch            36 24 bytes zero
 *  25 payload                                                   60 u32 CRC of bytes 0..60
 */
const SEG_CRC_AT = 28;
const GROUP_CRC_AT = 52;
const META_CRC_AT = 60;

export function alignUp(n: number): number {
  return Math.ceil(n / GROUP_ALIGN_BYTES) * GROUP_ALIGN_BYTES;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ─── segment header ──────────────────────────────────────────────────────────────────────────

export function encodeSegmentHeader(
  segment: number,
  epoch: number,
  segmentBytes: number,
  recycledFrom = 0,
): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  const v = viewOf(out);
  v.setUint32(0, SEGMENT_MAGIC, true);
  v.setUint16(4, FORMAT_VERSION, true);
  v.setUint16(6, SEGMENT_HEADER_BYTES, true);
  v.setUint32(8, segment, true);
  v.setUint32(12, epoch, true);
  v.setUint32(16, segmentBytes, true);
  v.setUint32(20, recycledFrom, true);
  v.setUint32(SEG_CRC_AT, crc32c(out.subarray(0, SEG_CRC_AT)), true);
  return out;
}

export type SegmentHeaderCheck =
  | { readonly ok: true; readonly epoch: number; readonly recycledFrom: number }
  | { readonly ok: false; readonly reason: 'short' | 'magic' | 'checksum' | 'number' }
  | { readonly ok: false; readonly reason: 'version'; readonly version: number };

export function checkSegmentHeader(bytes: Uint8Array, segment: number): SegmentHeaderCheck {
  if (bytes.length < SEGMENT_HEADER_BYTES) return { ok: false, reason: 'short' };
  const v = viewOf(bytes);
  if (v.getUint32(0, true) !== SEGMENT_MAGIC) return { ok: false, reason: 'magic' };
  if (v.getUint32(SEG_CRC_AT, true) !== crc32c(bytes.subarray(0, SEG_CRC_AT))) {
    return { ok: false, reason: 'checksum' };
  }
  const version = v.getUint16(4, true);
  if (version !== FORMAT_VERSION) return { ok: false, reason: 'version', version };
  if (v.getUint32(8, true) !== segment) return { ok: false, reason: 'number' };
  return { ok: true, epoch: v.getUint32(12, true), recycledFrom: v.getUint32(20, true) };
}

/**
 * The seed of the group header CRCs of segment `segment`: the CRC32C of its number (u32 LE).
 * A recycled file only ever held retired segments, whose numbers are below the first segment
 * and never used again, so none of its old groups verifies under its new number.
 */
export function segmentBinding(segment: number): number {
  const b = new Uint8Array(4);
  viewOf(b).setUint32(0, segment, true);
  return crc32c(b);
}

// ─── group header ────────────────────────────────────────────────────────────────────────────

export interface GroupHeader {
  readonly kind: number;
  readonly epoch: number;
  readonly bodyBytes: number;
  readonly seq: number;
  readonly frontierSegment: number;
  readonly frontierEnd: number;
  readonly frontierCrc: number;
  readonly recordCount: number;
  readonly highDecree: number;
  readonly bodyCrc: number;
}

export interface ParsedGroupHeader extends GroupHeader {
  readonly version: number;
  readonly headerCrc: number;
}

/** Writes `h` at `at` in `out`, bound to `binding` (segmentBinding), and returns the header CRC. */
export function encodeGroupHeader(
  out: Uint8Array,
  at: number,
  h: GroupHeader,
  binding: number,
): number {
  const v = viewOf(out);
  v.setUint32(at, GROUP_MAGIC, true);
  v.setUint16(at + 4, FORMAT_VERSION, true);
  v.setUint8(at + 6, h.kind);
  v.setUint8(at + 7, 0);
  v.setUint32(at + 8, h.epoch, true);
  v.setUint32(at + 12, h.bodyBytes, true);
  v.setFloat64(at + 16, h.seq, true);
  v.setUint32(at + 24, h.frontierSegment, true);
  v.setUint32(at + 28, h.frontierEnd, true);
  v.setUint32(at + 32, h.frontierCrc, true);
  v.setUint32(at + 36, h.recordCount, true);
  v.setFloat64(at + 40, h.highDecree, true);
  v.setUint32(at + 48, h.bodyCrc, true);
  const crc = crc32c(out.subarray(at, at + GROUP_CRC_AT), binding);
  v.setUint32(at + GROUP_CRC_AT, crc, true);
  return crc;
}

/**
 * The group header at `at`, if its magic and CRC (bound to `binding`) are right (whatever its
 * version: the caller decides what an unknown version means), else null. Cheap rejection first:
 * most positions a search visits hold zeros, payload bytes or a recycled file's old groups.
 */
export function parseGroupHeader(
  bytes: Uint8Array,
  v: DataView,
  at: number,
  binding: number,
): ParsedGroupHeader | null {
  if (at + GROUP_HEADER_BYTES > bytes.length) return null;
  if (v.getUint32(at, true) !== GROUP_MAGIC) return null;
  const headerCrc = v.getUint32(at + GROUP_CRC_AT, true);
  if (headerCrc !== crc32c(bytes.subarray(at, at + GROUP_CRC_AT), binding)) return null;
  const seq = v.getFloat64(at + 16, true);
  const highDecree = v.getFloat64(at + 40, true);
  if (!isCount(seq) || !isCount(highDecree)) return null;
  return {
    version: v.getUint16(at + 4, true),
    kind: v.getUint8(at + 6),
    epoch: v.getUint32(at + 8, true),
    bodyBytes: v.getUint32(at + 12, true),
    seq,
    frontierSegment: v.getUint32(at + 24, true),
    frontierEnd: v.getUint32(at + 28, true),
    frontierCrc: v.getUint32(at + 32, true),
    recordCount: v.getUint32(at + 36, true),
    highDecree,
    bodyCrc: v.getUint32(at + 48, true),
    headerCrc,
  };
}

/** Bytes a group with `bodyBytes` of body occupies in its segment, padding included. */
export function groupSpanBytes(bodyBytes: number): number {
  return alignUp(GROUP_HEADER_BYTES + bodyBytes);
}

// ─── records ─────────────────────────────────────────────────────────────────────────────────

export function recordBytes(payloadBytes: number): number {
  return RECORD_HEADER_BYTES + payloadBytes;
}

/** Encodes one record at `at` in `out` (which must have room) and returns its CRC. */
export function encodeRecordAt(
  out: Uint8Array,
  v: DataView,
  at: number,
  type: number,
  decree: number,
  ballot: number,
  payload: Uint8Array,
): number {
  v.setUint32(at, payload.length, true);
  v.setUint8(at + 8, type);
  v.setFloat64(at + 9, decree, true);
  v.setFloat64(at + 17, ballot, true);
  out.set(payload, at + RECORD_HEADER_BYTES);
  const end = at + RECORD_HEADER_BYTES + payload.length;
  const crc = crc32c(out.subarray(at + 8, end), crc32c(out.subarray(at, at + 4)));
  v.setUint32(at + 4, crc, true);
  return crc;
}

/** A record as it lies in a buffer: the header fields and where its payload is. */
export interface RecordView {
  type: number;
  decree: number;
  ballot: number;
  payloadAt: number;
  payloadBytes: number;
  crc: number;
}

/**
 * Checks the record at `at`, which must end at or before `limit`; fills `into` and returns the
 * record's end, or -1 if it is not a valid record.
 */
export function checkRecordAt(
  bytes: Uint8Array,
  v: DataView,
  at: number,
  limit: number,
  into: RecordView,
): number {
  if (at + RECORD_HEADER_BYTES > limit) return -1;
  const payloadBytes = v.getUint32(at, true);
  const end = at + RECORD_HEADER_BYTES + payloadBytes;
  if (end > limit) return -1;
  const crc = v.getUint32(at + 4, true);
  if (crc !== crc32c(bytes.subarray(at + 8, end), crc32c(bytes.subarray(at, at + 4)))) return -1;
  const type = v.getUint8(at + 8);
  const decree = v.getFloat64(at + 9, true);
  const ballot = v.getFloat64(at + 17, true);
  if (type < RECORD_TYPE_MIN || !isCount(decree) || !isCount(ballot)) return -1;
  into.type = type;
  into.decree = decree;
  into.ballot = ballot;
  into.payloadAt = at + RECORD_HEADER_BYTES;
  into.payloadBytes = payloadBytes;
  into.crc = crc;
  return end;
}

/** Folds one record CRC into a running body CRC (the CRC of the CRC fields, little-endian). */
export function foldRecordCrc(bodyCrc: number, recordCrc: number, scratch4: Uint8Array): number {
  scratch4[0] = recordCrc & 0xff;
  scratch4[1] = (recordCrc >>> 8) & 0xff;
  scratch4[2] = (recordCrc >>> 16) & 0xff;
  scratch4[3] = recordCrc >>> 24;
  return crc32c(scratch4, bodyCrc);
}

// ─── metadata slots ──────────────────────────────────────────────────────────────────────────

export interface MetaState {
  /** Incremented by every metadata write; the valid slot with the highest wins. */
  readonly generation: number;
  /** Incremented at every open, durably, before the first new group. */
  readonly epoch: number;
  readonly firstSegment: number;
  /** Recovery verified and synced the log up to here: damage below it is corruption. */
  readonly floorSegment: number;
  readonly floorEnd: number;
  /** The high-water decree of the log at the floor. */
  readonly floorHighDecree: number;
}

export function encodeMetaSlot(m: MetaState): Uint8Array {
  const out = new Uint8Array(META_SLOT_BYTES);
  const v = viewOf(out);
  v.setUint32(0, META_MAGIC, true);
  v.setUint16(4, FORMAT_VERSION, true);
  v.setUint32(8, m.generation, true);
  v.setUint32(12, m.epoch, true);
  v.setUint32(16, m.floorSegment, true);
  v.setUint32(20, m.floorEnd, true);
  v.setFloat64(24, m.floorHighDecree, true);
  v.setUint32(32, m.firstSegment, true);
  v.setUint32(META_CRC_AT, crc32c(out.subarray(0, META_CRC_AT)), true);
  return out;
}

export type MetaSlotCheck =
  | { readonly ok: true; readonly meta: MetaState }
  | { readonly ok: false; readonly version: number | null };

export function decodeMetaSlot(bytes: Uint8Array): MetaSlotCheck {
  if (bytes.length < META_SLOT_BYTES) return { ok: false, version: null };
  const v = viewOf(bytes);
  if (v.getUint32(0, true) !== META_MAGIC) return { ok: false, version: null };
  if (v.getUint32(META_CRC_AT, true) !== crc32c(bytes.subarray(0, META_CRC_AT))) {
    return { ok: false, version: null };
  }
  const version = v.getUint16(4, true);
  if (version !== FORMAT_VERSION) return { ok: false, version };
  const floorHighDecree = v.getFloat64(24, true);
  if (!isCount(floorHighDecree)) return { ok: false, version: null };
  return {
    ok: true,
    meta: {
      generation: v.getUint32(8, true),
      epoch: v.getUint32(12, true),
      floorSegment: v.getUint32(16, true),
      floorEnd: v.getUint32(20, true),
      floorHighDecree,
      firstSegment: v.getUint32(32, true),
    },
  };
}

/** A safe integer >= 0: the domain of decrees, ballots, sequence numbers. */
export function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}
