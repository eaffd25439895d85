/**
 * Mirrored replica metadata: the few facts a replica must never forget — cluster id, replica id,
 * incarnation, promised ballot, log epoch — in two CRC-protected slots written alternately, so
 * that a write torn by power loss damages at most the slot being written while the other still
 * holds the previous durable state.
 *
 * Two files (`meta-a`, `meta-b`), not two slots in one file: the slots then share no inode, no
 * extent map and no file size, so damage at the file level — a truncation or zero-length file
 * after a crash, a lost or misdirected block, an operator deleting one file — takes out one copy
 * at most. The price, one more file to create once, is nothing. `meta-a` holds the even
 * generations and `meta-b` the odd ones, so a write never touches the slot holding the newest
 * state: generation g+1 goes to the file that held g-1.
 *
 * Slot record (one per file, at offset 0, zero-padded to 512 bytes; little-endian; n ≤ 255):
 *
 *   +------+-----+----------------------------+
 *   |    0 |   8 | magic "PAXLMETA"           |
 *   |    8 |   4 | version = 1                |
 *   |   12 |   4 | record bytes R = 60 + n    |
 *   |   16 |   8 | generation (even in a,     |
 *   |      |     |   odd in b)                |
 *   |   24 |   8 | promised ballot            |
 *   |   32 |   8 | log epoch                  |
 *   |   40 |   8 | incarnation                |
 *   |   48 |   4 | replica id                 |
 *   |   52 |   2 | cluster id bytes n         |
 *   |   54 |   2 | reserved, 0                |
 *   |   56 |   n | cluster id (UTF-8)         |
 *   | 56+n |   4 | crc32c(bytes 0 .. 56+n)    |
 *   +------+-----+----------------------------+   then zeros up to 512
 *
 * Invariants:
 *  - A write returns only after fdatasync; the newest valid slot then holds it, and the other
 *    slot holds the previous state (or is damaged), so no single torn write loses it.
 *  - Files appear under their final names only after their content is durable (written as
 *    `.tmp`, synced, renamed, directory synced). So an existing `meta-*` file that does not
 *    verify is damage, not an interrupted creation, and "no metadata" (a new replica) is exactly
 *    "neither file exists".
 *  - Promised ballot, incarnation and log epoch never decrease; cluster and replica id never
 *    change (asserted on write).
 *  - Neither slot valid while a file exists → PAXLINE_PROMISE_UNKNOWN naming each file and
 *    offset: the replica must refuse to start rather than guess a promise.
 *
 * Residual risk (stated, not hidden): the newest slot decaying after a completed write (a bit flip
 * at rest) makes the older slot win, one generation back. `found.damaged` reports every slot that
 * did not verify, so recovery can take the highest promise also from the log's promise records.
 */
import { assert } from '../core/assert.js';
import { crc32c } from '../util/crc32c.js';
import type { FileLayer } from './file-layer.js';
import {
  StorageError,
  type StorageProblem,
  bestEffort,
  getU64,
  isCount,
  isSystemError,
  joinPath,
  guardWrite,
  setU64,
} from './checkpoint-support.js';

export const METADATA_FILE_NAMES = ['meta-a', 'meta-b'] as const;
export const METADATA_VERSION = 1;
export const METADATA_SLOT_BYTES = 512;
export const METADATA_CLUSTER_ID_BYTES_MAX = 255;
const FIXED_BYTES = 60; // record bytes with an empty cluster id, CRC included
const MAGIC = Uint8Array.from('PAXLMETA', (c) => c.charCodeAt(0));
const TEMP_SUFFIX = '.tmp';
const UTF8 = new TextDecoder('utf-8', { fatal: true });

export interface ReplicaMetadata {
  readonly clusterId: string;
  readonly replicaId: number;
  /** Bumped by the caller on every start (tells a restarted replica from a slow one). */
  readonly incarnation: number;
  /** The highest ballot this replica has promised (0 = none). */
  readonly promisedBallot: number;
  /** Bumped by the caller whenever the local log is discarded and rebuilt. */
  readonly logEpoch: number;
}

export interface StoredMetadata extends ReplicaMetadata {
  /** Write counter: generation g lives in METADATA_FILE_NAMES[g % 2]. */
  readonly generation: number;
}

