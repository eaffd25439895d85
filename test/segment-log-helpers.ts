/**
 * Shared helpers of the SegmentLog tests: a FileLayer wrapper that records every call, a walker
 * that lists the groups of a segment file (to aim damage precisely), and record builders.
 */
import type { FileLayer } from '../src/log/file-layer.js';
import {
  parseGroupHeader,
  segmentBinding,
  type ParsedGroupHeader,
} from '../src/log/segment-format.js';
import { FIRST_GROUP_OFFSET } from '../src/log/segment-limits.js';
import { segmentFileName, type SegmentLog, type StoredRecord } from '../src/log/segment-log.js';
import type { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';

export interface FsCall {
  readonly op: string;
  readonly fd?: number;
  readonly path?: string;
  readonly position?: number;
  readonly bytes?: number;
  /** For pwrite: whether every byte written was zero. */
  readonly zeros?: boolean;
}

/** Delegates to `inner` and appends every call to `calls`. */
export class RecordingFs implements FileLayer {
  readonly calls: FsCall[] = [];
  private readonly paths = new Map<number, string>();
  constructor(readonly inner: FileLayer) {}
  open(path: string, options: { readonly create: boolean }): number {
    const fd = this.inner.open(path, options);
    this.paths.set(fd, path);
    this.calls.push({ op: 'open', fd, path });
    return fd;
  }
  pwrite(fd: number, data: Uint8Array, position: number): void {
    this.calls.push({
      op: 'pwrite', fd, path: this.paths.get(fd) ?? '?', position, bytes: data.length,
      zeros: data.every((b) => b === 0),
    });
    this.inner.pwrite(fd, data, position);
  }
  read(fd: number, into: Uint8Array, length: number, position: number): number {
    return this.inner.read(fd, into, length, position);
  }
  fdatasync(fd: number): void {
    this.calls.push({ op: 'fdatasync', fd, path: this.paths.get(fd) ?? '?' });
    this.inner.fdatasync(fd);
  }
  size(fd: number): number {
    return this.inner.size(fd);
  }
  truncate(fd: number, length: number): void {
    this.calls.push({ op: 'truncate', fd, path: this.paths.get(fd) ?? '?', bytes: length });
    this.inner.truncate(fd, length);
  }
  close(fd: number): void {
    this.inner.close(fd);
  }
  rename(from: string, to: string): void {
    this.calls.push({ op: 'rename', path: `${from} -> ${to}` });
    this.inner.rename(from, to);
  }
  unlink(path: string): void {
    this.calls.push({ op: 'unlink', path });
    this.inner.unlink(path);
  }
  fsyncDir(dir: string): void {
    this.calls.push({ op: 'fsyncDir', path: dir });
    this.inner.fsyncDir(dir);
  }
  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }
  readdir(dir: string): string[] {
    return this.inner.readdir(dir);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
}

export interface GroupInfo {
  readonly position: number;
  readonly end: number;
  readonly header: ParsedGroupHeader;
}

/**
 * The groups of a segment file, walked from the first group position while headers parse
 * (bound to `segment`, by default the number in the file's segment header).
 */
export function groupsOf(bytes: Uint8Array, segment?: number): GroupInfo[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const binding = segmentBinding(segment ?? (bytes.length >= 12 ? view.getUint32(8, true) : 0));
  const out: GroupInfo[] = [];
  let at = FIRST_GROUP_OFFSET;
  for (;;) {
    const header = parseGroupHeader(bytes, view, at, binding);
    if (header === null) return out;
    const end = at + Math.ceil((56 + header.bodyBytes) / 8) * 8;
    out.push({ position: at, end, header });
    at = end;
  }
}

export function segPath(dir: string, n: number): string {
  return `${dir}/${segmentFileName(n)}`;
}

/** Overwrites bytes of the file at `path` in place (and makes them durable), as damage does. */
export function poke(fs: SimFs, path: string, position: number, data: Uint8Array): void {
  const fd = fs.open(path, { create: false });
  fs.pwrite(fd, data, position);
  fs.fdatasync(fd);
  fs.close(fd);
}

/** Flips one bit of the byte at `position` of the file at `path`. */
export function flipBit(fs: SimFs, path: string, position: number, bit = 0): void {
  const byte = fs.readFile(path)[position]!;
  poke(fs, path, position, Uint8Array.of(byte ^ (1 << bit)));
}

export function truncateFile(fs: SimFs, path: string, length: number): void {
  const fd = fs.open(path, { create: false });
  fs.truncate(fd, length);
  fs.fdatasync(fd);
  fs.close(fd);
}

/** A deterministic record: decree-tagged payload, so reorderings and mix-ups are visible. */
export function makeRecord(
  decree: number,
  payloadBytes: number,
  ballot = 5,
  type = 2,
): StoredRecord {
  const payload = new Uint8Array(payloadBytes);
  const rng = new Random(decree * 7919 + payloadBytes);
  for (let i = 0; i < payloadBytes; i++) payload[i] = rng.int(256);
  return { type, decree, ballot, payload };
}

/** Appends `records` and syncs once: one group (when it fits). */
export function appendGroup(log: SegmentLog, records: readonly StoredRecord[]): number {
  for (const r of records) log.appendRecord(r);
  return log.sync();
}

/** Comparable form of records (type, decree, ballot, payload bytes). */
export function plain(records: readonly StoredRecord[]): [number, number, number, number[]][] {
  return records.map((r) => [r.type, r.decree, r.ballot, [...r.payload]]);
}

/** One line per segment listing its groups (position-end, seq, epoch, frontier, kind). */
export function describeLog(fs: SimFs, dir: string): string {
  return fs
    .readdir(dir)
    .filter((n) => n.startsWith('seg-'))
    .map((n) => {
      const groups = groupsOf(fs.readFile(`${dir}/${n}`)).map(
        (g) =>
          `${g.position}-${g.end} s${g.header.seq} e${g.header.epoch} ` +
          `f${g.header.frontierSegment}@${g.header.frontierEnd} k${g.header.kind}`,
      );
      return `${n}: ${groups.join(' | ')}`;
    })
    .join('\n');
}
