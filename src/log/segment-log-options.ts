/**
 * Options of the segmented log: documented with units and defaults, validated once into a frozen
 * resolved object; a bad value gets a LogError (PAXLINE_INVALID_OPTION) whose `field` names it.
 */
import { LogError } from './log-error.js';
import {
  GROUP_BODY_BYTES_MAX_DEFAULT,
  GROUP_HEADER_BYTES,
  PREALLOC_AHEAD_BYTES_DEFAULT,
  PREALLOC_CHUNK_BYTES_DEFAULT,
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_BYTES_MAX_DEFAULT,
  RECYCLE_SEGMENTS_DEFAULT,
  RECYCLE_SEGMENTS_MAX,
  SEGMENT_BYTES_DEFAULT,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
  SEGMENT_BYTES_MULTIPLE,
  ZERO_BUFFER_BYTES,
  segmentGroupBytesMax,
} from './segment-limits.js';

export interface SegmentLogOptions {
  /** Size of each segment file, bytes. Default 64 MiB; 4 KiB..1 GiB, a multiple of 4096. */
  readonly segmentBytes?: number;
  /**
   * Largest group body, bytes: one sync writes more than this as several groups. A single record
   * larger than this still goes alone in one group. Default min(4 MiB, what fits a segment).
   */
  readonly groupBodyBytesMax?: number;
  /** Zeros written per preallocation write, bytes. Default min(1 MiB, segmentBytes). */
  readonly preallocChunkBytes?: number;
  /** Keep at least this many zeroed bytes ahead of the write position. Default min(4 MiB, …). */
  readonly preallocAheadBytes?: number;
  /**
   * Preallocate at the end of each successful `sync()` (after the durable position advanced).
   * Set false when the caller runs `preallocate()` itself once it has published durability.
   * Default true.
   */
  readonly preallocOnSync?: boolean;
  /** Largest record payload accepted by append, bytes. Default min(16 MiB, what fits a group). */
  readonly recordPayloadBytesMax?: number;
  /**
   * On corruption: 'report' opens the log and describes the damage in the report (the caller
   * repairs from peers); 'refuse' throws PAXLINE_LOG_CORRUPT without changing anything.
   * Default 'report'.
   */
  readonly onCorruption?: 'report' | 'refuse';
  /**
   * Retired segment files kept as free files (renamed `free-NNNNNNNN.plog`) instead of being
   * deleted, up to this many; a rollover then reuses one (already allocated: no zero-fill, and
   * no file extension on the fdatasync path) instead of creating a file. Only files of exactly
   * `segmentBytes` are kept. 0 deletes retired segments. Default 2; 0..64.
   */
  readonly recycleSegments?: number;
  /**
   * At open, return only records whose decree is 0 (promises) or >= this (e.g. the decree after
   * the newest checkpoint): the others are verified and indexed (readRecords finds them) but
   * their payloads are not copied into memory. Default 0: every record.
   */
  readonly keepRecordsFromDecree?: number;
  /**
   * Where open keeps the payloads it returns. 'auto': in memory pre-faulted by a helper thread
   * when at least RECOVERY_PREFAULT_BYTES_MIN (256 MiB) of log is left to scan at the first kept
   * payload, copying into fresh memory whenever the helper is not ready; 'never': always fresh
   * memory, no thread; 'always': start the helper at the first kept payload whatever the size,
   * and wait for its memory rather than copy (tests and measurements). The records and the
   * verdicts are the same in every mode. Default 'auto'.
   */
  readonly recoveryPrefault?: RecoveryPrefault;
  /**
   * Rollover spread: a segment takes a group that does not start it only up to
   * segmentBytes − d, with d in [0, rolloverSpreadBytes] (a multiple of 8) drawn from
   * (rolloverSeed, segment number) by a fixed hash — so logs with different seeds roll over at
   * different points of the same records. Replicas writing the same log on one disk would
   * otherwise all roll over within milliseconds, and a rollover (header fdatasync, rename,
   * directory fsync) stalls each of them at once, a quorum included. The first group of a
   * segment is always taken, so whatever fits a segment still does. Preallocation runs d further
   * ahead, so a fresh segment file is still zeroed to its full size (and can be reused). Recovery
   * needs nothing: a segment ends where its groups end. Default 0 (every segment filled to its
   * end); 0..segmentBytes / 2.
   */
  readonly rolloverSpreadBytes?: number;
  /** See rolloverSpreadBytes (e.g. the replica id). Default 0; 0..2^32 − 1. */
  readonly rolloverSeed?: number;
}

export type RecoveryPrefault = 'auto' | 'never' | 'always';

export interface ResolvedSegmentLogOptions {
  readonly segmentBytes: number;
  readonly groupBodyBytesMax: number;
  readonly preallocChunkBytes: number;
  readonly preallocAheadBytes: number;
  readonly preallocOnSync: boolean;
  readonly recordPayloadBytesMax: number;
  readonly onCorruption: 'report' | 'refuse';
  readonly recycleSegments: number;
  readonly keepRecordsFromDecree: number;
  readonly recoveryPrefault: RecoveryPrefault;
  readonly rolloverSpreadBytes: number;
  readonly rolloverSeed: number;
}

