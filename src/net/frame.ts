/**
 * Framing of the replica-to-replica byte stream, and the hello that opens each connection.
 *
 *   frame, little-endian:
 *   ┌────────────┬────────────┬────────────┬────────────────┬────────────┬─────────────────┐
 *   │ u32 length │ u32 crc32c │ u8 version │ u32 clusterTag │ u32 config │ payload …       │
 *   └────────────┴────────────┴────────────┴────────────────┴────────────┴─────────────────┘
 *     0            4            8            9                13           17 = FRAME_HEADER_BYTES
 *
 *  - length: bytes after the length field (crc + header rest + payload), so a frame occupies
 *    4 + length bytes and length ≥ FRAME_LENGTH_MIN (an empty payload).
 *  - crc32c: CRC-32C (src/util/crc32c.ts) of bytes [8, 4 + length): everything after it.
 *  - version: PROTOCOL_VERSION; clusterTag: crc32c of the UTF-8 cluster id (clusterTag()); config:
 *    the sender's configuration number. The receiver checks these (peer-transport.ts), the
 *    decoder does not: a frame with a foreign tag is well formed, just not for us.
 *  - payload: one encoded Message (message-codec.ts), or a Hello for the first frame of a
 *    connection (layout below).
 *
 * FrameDecoder invariants:
 *  - Takes chunks of any size (a byte, part of a frame, many frames) and returns the complete
 *    frames in order; bytes of an incomplete frame are kept until the rest arrives.
 *  - A length outside [FRAME_LENGTH_MIN, frameBytesMax - 4] is rejected as soon as the length
 *    field is complete, before anything is buffered, so a peer cannot make it allocate more than
 *    frameBytesMax. A checksum mismatch is rejected when the frame is complete. Both throw
 *    NetError PAXLINE_BAD_FRAME, after which the decoder refuses further input (the stream has
 *    lost its frame boundaries; the caller closes the connection).
 *  - Buffers are never reused: a returned frame's payload is a view either into the chunk it
 *    arrived in (when the whole frame was in one chunk — the common case, no copy) or into a
 *    buffer allocated for that one frame. Views taken from a payload (decoded commands) stay
 *    valid as long as the caller does not overwrite the chunks it pushed; socket chunks are fresh
 *    buffers per read, so they never are.
 */
import { crc32c } from '../util/crc32c.js';
import { badArgument, badFrame } from './net-error.js';

export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 17;
/** Smallest legal length field: crc + version + tag + config, empty payload. */
export const FRAME_LENGTH_MIN = FRAME_HEADER_BYTES - 4;
/** Largest frame (including its length field) the decoder accepts until told otherwise. */
export const FRAME_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;
/** Largest frameBytesMax anyone may configure (1 GiB: far above any sane batch). */
export const FRAME_BYTES_MAX_LIMIT = 1024 * 1024 * 1024;

const U32_MAX = 0xffffffff;

export interface FrameHeader {
  readonly version: number;
  readonly clusterTag: number;
  readonly config: number;
}

export interface Frame extends FrameHeader {
  /** View of the payload bytes (see the zero-copy note in the file header). */
  readonly payload: Uint8Array;
  /** Bytes the whole frame occupied on the wire, length field included. */
  readonly frameBytes: number;
}

const utf8 = new TextEncoder();

/** The 32-bit tag of a cluster id: crc32c of its UTF-8 bytes. */
export function clusterTag(clusterId: string): number {
  return crc32c(utf8.encode(clusterId));
}

function checkU32(n: number, field: string): void {
  if (!(Number.isInteger(n) && n >= 0 && n <= U32_MAX)) badArgument(field, 'is not a u32');
}

/**
 * Fills in the header of `frame`, whose payload is already written at FRAME_HEADER_BYTES, and
 * computes its checksum. `frame` is exactly the frame (its length sets the length field).
 */