export type MetadataRead =
  /** Neither metadata file exists: a new replica. */
  | { readonly kind: 'none' }
  | {
      readonly kind: 'found';
      readonly metadata: StoredMetadata;
      /** Name of the file the metadata came from. */
      readonly file: string;
      /** Slots that did not verify (or are missing), with file, offset and why. */
      readonly damaged: readonly StorageProblem[];
    };

/**
 * Reads both slots and returns the valid one with the highest generation. Throws
 * PAXLINE_PROMISE_UNKNOWN if a metadata file exists but neither slot verifies, or if both
 * verify but disagree on the cluster or replica id. Reads only; changes nothing.
 */
export function readMetadata(fs: FileLayer, dir: string): MetadataRead {
  const slots = METADATA_FILE_NAMES.map((name) => readSlot(fs, dir, name));
  if (slots.every((slot) => slot.kind === 'missing')) return { kind: 'none' };
  const valid = slots.filter((slot) => slot.kind === 'valid');
  const damaged = slots.flatMap((slot) => (slot.kind === 'valid' ? [] : [slot.problem]));
  if (valid.length === 0) {
    throw new StorageError(
      'PAXLINE_PROMISE_UNKNOWN',
      'no metadata slot verifies, so the promised ballot cannot be established; refusing to start',
      damaged,
    );
  }
  const [a, b] = valid;
  if (b !== undefined && a !== undefined) {
    const sameCluster = a.metadata.clusterId === b.metadata.clusterId;
    if (!sameCluster || a.metadata.replicaId !== b.metadata.replicaId) {
      throw new StorageError('PAXLINE_PROMISE_UNKNOWN', 'metadata slots disagree on identity', [
        { file: a.file, offset: 48, detail: describeIdentity(a.metadata) },
        { file: b.file, offset: 48, detail: describeIdentity(b.metadata) },
      ]);
    }
  }
  const best = valid.reduce((x, y) => (y.metadata.generation > x.metadata.generation ? y : x));
  return { kind: 'found', metadata: best.metadata, file: best.file, damaged };
}

/**
 * The writer of a replica's metadata. Each `write` is durable when it returns. After a failed
 * write the store refuses further writes: what reached the file is unknown, and the page cache
 * may show bytes that never became durable, so the process must not re-read and trust them —
 * restart (a fresh `open` after the process exits) is the way back.
 */
export class MetadataStore {
  private state: StoredMetadata;
  private failure: unknown = null;

  private constructor(
    private readonly fs: FileLayer,
    readonly dir: string,
    state: StoredMetadata,
    /** Slots found damaged or missing by `open` (empty after `create`). */
    readonly damagedAtOpen: readonly StorageProblem[],
  ) {
    this.state = state;
  }

  /**
   * Initialises metadata for a new replica (asserts that none exists): both slots are written
   * with `initial` (generations 0 and 1), synced, renamed into place, and the directory synced.
   * A crash before this returns leaves either no metadata or valid metadata equal to `initial`.
   */
  static create(fs: FileLayer, dir: string, initial: ReplicaMetadata): MetadataStore {
    checkFields(initial);
    guardWrite(() => fs.mkdirp(dir), 'mkdir', dir);
    assert(readMetadata(fs, dir).kind === 'none', 'MetadataStore.create: metadata already exists');
    removeTemps(fs, dir);
    const states = [0, 1].map((generation) => ({ ...copyFields(initial), generation }));
    states.forEach((state, i) => writeTemp(fs, dir, METADATA_FILE_NAMES[i]!, state));
    for (const name of METADATA_FILE_NAMES) {
      const path = joinPath(dir, name);
      guardWrite(() => fs.rename(path + TEMP_SUFFIX, path), 'rename', path);
    }
    guardWrite(() => fs.fsyncDir(dir), 'fsyncDir', dir);
    return new MetadataStore(fs, dir, states[1]!, []);
  }

  /**
   * Opens existing metadata: null when there is none (a new replica: call `create`); throws
   * PAXLINE_PROMISE_UNKNOWN when it exists but cannot be read (see `readMetadata`).
   */
  static open(fs: FileLayer, dir: string): MetadataStore | null {
    const read = readMetadata(fs, dir);
    if (read.kind === 'none') return null;
    removeTemps(fs, dir);
    return new MetadataStore(fs, dir, read.metadata, read.damaged);
  }

  get current(): StoredMetadata {
    return this.state;
  }

