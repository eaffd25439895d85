/**
 * Checkpoints: the state machine's `saveState` stream, stored in checksummed blocks so that
 * recovery can load the newest checkpoint it can prove intact and fall back to an older one when
 * it cannot (RSL semantics: also when `loadState` declines).
 *
 * Write protocol (crash-safe): blocks → `<name>.tmp` → trailer, then header at offset 0 (the
 * header holds totals known only at the end) → fdatasync → read back and verify → rename to
 * `<name>` → fsync the directory. A file appears under its final name only after its content was
 * durable, so after any crash a `ckpt-*.pcp` file is either complete and valid or absent; a torn
 * `.tmp` is removed at the next open. Nothing may rely on a checkpoint (e.g. retention deleting
 * the logs before it) until `writeCheckpoint` has returned.
 *
 * File `ckpt-<decree as 16 decimal digits>.pcp`, all integers little-endian, m = member count,
 * B = block size, H = header bytes = 64 + 4·m, Lᵢ = data bytes of block i:
 *
 *   0            H            H+8+B        H+2(8+B)                      end-28       end
 *   +------------+------------+------------+-----   ...   ---+-----------+-----------+
 *   | header     | block 0    | block 1    |                 | block n-1 | trailer   |
 *   +------------+------------+------------+-----   ...   ---+-----------+-----------+
 *
 *   header (H = 64 + 4·m bytes)          block i, at H + i·(8+B)      trailer (28 bytes)
 *   +-----+-----+----------------------+  +---+----+-----------------+  +----+---+--------------+
 *   |   0 |   8 | magic "PAXLCKPT"     |  | 0 |  4 | length Lᵢ       |  |  0 | 8 | "PAXLCEND"   |
 *   |   8 |   4 | version = 1          |  | 4 |  4 | crc32c(i ‖ Lᵢ ‖ |  |  8 | 8 | data bytes   |
 *   |  12 |   4 | header bytes H       |  |   |    |        data)    |  | 16 | 4 | block count  |
 *   |  16 |   8 | decree               |  | 8 | Lᵢ | data            |  | 20 | 4 | header crc   |
 *   |  24 |   8 | ballot               |  +---+----+-----------------+  | 24 | 4 | crc32c(0..24)|
 *   |  32 |   8 | configuration number |                                +----+---+--------------+
 *   |  40 |   8 | data bytes           |
 *   |  48 |   4 | block size B         |  Every block but the last holds exactly B bytes, the
 *   |  52 |   4 | block count n        |  last 1..B; n = ceil(data bytes / B), 0 for an empty
 *   |  56 |   4 | member count m       |  state, so block offsets are computable (resumable
 *   |  60 | 4·m | member ids (u32)     |  transfer). The block CRC covers its index and length,
 *   | H-4 |   4 | crc32c(0..H-4)       |  so a block moved or repeated within the file fails.
 *   +-----+-----+----------------------+
 *
 * Invariants:
 *  - The file is exactly H + 8·n + data bytes + 28 long; a shorter one is truncated, a longer one
 *    damaged. The trailer repeats the totals and the header CRC, so a file cut anywhere fails.
 *  - A checkpoint is handed to `load` only after every CRC verified; blocks are checked again as
 *    `load` streams them, and a late failure also falls back to an older checkpoint.
 *  - Errors name the file and byte offset: PAXLINE_CHECKPOINT_CORRUPT (damage, truncation, bad
 *    magic), PAXLINE_CHECKPOINT_VERSION (a format this build does not read), and when writing
 *    PAXLINE_DISK_FULL, PAXLINE_FSYNC_FAILED or PAXLINE_WRITE_FAILED.
 */
import { assert } from '../core/assert.js';
import { crc32c } from '../util/crc32c.js';
import type { FileLayer } from './file-layer.js';
import {
  StorageError,
  bestEffort,
  getU64,
  isCount,
  isSystemError,
  joinPath,
  guardWrite,
  mapWriteError,
  setU64,
} from './checkpoint-support.js';