export function sealFrame(frame: Uint8Array, h: FrameHeader): void {
  checkU32(h.clusterTag, 'clusterTag');
  checkU32(h.config, 'config');
  if (!(Number.isInteger(h.version) && h.version >= 0 && h.version <= 0xff)) {
    badArgument('version', 'is not a u8');
  }
  if (frame.length < FRAME_HEADER_BYTES || frame.length - 4 > U32_MAX) {
    badArgument('frame', `length ${frame.length} cannot be framed`);
  }
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  dv.setUint32(0, frame.length - 4, true);
  frame[8] = h.version;
  dv.setUint32(9, h.clusterTag, true);
  dv.setUint32(13, h.config, true);
  const checked = new Uint8Array(frame.buffer, frame.byteOffset + 8, frame.length - 8);
  dv.setUint32(4, crc32c(checked), true);
}

/** Frames a payload (a copy). The transport instead writes messages straight into the frame. */
export function encodeFrame(h: FrameHeader, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  sealFrame(frame, h);
  return frame;
}

/** Checks the checksum of one complete frame and returns its parts (payload is a view). */
function parseFrame(bytes: Uint8Array): Frame {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stored = dv.getUint32(4, true);
  const actual = crc32c(new Uint8Array(bytes.buffer, bytes.byteOffset + 8, bytes.length - 8));
  if (stored !== actual) badFrame('frame checksum mismatch');
  return {
    version: bytes[8]!,
    clusterTag: dv.getUint32(9, true),
    config: dv.getUint32(13, true),
    payload: new Uint8Array(
      bytes.buffer,
      bytes.byteOffset + FRAME_HEADER_BYTES,
      bytes.length - FRAME_HEADER_BYTES,
    ),
    frameBytes: bytes.length,
  };
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/** Streaming frame decoder for one connection; see the invariants in the file header. */
export class FrameDecoder {
  private frameBytesMax: number;
  /** Length field bytes collected while it straddles chunks. */
  private readonly lengthBytes = new Uint8Array(4);
  private lengthFilled = 0;
  /** The frame being assembled across chunks (exact size), or null. */
  private partial: Uint8Array | null = null;
  private partialFilled = 0;
  private failed = false;

  constructor(frameBytesMax: number = FRAME_BYTES_MAX_DEFAULT) {
    this.frameBytesMax = FrameDecoder.checkMax(frameBytesMax);
  }

  private static checkMax(n: number): number {
    if (!(Number.isInteger(n) && n >= FRAME_HEADER_BYTES && n <= FRAME_BYTES_MAX_LIMIT)) {
      const range = `[${FRAME_HEADER_BYTES}, ${FRAME_BYTES_MAX_LIMIT}]`;
      badArgument('frameBytesMax', `must be an integer in ${range}`);
    }
    return n;
  }

  /** Changes the size limit for frames whose length field has not been read yet. */
  setFrameBytesMax(n: number): void {
    this.frameBytesMax = FrameDecoder.checkMax(n);
  }

  /** Bytes held of an incomplete frame. */
  bufferedBytes(): number {
    return this.partial === null ? this.lengthFilled : this.partialFilled;
  }

  /** Feeds one chunk; returns the frames it completed, in order. Throws PAXLINE_BAD_FRAME. */
  push(chunk: Uint8Array): Frame[] {
    if (this.failed) badFrame('decoder already failed on this stream');
    try {
      return this.pushUnchecked(chunk);
    } catch (error) {
      this.failed = true;
      this.partial = null;
      throw error;
    }
  }

  private pushUnchecked(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    const n = chunk.length;
    let at = 0;
    while (at < n) {
      if (this.partial === null) {
        if (this.lengthFilled === 0 && n - at >= 4) {
          // Fast path: the length field is here; if the whole frame is too, take a view.
          const total = this.frameTotal(readU32(chunk, at));
          if (n - at >= total) {
            frames.push(parseFrame(new Uint8Array(chunk.buffer, chunk.byteOffset + at, total)));
            at += total;
            continue;
          }
          this.partial = new Uint8Array(total);
          this.partialFilled = 0;
        } else {
          while (this.lengthFilled < 4 && at < n) {
            this.lengthBytes[this.lengthFilled++] = chunk[at++]!;
          }
          if (this.lengthFilled < 4) break;
          const lb = this.lengthBytes;
          const total = this.frameTotal(readU32(lb, 0));
          this.partial = new Uint8Array(total);
          this.partial.set(lb, 0);
          this.partialFilled = 4;
          this.lengthFilled = 0;
        }
      }
      const partial = this.partial;
      const take = Math.min(partial.length - this.partialFilled, n - at);
      partial.set(new Uint8Array(chunk.buffer, chunk.byteOffset + at, take), this.partialFilled);
      this.partialFilled += take;
      at += take;
      if (this.partialFilled === partial.length) {
        this.partial = null;
        this.partialFilled = 0;
        frames.push(parseFrame(partial));
      }
    }
    return frames;
  }

  /** Validates a length field; returns the whole frame's size. */
  private frameTotal(length: number): number {
    if (length < FRAME_LENGTH_MIN) badFrame(`frame length ${length} below the minimum`);
    if (length + 4 > this.frameBytesMax) {
      badFrame(`frame of ${length + 4} bytes exceeds frameBytesMax ${this.frameBytesMax}`);
    }
    return length + 4;
  }
}

// ---------------------------------------------------------------------------------------------
// Hello: the payload of the first frame on every dialed connection.
//
//   u8 HELLO_TAG | u32 replicaId | f64 incarnation | u16 clusterIdBytes | clusterId (UTF-8)
//
// The frame header around it carries the protocol version, the cluster tag and the dialer's
// configuration number. HELLO_TAG is outside the message tags, so a hello where a message should
// be (or the reverse) is a bad frame.

export const HELLO_TAG = 0xf0;
/** Longest cluster id, in UTF-8 bytes. */
export const CLUSTER_ID_BYTES_MAX = 1024;
/** Frame limit before the hello is accepted: a stranger cannot make us buffer more. */
export const HELLO_FRAME_BYTES_MAX = FRAME_HEADER_BYTES + 15 + CLUSTER_ID_BYTES_MAX;

export interface Hello {
  readonly replicaId: number;
  readonly incarnation: number;
  readonly clusterId: string;
}

export function encodeHello(h: Hello): Uint8Array {
  checkU32(h.replicaId, 'replicaId');
  if (!(Number.isSafeInteger(h.incarnation) && h.incarnation >= 0)) {
    badArgument('incarnation', 'is not a non-negative safe integer');
  }
  const id = utf8.encode(h.clusterId);
  if (id.length > CLUSTER_ID_BYTES_MAX) badArgument('clusterId', 'is too long');
  const out = new Uint8Array(15 + id.length);
  const dv = new DataView(out.buffer);
  out[0] = HELLO_TAG;
  dv.setUint32(1, h.replicaId, true);
  dv.setFloat64(5, h.incarnation, true);
  dv.setUint16(13, id.length, true);
  out.set(id, 15);
  return out;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/** Decodes a hello payload; throws PAXLINE_BAD_FRAME if malformed. */
export function decodeHello(bytes: Uint8Array): Hello {
  if (bytes.length < 15 || bytes[0] !== HELLO_TAG) badFrame('not a hello');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const replicaId = dv.getUint32(1, true);
  const incarnation = dv.getFloat64(5, true);
  if (!(Number.isSafeInteger(incarnation) && incarnation >= 0)) badFrame('hello incarnation');
  const idBytes = dv.getUint16(13, true);
  if (bytes.length !== 15 + idBytes) badFrame('hello length');
  let clusterId: string;
  try {
    clusterId = utf8Strict.decode(bytes.subarray(15));
  } catch {
    return badFrame('hello cluster id is not UTF-8');
  }
  return { replicaId, incarnation, clusterId };
}