  /** Durably records `next` as the next generation, in the slot not holding the current one. */
  write(next: ReplicaMetadata): StoredMetadata {
    if (this.failure !== null) throw this.failure;
    checkFields(next);
    const now = this.state;
    assert(next.clusterId === now.clusterId, 'metadata: cluster id must not change');
    assert(next.replicaId === now.replicaId, 'metadata: replica id must not change');
    assert(next.promisedBallot >= now.promisedBallot, 'metadata: promise must not decrease');
    assert(next.incarnation >= now.incarnation, 'metadata: incarnation must not decrease');
    assert(next.logEpoch >= now.logEpoch, 'metadata: log epoch must not decrease');
    const state: StoredMetadata = { ...copyFields(next), generation: now.generation + 1 };
    const name = slotName(state.generation);
    const path = joinPath(this.dir, name);
    try {
      if (this.fs.exists(path)) {
        writeInPlace(this.fs, path, state);
      } else {
        // A slot lost to a crash during `create` (or deleted): recreate it the durable way.
        writeTemp(this.fs, this.dir, name, state);
        guardWrite(() => this.fs.rename(path + TEMP_SUFFIX, path), 'rename', path);
        guardWrite(() => this.fs.fsyncDir(this.dir), 'fsyncDir', this.dir);
      }
    } catch (error) {
      this.failure = error;
      throw error;
    }
    this.state = state;
    return state;
  }
}

type SlotRead =
  | { readonly kind: 'valid'; readonly file: string; readonly metadata: StoredMetadata }
  | { readonly kind: 'missing' | 'damaged'; readonly problem: StorageProblem };

function readSlot(fs: FileLayer, dir: string, name: string): SlotRead {
  let fd: number;
  try {
    fd = fs.open(joinPath(dir, name), { create: false });
  } catch (error) {
    if (!isSystemError(error)) throw error;
    const missing = error.code === 'ENOENT';
    const detail = missing ? 'file missing' : `open failed with ${error.code}`;
    return { kind: missing ? 'missing' : 'damaged', problem: { file: name, offset: 0, detail } };
  }
  try {
    const bytes = new Uint8Array(METADATA_SLOT_BYTES);
    const got = fs.read(fd, bytes, bytes.length, 0);
    const result = decodeSlot(bytes.subarray(0, got), name);
    if ('detail' in result) return { kind: 'damaged', problem: result };
    return { kind: 'valid', file: name, metadata: result };
  } catch (error) {
    if (!isSystemError(error)) throw error;
    const problem = { file: name, offset: 0, detail: `read failed with ${error.code}` };
    return { kind: 'damaged', problem };
  } finally {
    bestEffort(() => fs.close(fd));
  }
}

/** Decodes one slot; returns the problem (with its offset) when it does not verify. */
function decodeSlot(bytes: Uint8Array, file: string): StoredMetadata | StorageProblem {
  const bad = (offset: number, detail: string): StorageProblem => ({ file, offset, detail });
  if (bytes.length === 0) return bad(0, 'empty file');
  for (let i = 0; i < MAGIC.length; i++) {
    if (i >= bytes.length) return bad(bytes.length, 'truncated inside the magic');
    if (bytes[i] !== MAGIC[i]) return bad(0, 'bad magic: not a paxline metadata slot');
  }
  if (bytes.length < FIXED_BYTES) return bad(bytes.length, 'truncated record');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== METADATA_VERSION) return bad(8, `unsupported version ${version}`);
  const recordBytes = view.getUint32(12, true);
  const clusterIdBytes = view.getUint16(52, true);
  const idFits = clusterIdBytes <= METADATA_CLUSTER_ID_BYTES_MAX;
  if (!idFits || recordBytes !== FIXED_BYTES + clusterIdBytes) {
    return bad(12, `record size ${recordBytes} does not fit a ${clusterIdBytes}-byte cluster id`);
  }
  if (recordBytes > bytes.length) return bad(bytes.length, 'truncated record');
  if (crc32c(bytes.subarray(0, recordBytes - 4)) !== view.getUint32(recordBytes - 4, true)) {
    return bad(recordBytes - 4, 'CRC mismatch');
  }
  const [generation, promisedBallot, logEpoch, incarnation] = [16, 24, 32, 40].map((at) =>
    getU64(view, at),
  ) as [number, number, number, number];
  if (generation < 0 || promisedBallot < 0 || logEpoch < 0 || incarnation < 0) {
    return bad(16, 'field exceeds the safe integer range');
  }
  if (slotName(generation) !== file) return bad(16, `generation ${generation} in the wrong slot`);
  let clusterId: string;
  try {
    clusterId = UTF8.decode(bytes.subarray(56, 56 + clusterIdBytes));
  } catch {
    return bad(56, 'cluster id is not valid UTF-8');
  }
  const replicaId = view.getUint32(48, true);
  return { clusterId, replicaId, incarnation, promisedBallot, logEpoch, generation };
}