export const CHECKPOINT_VERSION = 1;
/** RSL's block size. */
export const CHECKPOINT_BLOCK_BYTES_DEFAULT = 4 * 1024 * 1024;
export const CHECKPOINT_BLOCK_BYTES_MAX = 64 * 1024 * 1024;
export const CHECKPOINT_MEMBERS_MAX = 1024;
export const CHECKPOINT_TRAILER_BYTES = 28;
export const CHECKPOINT_BLOCK_FRAME_BYTES = 8;
const HEADER_FIXED_BYTES = 64; // header bytes with no members, CRC included
const FRAME = CHECKPOINT_BLOCK_FRAME_BYTES;
const MAGIC = asciiBytes('PAXLCKPT');
const TRAILER_MAGIC = asciiBytes('PAXLCEND');
const NAME_PATTERN = /^ckpt-(\d{16})\.pcp$/;
const TEMP_PATTERN = /^ckpt-\d{16}\.pcp\.tmp$/;
const DECREE_DIGITS = 16;

/** What the caller says a checkpoint is: the state after executing `decree`. */
export interface CheckpointMeta {
  readonly decree: number;
  /** Ballot under which `decree` was chosen (0 = none). */
  readonly ballot: number;
  readonly configNumber: number;
  /** Replica ids of the configuration in effect after `decree`. */
  readonly members: readonly number[];
}

/** A verified checkpoint file. */
export interface CheckpointInfo extends CheckpointMeta {
  readonly name: string;
  readonly path: string;
  readonly dataBytes: number;
  readonly blockBytes: number;
  readonly blockCount: number;
  readonly fileBytes: number;
}

/** A checkpoint file found by name (not yet verified). */
export interface CheckpointFile {
  readonly name: string;
  readonly path: string;
  readonly decree: number;
}

export interface CheckpointWriter {
  /** Appends `bytes` to the stream (copied; the caller may reuse its buffer at once). */
  write(bytes: Uint8Array): void;
  readonly bytesWritten: number;
}

export interface CheckpointReader {
  /**
   * The next 1..maxBytes bytes of the stream, or null at its end. The result is a view of a
   * buffer that is never reused, so it stays valid. Throws PAXLINE_CHECKPOINT_CORRUPT if a block
   * fails its CRC (the caller then falls back to an older checkpoint).
   */
  read(maxBytes: number): Uint8Array | null;
  readonly bytesRemaining: number;
}

export interface CheckpointWriteOptions {
  /** Data bytes per checksummed block; default 4 MiB (RSL), 1..64 MiB. */
  readonly blockBytes?: number;
  /** Read the file back and verify it before the rename (RSL does); default true. */
  readonly verifyAfterWrite?: boolean;
}

export type CheckpointSkipReason = 'corrupt' | 'version' | 'declined';

export interface CheckpointSkip {
  readonly name: string;
  readonly decree: number;
  readonly reason: CheckpointSkipReason;
  /** The verification error (null when `load` declined). */
  readonly error: StorageError | null;
}

export interface OpenCheckpointResult {
  /** The checkpoint `load` accepted, or null when none did (or none exists). */
  readonly loaded: CheckpointInfo | null;
  /** Newer checkpoints passed over, newest first, with the reason. */
  readonly skipped: readonly CheckpointSkip[];
  /** Leftover `.tmp` files (interrupted writes) that were removed. */
  readonly removedTempFiles: readonly string[];
}

/** `load` returns false to decline a checkpoint (an older one is tried next). */
export type CheckpointLoad = (reader: CheckpointReader, info: CheckpointInfo) => boolean;

export function checkpointFileName(decree: number): string {
  assert(isCount(decree), 'checkpoint decree must be a safe non-negative integer');
  return `ckpt-${String(decree).padStart(DECREE_DIGITS, '0')}.pcp`;
}

