/**
 * Every bound of the segmented log in one place, with the relationships between them asserted at
 * load time (TigerBeetle style): a change that breaks one fails on import, not in production.
 *
 * Units are in the names. Offsets inside a segment are stored as u32 on disk, and a record's
 * location is packed into one safe integer as `segment * 2^31 + offset`, which is why segment
 * sizes stay below 2^31 and segment numbers below 2^22 (2^22 · 2^31 = 2^53).
 */

/** Bytes of the header at the start of every segment file. */
export const SEGMENT_HEADER_BYTES = 32;
/** Bytes of a group header. */
export const GROUP_HEADER_BYTES = 56;
/** Bytes of a record header (length, crc, type, decree, ballot). */
export const RECORD_HEADER_BYTES = 25;
/** Groups start at multiples of this, so recovery can search for headers after damage. */
export const GROUP_ALIGN_BYTES = 8;
/** Where the first group of a segment starts. */
export const FIRST_GROUP_OFFSET = SEGMENT_HEADER_BYTES;

export const SEGMENT_BYTES_DEFAULT = 64 * 1024 * 1024;
export const SEGMENT_BYTES_MIN = 4096;
export const SEGMENT_BYTES_MAX = 1024 * 1024 * 1024;
/** Segment sizes are whole pages, so preallocation and page-granular crash damage line up. */
export const SEGMENT_BYTES_MULTIPLE = 4096;
/** Segment numbers are 1-based; file names have 8 digits. */
export const SEGMENT_NUMBER_MAX = 2 ** 22 - 1;

export const GROUP_BODY_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;
export const PREALLOC_CHUNK_BYTES_DEFAULT = 1024 * 1024;
export const PREALLOC_AHEAD_BYTES_DEFAULT = 4 * 1024 * 1024;
export const RECORD_PAYLOAD_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

/** Retired segment files kept for reuse by default, and at most (see recycleSegments). */
export const RECYCLE_SEGMENTS_DEFAULT = 2;
export const RECYCLE_SEGMENTS_MAX = 64;

/** Record types are u8; 0 is reserved so that zero-filled bytes never look like a record. */
export const RECORD_TYPE_MIN = 1;
export const RECORD_TYPE_MAX = 255;

/** The metadata file holds two slots, each in its own 512-byte sector (a torn write hits one). */
export const META_SLOT_BYTES = 64;
export const META_SLOT_STRIDE_BYTES = 512;
export const META_FILE_BYTES = 2 * META_SLOT_STRIDE_BYTES;

/** The largest zero-fill write, and the size of the shared zero buffer. */
export const ZERO_BUFFER_BYTES = 1024 * 1024;

/** The page size first touches fault in (recovery's helper touches one byte per page). */
export const PAGE_BYTES = 4096;
/**
 * Recovery keeps payloads in memory pre-faulted by a helper thread (recovery-arenas.ts) when the
 * bytes left to scan at the first kept payload are at least this many: below it, starting a
 * thread (tens of milliseconds) costs about what it saves.
 */
export const RECOVERY_PREFAULT_BYTES_MIN = 256 * 1024 * 1024;
/** Bytes of one pre-faulted arena: 16 default-sized groups, so a group's leftover is ≤ 1/16. */
export const ARENA_BYTES = 64 * 1024 * 1024;
/** Bytes of the helper's first arena (then doubling up to ARENA_BYTES): sooner ready. */
export const ARENA_BYTES_FIRST = 16 * 1024 * 1024;
/** Arenas the helper keeps ready ahead of the scan. */
export const ARENAS_AHEAD = 2;
/** A scan that waits for arenas (recoveryPrefault 'always') gives up on the helper after this. */
export const ARENA_WAIT_MS_MAX = 2000;

/** 2^31: multiplier packing (segment, offset) into one safe integer. */
export const LOCATION_SEGMENT_FACTOR = 2 ** 31;

/** Capacity for group bytes (header + body) in one segment of `segmentBytes`. */
export function segmentGroupBytesMax(segmentBytes: number): number {
  return segmentBytes - FIRST_GROUP_OFFSET;
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`assertion failed: segment-limits: ${what}`);
}

check(SEGMENT_HEADER_BYTES % GROUP_ALIGN_BYTES === 0, 'segment header keeps groups aligned');
check(GROUP_HEADER_BYTES % GROUP_ALIGN_BYTES === 0, 'group header is a multiple of the alignment');
check(SEGMENT_BYTES_MULTIPLE % GROUP_ALIGN_BYTES === 0, 'segment size keeps groups aligned');
check(SEGMENT_BYTES_MAX < LOCATION_SEGMENT_FACTOR, 'offsets fit the packed location');
check(SEGMENT_NUMBER_MAX * LOCATION_SEGMENT_FACTOR < Number.MAX_SAFE_INTEGER, 'locations are safe');
check(SEGMENT_BYTES_MAX <= 0xffffffff, 'offsets fit u32 on disk');
check(
  SEGMENT_BYTES_MIN >= FIRST_GROUP_OFFSET + 2 * (GROUP_HEADER_BYTES + RECORD_HEADER_BYTES),
  'the smallest segment holds a few groups',
);
check(META_SLOT_BYTES <= META_SLOT_STRIDE_BYTES, 'a meta slot fits its sector');
check(GROUP_BODY_BYTES_MAX_DEFAULT < SEGMENT_BYTES_DEFAULT, 'default groups fit default segments');
check(PREALLOC_CHUNK_BYTES_DEFAULT <= ZERO_BUFFER_BYTES, 'prealloc chunks fit the zero buffer');
check(ARENA_BYTES % PAGE_BYTES === 0, 'arenas are whole pages');
check(ARENA_BYTES_FIRST % PAGE_BYTES === 0 && ARENA_BYTES_FIRST <= ARENA_BYTES, 'first arena');
check(ARENA_BYTES >= 16 * GROUP_BODY_BYTES_MAX_DEFAULT, 'an arena holds 16 default groups');
check(RECOVERY_PREFAULT_BYTES_MIN >= ARENAS_AHEAD * ARENA_BYTES, 'the helper pays for its arenas');