function encodeSlot(state: StoredMetadata): Uint8Array {
  const clusterId = new TextEncoder().encode(state.clusterId);
  const recordBytes = FIXED_BYTES + clusterId.length;
  const bytes = new Uint8Array(METADATA_SLOT_BYTES);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(8, METADATA_VERSION, true);
  view.setUint32(12, recordBytes, true);
  setU64(view, 16, state.generation);
  setU64(view, 24, state.promisedBallot);
  setU64(view, 32, state.logEpoch);
  setU64(view, 40, state.incarnation);
  view.setUint32(48, state.replicaId, true);
  view.setUint16(52, clusterId.length, true);
  bytes.set(clusterId, 56);
  view.setUint32(recordBytes - 4, crc32c(bytes.subarray(0, recordBytes - 4)), true);
  // Paired assertion: what goes to disk decodes back to exactly what was asked for.
  const back = decodeSlot(bytes, slotName(state.generation));
  assert(!('detail' in back) && sameState(back, state), 'metadata slot does not round-trip');
  return bytes;
}

function writeInPlace(fs: FileLayer, path: string, state: StoredMetadata): void {
  const fd = openForWrite(fs, path);
  try {
    guardWrite(() => fs.pwrite(fd, encodeSlot(state), 0), 'pwrite', path);
    guardWrite(() => fs.fdatasync(fd), 'fdatasync', path);
  } finally {
    bestEffort(() => fs.close(fd));
  }
}

/** Writes `<name>.tmp` with `state` and syncs it; the caller renames it into place. */
function writeTemp(fs: FileLayer, dir: string, name: string, state: StoredMetadata): void {
  const temp = joinPath(dir, name + TEMP_SUFFIX);
  if (fs.exists(temp)) guardWrite(() => fs.unlink(temp), 'unlink', temp);
  writeInPlace(fs, temp, state);
}

function removeTemps(fs: FileLayer, dir: string): void {
  for (const name of METADATA_FILE_NAMES) {
    const temp = joinPath(dir, name + TEMP_SUFFIX);
    if (fs.exists(temp)) guardWrite(() => fs.unlink(temp), 'unlink', temp);
  }
}

function openForWrite(fs: FileLayer, path: string): number {
  let fd = -1;
  guardWrite(() => void (fd = fs.open(path, { create: true })), 'open', path);
  return fd;
}

function slotName(generation: number): string {
  return METADATA_FILE_NAMES[generation % 2]!;
}

function checkFields(m: ReplicaMetadata): void {
  const idBytes = new TextEncoder().encode(m.clusterId).length;
  assert(idBytes <= METADATA_CLUSTER_ID_BYTES_MAX, 'metadata: cluster id longer than 255 bytes');
  const idOk = Number.isInteger(m.replicaId) && m.replicaId >= 0 && m.replicaId <= 0xffffffff;
  assert(idOk, 'metadata: replica id must be u32');
  assert(isCount(m.incarnation), 'metadata: incarnation must be a safe non-negative integer');
  assert(isCount(m.promisedBallot), 'metadata: promise must be a safe non-negative integer');
  assert(isCount(m.logEpoch), 'metadata: log epoch must be a safe non-negative integer');
}

function copyFields(m: ReplicaMetadata): ReplicaMetadata {
  const { clusterId, replicaId, incarnation, promisedBallot, logEpoch } = m;
  return { clusterId, replicaId, incarnation, promisedBallot, logEpoch };
}

function sameState(a: StoredMetadata, b: StoredMetadata): boolean {
  return (
    a.clusterId === b.clusterId &&
    a.replicaId === b.replicaId &&
    a.incarnation === b.incarnation &&
    a.promisedBallot === b.promisedBallot &&
    a.logEpoch === b.logEpoch &&
    a.generation === b.generation
  );
}

function describeIdentity(m: StoredMetadata): string {
  return `cluster ${JSON.stringify(m.clusterId)}, replica ${m.replicaId}`;
}