/** The decree named by a checkpoint file name, or null if `name` is not one. */
export function parseCheckpointFileName(name: string): number | null {
  const match = NAME_PATTERN.exec(name);
  if (match === null) return null;
  const decree = Number(match[1]);
  return Number.isSafeInteger(decree) ? decree : null;
}

/** Checkpoint files in `dir` by name, oldest decree first; nothing is opened or verified. */
export function listCheckpoints(fs: FileLayer, dir: string): CheckpointFile[] {
  const found: CheckpointFile[] = [];
  for (const name of fs.readdir(dir)) {
    const decree = parseCheckpointFileName(name);
    if (decree !== null) found.push({ name, path: joinPath(dir, name), decree });
  }
  return found.sort((a, b) => a.decree - b.decree);
}

/** Removes `.tmp` files left by interrupted writes (then syncs the directory); returns names. */
export function removeCheckpointTempFiles(fs: FileLayer, dir: string): string[] {
  const removed = fs.readdir(dir).filter((name) => TEMP_PATTERN.test(name));
  for (const name of removed) {
    const path = joinPath(dir, name);
    guardWrite(() => fs.unlink(path), 'unlink', path);
  }
  if (removed.length > 0) guardWrite(() => fs.fsyncDir(dir), 'fsyncDir', dir);
  return removed;
}

/**
 * Writes a checkpoint of the state after `meta.decree`: `save` streams the state into the
 * writer. Returns once the file is durable under its final name (an existing checkpoint of the
 * same decree is replaced atomically). On failure the temp file is removed and the error thrown
 * (PAXLINE_DISK_FULL, PAXLINE_FSYNC_FAILED, PAXLINE_WRITE_FAILED, or whatever `save` threw).
 */
export function writeCheckpoint(
  fs: FileLayer,
  dir: string,
  meta: CheckpointMeta,
  save: (writer: CheckpointWriter) => void,
  options: CheckpointWriteOptions = {},
): CheckpointInfo {
  checkMeta(meta);
  const blockBytes = options.blockBytes ?? CHECKPOINT_BLOCK_BYTES_DEFAULT;
  assert(
    Number.isInteger(blockBytes) && blockBytes >= 1 && blockBytes <= CHECKPOINT_BLOCK_BYTES_MAX,
    'checkpoint blockBytes must be an integer in [1, 64 MiB]',
  );
  const name = checkpointFileName(meta.decree);
  const path = joinPath(dir, name);
  const temp = `${path}.tmp`;
  guardWrite(() => fs.mkdirp(dir), 'mkdir', dir);
  if (fs.exists(temp)) guardWrite(() => fs.unlink(temp), 'unlink', temp);
  let fd = -1;
  guardWrite(() => void (fd = fs.open(temp, { create: true })), 'open', temp);
  let open = true;
  let renamed = false;
  try {
    const headerBytes = HEADER_FIXED_BYTES + 4 * meta.members.length;
    const writer = new BlockWriter(fs, fd, temp, blockBytes, headerBytes);
    save(writer);
    const end = writer.finish();
    const header = encodeHeader(meta, writer.bytesWritten, blockBytes, writer.blockCount);
    const headerCrc = new DataView(header.buffer).getUint32(headerBytes - 4, true);
    const trailer = encodeTrailer(writer.bytesWritten, writer.blockCount, headerCrc);
    guardWrite(() => fs.pwrite(fd, trailer, end), 'pwrite', temp);
    guardWrite(() => fs.pwrite(fd, header, 0), 'pwrite', temp);
    guardWrite(() => fs.fdatasync(fd), 'fdatasync', temp);
    const info = { ...copyMeta(meta), name, path, dataBytes: writer.bytesWritten, blockBytes };
    const full: CheckpointInfo = {
      ...info,
      blockCount: writer.blockCount,
      fileBytes: end + CHECKPOINT_TRAILER_BYTES,
    };
    if (options.verifyAfterWrite ?? true) {
      const check = verifyOpenFile(fs, fd, `${name}.tmp`, path, meta.decree);
      assert(sameInfo(check, full), 'checkpoint read back differs from what was written');
    }
    open = false;
    guardWrite(() => fs.close(fd), 'close', temp);
    guardWrite(() => fs.rename(temp, path), 'rename', path);
    renamed = true;
    guardWrite(() => fs.fsyncDir(dir), 'fsyncDir', dir);
    return full;
  } catch (error) {
    if (open) bestEffort(() => fs.close(fd));
    if (!renamed) bestEffort(() => fs.unlink(temp));
    throw error;
  }
}

