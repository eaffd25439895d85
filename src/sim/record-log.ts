/**
 * RecordLog: the minimal durable, append-only record log the simulator uses until the segmented
 * log (src/log) replaces it. One file, `<dir>/records.log`, holds back-to-back frames:
 *
 *   +----------------+----------------------------------+-------------------+
 *   | length: u32 LE | crc: u32 LE = crc32c(length ‖ p) | payload p (length) |
 *   +----------------+----------------------------------+-------------------+
 *
 * The checksum covers the length field too, so a zero-filled hole (length 0, crc 0) is invalid.
 *
 * Invariants:
 *  - After `sync()` returns, every record appended before it is durable.
 *  - `recover` returns exactly the longest valid prefix of frames, truncates the file to it and
 *    makes it durable before any append, so new frames never follow garbage and a recovered
 *    record can never be lost by a later crash. In this crash model (torn or lost pages, no bit
 *    flips) everything before the last completed fdatasync is intact and only the tail past it
 *    may be damaged, so stopping at the first invalid frame loses nothing that was synced.
 *  - `bytes` is the file offset where the next frame goes; it only grows.
 *  - After a failed write or sync the log refuses further work: what reached the file is
 *    unknown, and only `recover` re-establishes a valid end.
 */
import type { FileLayer } from '../log/file-layer.js';
import { crc32c } from '../util/crc32c.js';

export const RECORD_FILE_NAME = 'records.log';
export const RECORD_HEADER_BYTES = 8;
/** Larger length fields are treated as damage; appending a larger payload is a caller bug. */
export const RECORD_PAYLOAD_BYTES_MAX = 16 * 1024 * 1024;
const SCRATCH_BYTES_INITIAL = 4096;

export interface RecoveredRecordLog {
  readonly log: RecordLog;
  /** Recovered payloads in append order (views into one buffer read at recovery). */
  readonly records: Uint8Array[];
  /** Bytes of damaged or partial tail that were cut off. */
  readonly tornBytes: number;
}

export class RecordLog {
  private fileBytes: number;
  /** Reused frame buffer: one copy of the payload per append, and one write call. */
  private scratch = new Uint8Array(SCRATCH_BYTES_INITIAL);
  private scratchView = new DataView(this.scratch.buffer);
  private failure: unknown = null;
  private closed = false;

  /** Private: only `recover` may create a log, because appending needs a validated end. */
  private constructor(
    private readonly fs: FileLayer,
    readonly dir: string,
    private readonly fd: number,
    fileBytes: number,
  ) {
    this.fileBytes = fileBytes;
  }

  /** Opens (creating if missing) the log in `dir`, cuts any torn tail, and makes it durable. */
  static recover(fs: FileLayer, dir: string): RecoveredRecordLog {
    fs.mkdirp(dir);
    const fd = fs.open(`${dir}/${RECORD_FILE_NAME}`, { create: true });
    try {
      // Whether just created or created before a crash without a directory sync, the entry must
      // be durable before anything written to the file can count.
      fs.fsyncDir(dir);
      const contents = readAll(fs, fd);
      const { records, validBytes } = parseFrames(contents);
      const tornBytes = contents.length - validBytes;
      if (tornBytes > 0) fs.truncate(fd, validBytes);
      // Sync even when nothing was torn: after a restart without power loss the bytes just read
      // may still be only in the page cache, yet callers will act on them as durable.
      fs.fdatasync(fd);
      return { log: new RecordLog(fs, dir, fd, validBytes), records, tornBytes };
    } catch (error) {
      fs.close(fd);
      throw error;
    }
  }

  /** File size in bytes: the offset of the next frame. */
  get bytes(): number {
    return this.fileBytes;
  }

  /** Writes one record at the end. It is in the page cache only until the next `sync()`. */
  append(payload: Uint8Array): void {
    this.checkUsable();
    assert(payload.length <= RECORD_PAYLOAD_BYTES_MAX, 'RecordLog.append: payload too large');
    const frameBytes = RECORD_HEADER_BYTES + payload.length;
    if (this.scratch.length < frameBytes) {
      this.scratch = new Uint8Array(Math.max(frameBytes, this.scratch.length * 2));
      this.scratchView = new DataView(this.scratch.buffer);
    }
    const frame = this.scratch.subarray(0, frameBytes);
    this.scratchView.setUint32(0, payload.length, true);
    frame.set(payload, RECORD_HEADER_BYTES);
    const crc = crc32c(payload, crc32c(frame.subarray(0, 4)));
    this.scratchView.setUint32(4, crc, true);
    try {
      this.fs.pwrite(this.fd, frame, this.fileBytes);
    } catch (error) {
      this.failure = error;
      throw error;
    }
    this.fileBytes += frameBytes;
  }

  /** Makes every appended record durable (fdatasync). */
  sync(): void {
    this.checkUsable();
    try {
      this.fs.fdatasync(this.fd);
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }

  close(): void {
    assert(!this.closed, 'RecordLog.close: already closed');
    this.closed = true;
    this.fs.close(this.fd);
  }

  private checkUsable(): void {
    assert(!this.closed, 'RecordLog: used after close');
    if (this.failure !== null) {
      throw new Error('RecordLog: an earlier write or sync failed; recover the log first', {
        cause: this.failure,
      });
    }
  }
}

function readAll(fs: FileLayer, fd: number): Uint8Array {
  const size = fs.size(fd);
  const contents = new Uint8Array(size);
  let got = 0;
  while (got < size) {
    const n = fs.read(fd, contents.subarray(got), size - got, got);
    if (n === 0) break;
    got += n;
  }
  assert(got === size, 'RecordLog: file shorter than its size while reading');
  return contents;
}

/** The longest prefix of valid frames in `contents`. */
function parseFrames(contents: Uint8Array): { records: Uint8Array[]; validBytes: number } {
  const view = new DataView(contents.buffer, contents.byteOffset, contents.byteLength);
  const records: Uint8Array[] = [];
  let offset = 0;
  while (contents.length - offset >= RECORD_HEADER_BYTES) {
    const length = view.getUint32(offset, true);
    const payloadStart = offset + RECORD_HEADER_BYTES;
    if (length > RECORD_PAYLOAD_BYTES_MAX || length > contents.length - payloadStart) break;
    const payload = contents.subarray(payloadStart, payloadStart + length);
    const crc = crc32c(payload, crc32c(contents.subarray(offset, offset + 4)));
    if (crc !== view.getUint32(offset + 4, true)) break;
    records.push(payload);
    offset = payloadStart + length;
  }
  return { records, validBytes: offset };
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Out of line so the passing branch of `assert` stays tiny on the append path. */
function fail(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