/**
 * How far short of `segmentBytes` segment `segment` stops taking groups (see
 * SegmentLogOptions.rolloverSpreadBytes): a multiple of 8 in [0, spreadBytes], from a fixed
 * 32-bit mix of the seed and the segment number.
 */
export function rolloverShortfall(seed: number, segment: number, spreadBytes: number): number {
  if (spreadBytes < 8) return 0;
  let h = Math.imul((seed | 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(segment | 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return ((h >>> 0) % (Math.floor(spreadBytes / 8) + 1)) * 8;
}

function invalid(field: string, message: string): LogError {
  return new LogError('PAXLINE_INVALID_OPTION', `options.${field}: ${message}`, { field });
}

function integerIn(field: string, value: number, lo: number, hi: number): number {
  if (!Number.isSafeInteger(value) || value < lo || value > hi) {
    throw invalid(field, `must be an integer in [${lo}, ${hi}], got ${String(value)}`);
  }
  return value;
}

export function resolveSegmentLogOptions(
  options: SegmentLogOptions = {},
): ResolvedSegmentLogOptions {
  if (typeof options !== 'object' || options === null) {
    throw new LogError('PAXLINE_INVALID_OPTION', 'options must be an object', { field: 'options' });
  }
  const segmentBytes = integerIn(
    'segmentBytes',
    options.segmentBytes ?? SEGMENT_BYTES_DEFAULT,
    SEGMENT_BYTES_MIN,
    SEGMENT_BYTES_MAX,
  );
  if (segmentBytes % SEGMENT_BYTES_MULTIPLE !== 0) {
    const multiple = `must be a multiple of ${SEGMENT_BYTES_MULTIPLE}`;
    throw invalid('segmentBytes', `${multiple}, got ${segmentBytes}`);
  }
  const bodyFit = segmentGroupBytesMax(segmentBytes) - GROUP_HEADER_BYTES;
  const groupBodyBytesMax = integerIn(
    'groupBodyBytesMax',
    options.groupBodyBytesMax ?? Math.min(GROUP_BODY_BYTES_MAX_DEFAULT, bodyFit),
    RECORD_HEADER_BYTES,
    bodyFit,
  );
  const preallocChunkBytes = integerIn(
    'preallocChunkBytes',
    options.preallocChunkBytes ?? Math.min(PREALLOC_CHUNK_BYTES_DEFAULT, segmentBytes),
    SEGMENT_BYTES_MULTIPLE,
    Math.min(ZERO_BUFFER_BYTES, segmentBytes),
  );
  const preallocAheadBytes = integerIn(
    'preallocAheadBytes',
    options.preallocAheadBytes ?? Math.min(PREALLOC_AHEAD_BYTES_DEFAULT, segmentBytes),
    0,
    segmentBytes,
  );
  const preallocOnSync = options.preallocOnSync ?? true;
  if (typeof preallocOnSync !== 'boolean') throw invalid('preallocOnSync', 'must be a boolean');
  const payloadFit = bodyFit - RECORD_HEADER_BYTES;
  const recordPayloadBytesMax = integerIn(
    'recordPayloadBytesMax',
    options.recordPayloadBytesMax ?? Math.min(RECORD_PAYLOAD_BYTES_MAX_DEFAULT, payloadFit),
    0,
    payloadFit,
  );
  const onCorruption = options.onCorruption ?? 'report';
  if (onCorruption !== 'report' && onCorruption !== 'refuse') {
    throw invalid('onCorruption', `must be 'report' or 'refuse', got ${String(onCorruption)}`);
  }
  const recycleSegments = integerIn(
    'recycleSegments',
    options.recycleSegments ?? RECYCLE_SEGMENTS_DEFAULT,
    0,
    RECYCLE_SEGMENTS_MAX,
  );
  const keepRecordsFromDecree = integerIn(
    'keepRecordsFromDecree',
    options.keepRecordsFromDecree ?? 0,
    0,
    Number.MAX_SAFE_INTEGER,
  );
  const recoveryPrefault = options.recoveryPrefault ?? 'auto';
  if (!['auto', 'never', 'always'].includes(recoveryPrefault)) {
    const got = String(recoveryPrefault);
    throw invalid('recoveryPrefault', `must be 'auto', 'never' or 'always', got ${got}`);
  }
  const rolloverSpreadBytes = integerIn(
    'rolloverSpreadBytes',
    options.rolloverSpreadBytes ?? 0,
    0,
    segmentBytes / 2,
  );
  const rolloverSeed = integerIn('rolloverSeed', options.rolloverSeed ?? 0, 0, 0xffffffff);
  return Object.freeze({
    segmentBytes,
    groupBodyBytesMax,
    preallocChunkBytes,
    preallocAheadBytes,
    preallocOnSync,
    recordPayloadBytesMax,
    onCorruption,
    recycleSegments,
    keepRecordsFromDecree,
    recoveryPrefault,
    rolloverSpreadBytes,
    rolloverSeed,
  });
}