/** Fully verifies the checkpoint at `path` (every CRC); throws a coded StorageError if damaged. */
export function verifyCheckpoint(fs: FileLayer, path: string): CheckpointInfo {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const fd = openForRead(fs, path, name);
  try {
    return verifyOpenFile(fs, fd, name, path, parseCheckpointFileName(name));
  } finally {
    bestEffort(() => fs.close(fd));
  }
}

/**
 * Removes leftover temp files, then offers checkpoints to `load`, newest first: a checkpoint
 * that fails verification (before or while loading) or that `load` declines is skipped, and the
 * next older one is tried. `load` may thus be called several times and must start from a clean
 * state each time. Errors thrown by `load` itself propagate.
 */
export function openNewestValidCheckpoint(
  fs: FileLayer,
  dir: string,
  load: CheckpointLoad,
): OpenCheckpointResult {
  const removedTempFiles = removeCheckpointTempFiles(fs, dir);
  const skipped: CheckpointSkip[] = [];
  const files = listCheckpoints(fs, dir).reverse();
  for (const file of files) {
    const outcome = tryLoad(fs, file, load);
    if (outcome.kind === 'loaded') return { loaded: outcome.info, skipped, removedTempFiles };
    const { name, decree } = file;
    skipped.push({ name, decree, reason: outcome.kind, error: outcome.error });
  }
  return { loaded: null, skipped, removedTempFiles };
}

type LoadOutcome =
  | { readonly kind: 'loaded'; readonly info: CheckpointInfo }
  | { readonly kind: 'declined'; readonly error: null }
  | { readonly kind: 'corrupt' | 'version'; readonly error: StorageError };

function tryLoad(fs: FileLayer, file: CheckpointFile, load: CheckpointLoad): LoadOutcome {
  let fd: number;
  let info: CheckpointInfo;
  try {
    fd = openForRead(fs, file.path, file.name);
  } catch (error) {
    return rejected(error);
  }
  try {
    try {
      info = verifyOpenFile(fs, fd, file.name, file.path, file.decree);
    } catch (error) {
      return rejected(error);
    }
    const reader = new BlockReader(fs, fd, file.name, info);
    let accepted: boolean;
    try {
      accepted = load(reader, info);
    } catch (error) {
      if (error === reader.failure && reader.failure !== null) return rejected(error);
      throw error;
    } finally {
      reader.close();
    }
    // A corrupt block that `load` caught and ignored still disqualifies the checkpoint.
    if (reader.failure !== null) return rejected(reader.failure);
    return accepted ? { kind: 'loaded', info } : { kind: 'declined', error: null };
  } finally {
    bestEffort(() => fs.close(fd));
  }
}

function rejected(error: unknown): LoadOutcome {
  if (error instanceof StorageError && error.code === 'PAXLINE_CHECKPOINT_VERSION') {
    return { kind: 'version', error };
  }
  if (error instanceof StorageError && error.code === 'PAXLINE_CHECKPOINT_CORRUPT') {
    return { kind: 'corrupt', error };
  }
  throw error;
}

/** Buffers the stream into one block frame and writes each full block with one pwrite. */
class BlockWriter implements CheckpointWriter {
  bytesWritten = 0;
  blockCount = 0;
  private readonly frame: Uint8Array;
  private readonly frameView: DataView;
  private fill = 0;
  private position: number;
  private finished = false;
  /** First write failure; kept so that `save` swallowing it cannot hide it. */
  private failure: unknown = null;

  constructor(
    private readonly fs: FileLayer,
    private readonly fd: number,
    private readonly file: string,
    private readonly blockBytes: number,
    headerBytes: number,
  ) {
    this.frame = new Uint8Array(FRAME + blockBytes);
    this.frameView = new DataView(this.frame.buffer);
    this.position = headerBytes;
  }

  write(bytes: Uint8Array): void {
    assert(!this.finished, 'checkpoint writer used after save returned');
    if (this.failure !== null) throw this.failure;
    let from = 0;
    while (from < bytes.length) {
      const n = Math.min(bytes.length - from, this.blockBytes - this.fill);
      this.frame.set(bytes.subarray(from, from + n), FRAME + this.fill);
      this.fill += n;
      from += n;
      this.bytesWritten += n;
      if (this.fill === this.blockBytes) this.flush();
    }
  }

  /** Writes the last partial block; returns the file offset where the trailer goes. */
  finish(): number {
    this.finished = true;
    if (this.failure !== null) throw this.failure;
    this.flush();
    return this.position;
  }

  private flush(): void {
    if (this.fill === 0) return;
    assert(this.blockCount < 0xffffffff, 'checkpoint has too many blocks for its block size');
    const data = this.frame.subarray(FRAME, FRAME + this.fill);
    this.frameView.setUint32(0, this.fill, true);
    this.frameView.setUint32(4, blockCrc(this.blockCount, data), true);
    const frame = this.frame.subarray(0, FRAME + this.fill);
    try {
      this.fs.pwrite(this.fd, frame, this.position);
    } catch (error) {
      this.failure = mapWriteError(error, 'pwrite', this.file);
      throw this.failure;
    }
    this.position += frame.length;
    this.blockCount++;
    this.fill = 0;
  }
}

/** Streams the data of a verified checkpoint, checking each block's CRC again as it is read. */
class BlockReader implements CheckpointReader {
  bytesRemaining: number;
  failure: StorageError | null = null;
  private block: Uint8Array = new Uint8Array(0);
  private blockPos = 0;
  private nextBlock = 0;
  private closed = false;

  constructor(
    private readonly fs: FileLayer,
    private readonly fd: number,
    private readonly file: string,
    private readonly info: CheckpointInfo,
  ) {
    this.bytesRemaining = info.dataBytes;
  }

  read(maxBytes: number): Uint8Array | null {
    assert(Number.isSafeInteger(maxBytes) && maxBytes >= 1, 'read: maxBytes must be >= 1');
    assert(!this.closed, 'checkpoint reader used after load returned');
    if (this.failure !== null) throw this.failure;
    if (this.blockPos === this.block.length) {
      if (this.nextBlock === this.info.blockCount) return null;
      this.loadBlock();
    }
    const n = Math.min(maxBytes, this.block.length - this.blockPos);
    const out = this.block.subarray(this.blockPos, this.blockPos + n);
    this.blockPos += n;
    this.bytesRemaining -= n;
    return out;
  }

  close(): void {
    this.closed = true;
  }

  private loadBlock(): void {
    const { blockBytes, blockCount, dataBytes, members } = this.info;
    const index = this.nextBlock;
    const length = index < blockCount - 1 ? blockBytes : dataBytes - (blockCount - 1) * blockBytes;
    const offset = HEADER_FIXED_BYTES + 4 * members.length + index * (FRAME + blockBytes);
    const frame = new Uint8Array(FRAME + length);
    try {
      readExactly(this.fs, this.fd, frame, frame.length, offset, this.file);
      checkBlock(frame, index, length, this.file, offset);
    } catch (error) {
      if (error instanceof StorageError) this.failure = error;
      throw error;
    }
    this.block = frame.subarray(FRAME);
    this.blockPos = 0;
    this.nextBlock++;
  }
}

interface Header {
  readonly meta: CheckpointMeta;
  readonly headerBytes: number;
  readonly headerCrc: number;
  readonly dataBytes: number;
  readonly blockBytes: number;
  readonly blockCount: number;
}

/**
 * Verifies the open checkpoint `fd` completely: header, size, trailer, every block. `name` is
 * used in errors; `decree`, when known from the file name, must match the header.
 */
function verifyOpenFile(
  fs: FileLayer,
  fd: number,
  name: string,
  path: string,
  decree: number | null,
): CheckpointInfo {
  const fileBytes = fs.size(fd);
  const header = readHeader(fs, fd, name, fileBytes);
  if (decree !== null && header.meta.decree !== decree) {
    throw corrupt(name, 16, `header decree ${header.meta.decree} does not match the file name`);
  }
  const { headerBytes, blockBytes, blockCount, dataBytes } = header;
  const trailerAt = headerBytes + FRAME * blockCount + dataBytes;
  const expectedBytes = trailerAt + CHECKPOINT_TRAILER_BYTES;
  if (fileBytes < expectedBytes) {
    const detail = `truncated: file is ${fileBytes} bytes, header implies ${expectedBytes}`;
    throw corrupt(name, fileBytes, detail);
  }
  if (fileBytes > expectedBytes) {
    const detail = `${fileBytes - expectedBytes} unexpected bytes after the trailer`;
    throw corrupt(name, expectedBytes, detail);
  }
  checkTrailer(fs, fd, name, trailerAt, header);
  const frame = new Uint8Array(FRAME + Math.min(blockBytes, dataBytes));
  let offset = headerBytes;
  for (let index = 0; index < blockCount; index++) {
    const length = index < blockCount - 1 ? blockBytes : dataBytes - index * blockBytes;
    const view = frame.subarray(0, FRAME + length);
    readExactly(fs, fd, view, view.length, offset, name);
    checkBlock(view, index, length, name, offset);
    offset += view.length;
  }
  assert(offset === trailerAt, 'checkpoint blocks do not end at the trailer');
  return {
    ...header.meta,
    name: path.slice(path.lastIndexOf('/') + 1),
    path,
    dataBytes,
    blockBytes,
    blockCount,
    fileBytes,
  };
}

function readHeader(fs: FileLayer, fd: number, name: string, fileBytes: number): Header {
  const fixed = new Uint8Array(HEADER_FIXED_BYTES);
  const got = readAt(fs, fd, fixed, Math.min(HEADER_FIXED_BYTES, fileBytes), 0, name);
  if (got === 0) throw corrupt(name, 0, 'truncated: empty file');
  for (let i = 0; i < Math.min(got, MAGIC.length); i++) {
    if (fixed[i] !== MAGIC[i]) throw corrupt(name, 0, 'bad magic: not a paxline checkpoint');
  }
  const view = new DataView(fixed.buffer);
  if (got >= 12 && view.getUint32(8, true) !== CHECKPOINT_VERSION) {
    const version = view.getUint32(8, true);
    const detail = `version ${version}, this build reads ${CHECKPOINT_VERSION}`;
    throw new StorageError('PAXLINE_CHECKPOINT_VERSION', 'unsupported checkpoint format', [
      { file: name, offset: 8, detail },
    ]);
  }
  if (got < HEADER_FIXED_BYTES) throw corrupt(name, got, 'truncated inside the header');
  const memberCount = view.getUint32(56, true);
  const headerBytes = view.getUint32(12, true);
  const membersOk = memberCount <= CHECKPOINT_MEMBERS_MAX;
  if (!membersOk || headerBytes !== HEADER_FIXED_BYTES + 4 * memberCount) {
    throw corrupt(name, 12, `inconsistent header size ${headerBytes} for ${memberCount} members`);
  }
  if (fileBytes < headerBytes) throw corrupt(name, fileBytes, 'truncated inside the header');
  const bytes = new Uint8Array(headerBytes);
  readExactly(fs, fd, bytes, headerBytes, 0, name);
  const full = new DataView(bytes.buffer);
  const headerCrc = full.getUint32(headerBytes - 4, true);
  if (crc32c(bytes.subarray(0, headerBytes - 4)) !== headerCrc) {
    throw corrupt(name, headerBytes - 4, 'header CRC mismatch');
  }
  return decodeHeader(full, name, headerBytes, headerCrc);
}

/** Decodes a header whose CRC matched; still checks ranges and the block arithmetic. */
function decodeHeader(
  view: DataView,
  name: string,
  headerBytes: number,
  headerCrc: number,
): Header {
  const fields = [16, 24, 32, 40].map((offset) => getU64(view, offset));
  const [decree, ballot, configNumber, dataBytes] = fields as [number, number, number, number];
  const bad = fields.findIndex((value) => value < 0);
  if (bad >= 0) throw corrupt(name, 16 + 8 * bad, 'field exceeds the safe integer range');
  const blockBytes = view.getUint32(48, true);
  const blockCount = view.getUint32(52, true);
  if (blockBytes < 1 || blockBytes > CHECKPOINT_BLOCK_BYTES_MAX) {
    throw corrupt(name, 48, `block size ${blockBytes} out of range`);
  }
  if (blockCount !== Math.ceil(dataBytes / blockBytes)) {
    throw corrupt(name, 52, `block count ${blockCount} does not fit ${dataBytes} data bytes`);
  }
  const members: number[] = [];
  for (let offset = 60; offset < headerBytes - 4; offset += 4) {
    members.push(view.getUint32(offset, true));
  }
  const meta = { decree, ballot, configNumber, members };
  return { meta, headerBytes, headerCrc, dataBytes, blockBytes, blockCount };
}

function checkTrailer(fs: FileLayer, fd: number, name: string, at: number, header: Header): void {
  const bytes = new Uint8Array(CHECKPOINT_TRAILER_BYTES);
  readExactly(fs, fd, bytes, bytes.length, at, name);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < TRAILER_MAGIC.length; i++) {
    if (bytes[i] !== TRAILER_MAGIC[i]) throw corrupt(name, at, 'bad trailer magic');
  }
  if (crc32c(bytes.subarray(0, 24)) !== view.getUint32(24, true)) {
    throw corrupt(name, at + 24, 'trailer CRC mismatch');
  }
  if (
    getU64(view, 8) !== header.dataBytes ||
    view.getUint32(16, true) !== header.blockCount ||
    view.getUint32(20, true) !== header.headerCrc
  ) {
    throw corrupt(name, at + 8, 'trailer does not match the header');
  }
}

function checkBlock(
  frame: Uint8Array,
  index: number,
  length: number,
  name: string,
  offset: number,
): void {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const stored = view.getUint32(0, true);
  if (stored !== length) {
    throw corrupt(name, offset, `block ${index} length ${stored}, expected ${length}`);
  }
  if (view.getUint32(4, true) !== blockCrc(index, frame.subarray(FRAME))) {
    throw corrupt(name, offset, `block ${index} CRC mismatch`);
  }
}

const blockPrefix = new Uint8Array(8);
const blockPrefixView = new DataView(blockPrefix.buffer);

/** crc32c(index u32 ‖ length u32 ‖ data). */
function blockCrc(index: number, data: Uint8Array): number {
  blockPrefixView.setUint32(0, index, true);
  blockPrefixView.setUint32(4, data.length, true);
  return crc32c(data, crc32c(blockPrefix));
}

function encodeHeader(
  meta: CheckpointMeta,
  dataBytes: number,
  blockBytes: number,
  blockCount: number,
): Uint8Array {
  const headerBytes = HEADER_FIXED_BYTES + 4 * meta.members.length;
  const bytes = new Uint8Array(headerBytes);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(8, CHECKPOINT_VERSION, true);
  view.setUint32(12, headerBytes, true);
  setU64(view, 16, meta.decree);
  setU64(view, 24, meta.ballot);
  setU64(view, 32, meta.configNumber);
  setU64(view, 40, dataBytes);
  view.setUint32(48, blockBytes, true);
  view.setUint32(52, blockCount, true);
  view.setUint32(56, meta.members.length, true);
  meta.members.forEach((id, i) => view.setUint32(60 + 4 * i, id, true));
  view.setUint32(headerBytes - 4, crc32c(bytes.subarray(0, headerBytes - 4)), true);
  return bytes;
}

function encodeTrailer(dataBytes: number, blockCount: number, headerCrc: number): Uint8Array {
  const bytes = new Uint8Array(CHECKPOINT_TRAILER_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(TRAILER_MAGIC, 0);
  setU64(view, 8, dataBytes);
  view.setUint32(16, blockCount, true);
  view.setUint32(20, headerCrc, true);
  view.setUint32(24, crc32c(bytes.subarray(0, 24)), true);
  return bytes;
}

function checkMeta(meta: CheckpointMeta): void {
  assert(isCount(meta.decree), 'checkpoint decree must be a safe non-negative integer');
  assert(isCount(meta.ballot), 'checkpoint ballot must be a safe non-negative integer');
  assert(isCount(meta.configNumber), 'checkpoint configNumber must be a safe non-negative integer');
  assert(meta.members.length <= CHECKPOINT_MEMBERS_MAX, 'checkpoint has too many members');
  for (const id of meta.members) {
    assert(Number.isInteger(id) && id >= 0 && id <= 0xffffffff, 'checkpoint member id must be u32');
  }
  const unique = new Set(meta.members).size === meta.members.length;
  assert(unique, 'checkpoint member ids must be unique');
}

function copyMeta(meta: CheckpointMeta): CheckpointMeta {
  const { decree, ballot, configNumber } = meta;
  return { decree, ballot, configNumber, members: [...meta.members] };
}

function sameInfo(a: CheckpointInfo, b: CheckpointInfo): boolean {
  return (
    a.decree === b.decree &&
    a.ballot === b.ballot &&
    a.configNumber === b.configNumber &&
    a.members.join() === b.members.join() &&
    a.dataBytes === b.dataBytes &&
    a.blockBytes === b.blockBytes &&
    a.blockCount === b.blockCount &&
    a.fileBytes === b.fileBytes
  );
}

function openForRead(fs: FileLayer, path: string, name: string): number {
  try {
    return fs.open(path, { create: false });
  } catch (error) {
    if (!isSystemError(error)) throw error;
    throw new StorageError(
      'PAXLINE_CHECKPOINT_CORRUPT',
      'checkpoint cannot be opened',
      [{ file: name, offset: 0, detail: `open failed with ${error.code}` }],
      { cause: error },
    );
  }
}

/** Reads up to `length` bytes; an I/O error counts as damage at `position`. */
function readAt(
  fs: FileLayer,
  fd: number,
  into: Uint8Array,
  length: number,
  position: number,
  name: string,
): number {
  try {
    return fs.read(fd, into, length, position);
  } catch (error) {
    if (!isSystemError(error)) throw error;
    throw new StorageError(
      'PAXLINE_CHECKPOINT_CORRUPT',
      'checkpoint cannot be read',
      [{ file: name, offset: position, detail: `read failed with ${error.code}` }],
      { cause: error },
    );
  }
}

function readExactly(
  fs: FileLayer,
  fd: number,
  into: Uint8Array,
  length: number,
  position: number,
  name: string,
): void {
  let done = 0;
  while (done < length) {
    const chunk = into.subarray(done);
    const n = readAt(fs, fd, chunk, length - done, position + done, name);
    if (n === 0) throw corrupt(name, position + done, 'truncated: unexpected end of file');
    done += n;
  }
}

function corrupt(name: string, offset: number, detail: string): StorageError {
  const problem = { file: name, offset, detail };
  return new StorageError('PAXLINE_CHECKPOINT_CORRUPT', 'checkpoint damaged', [problem]);
}

function asciiBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}
