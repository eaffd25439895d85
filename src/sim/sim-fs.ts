/**
 * SimFs: an in-memory, deterministic `FileLayer` with a power-loss model, for the simulator and
 * for crash tests of the storage code. `crash(rng)` replaces the whole state by a state a real
 * disk could hold after losing power, chosen by the seeded generator.
 *
 * Model:
 *  - A file is an inode (a growable byte array); a directory maps names to inodes. Directories
 *    themselves are created by `mkdirp` only, durably at once, and are never removed or renamed.
 *  - Data: each inode keeps its durable size (as of its last fdatasync) and, for every 4 KiB page
 *    written since then, that page's durable content (an undo image; null = all zero). At a crash
 *    each such dirty page is, with equal odds, lost (undo image restored), kept whole, or torn (a
 *    random prefix of 1–7 of its 512-byte sectors kept, the rest restored). The size becomes
 *    max(durable size, end of the furthest kept byte), kept bytes being clipped to the pre-crash
 *    size; bytes between the durable size and the new size that no kept page covers read as zero.
 *  - Namespace: each directory keeps its durable entries (as of its last fsyncDir) and the ordered
 *    list of creates, renames and unlinks since. At a crash a random prefix of that list survives
 *    (metadata is journaled in order) and the rest is rolled back.
 *  - Descriptor numbers are never reused, so every descriptor from before a crash (or a close)
 *    fails with EBADF instead of silently reaching a different file.
 *
 * Invariants (per inode): `data.length` is a multiple of the page size and >= size and durable
 * size; every byte at or past `size` is zero; a page without an undo entry holds exactly its
 * durable content. Renames across directories are refused with EXDEV: the per-directory journal
 * model cannot make them atomic, and paxline's storage only renames within one directory.
 */
import type { FileLayer } from '../log/file-layer.js';
import type { Random } from '../util/random.js';

export const SIM_PAGE_BYTES = 4096;
export const SIM_SECTOR_BYTES = 512;
const SECTORS_PER_PAGE = SIM_PAGE_BYTES / SIM_SECTOR_BYTES;
/** Largest simulated file; keeps every offset well inside a Uint8Array's range. */
export const SIM_FILE_BYTES_MAX = 1 << 30;

export type SimFaultOp = 'pwrite' | 'fdatasync';
export type SimFaultCode = 'ENOSPC' | 'EIO';

/** Error shaped like node's system errors, so callers can match on `code` either way. */
export type SimFsError = Error & { code: string; syscall: string; path?: string };

export interface SimFsStats {
  pwrites: number;
  bytesWritten: number;
  fdatasyncs: number;
  dirSyncs: number;
  crashes: number;
}

export interface CrashReport {
  readonly pagesKept: number;
  readonly pagesTorn: number;
  readonly pagesLost: number;
  readonly dirOpsLost: number;
}

type PageCounts = { pagesKept: number; pagesTorn: number; pagesLost: number };

type DirOp =
  | { readonly kind: 'create'; readonly name: string; readonly inode: Inode }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string; readonly inode: Inode }
  | { readonly kind: 'unlink'; readonly name: string };

interface SimDir {
  /** Current entries, as seen by open/readdir. */
  entries: Map<string, Inode>;
  /** Entries as of the last fsyncDir (or crash). */
  durable: Map<string, Inode>;
  /** Namespace operations since then, oldest first; replaying them on `durable` gives `entries`. */
  pending: DirOp[];
  /** Names of subdirectories (durable as soon as created). */
  readonly subdirs: Set<string>;
}

class Inode {
  data: Uint8Array;
  size: number;
  durableSize: number;
  /** Page index → durable content of that page (null = zero) for pages changed since sync. */
  readonly undo = new Map<number, Uint8Array | null>();

  constructor(
    readonly id: number,
    data: Uint8Array,
    size: number,
  ) {
    assert(data.length % SIM_PAGE_BYTES === 0 && size <= data.length, 'inode: bad capacity');
    this.data = data;
    this.size = size;
    this.durableSize = size;
  }

  write(src: Uint8Array, position: number): void {
    if (src.length === 0) return; // A zero-length write changes neither content nor size.
    const end = position + src.length;
    this.ensureCapacity(end);
    const last = Math.floor((end - 1) / SIM_PAGE_BYTES);
    for (let page = Math.floor(position / SIM_PAGE_BYTES); page <= last; page++) this.touch(page);
    this.data.set(src, position);
    if (end > this.size) this.size = end;
  }

  truncate(length: number): void {
    if (length === this.size) return;
    // Both directions change pages between the two sizes: remember their durable content first.
    const lo = Math.min(length, this.size);
    const hi = Math.max(length, this.size);
    this.ensureCapacity(hi);
    for (let page = Math.floor(lo / SIM_PAGE_BYTES); page * SIM_PAGE_BYTES < hi; page++) {
      this.touch(page);
    }
    if (length < this.size) this.data.fill(0, length, this.size);
    this.size = length;
  }

  sync(): void {
    this.undo.clear();
    this.durableSize = this.size;
  }

  /** Records page `page`'s durable content before its first change since the last sync. */
  private touch(page: number): void {
    if (this.undo.has(page)) return;
    const start = page * SIM_PAGE_BYTES;
    if (start >= this.durableSize) {
      this.undo.set(page, null);
      return;
    }
    const saved = this.data.slice(start, start + SIM_PAGE_BYTES);
    const durableInPage = this.durableSize - start;
    if (durableInPage < SIM_PAGE_BYTES) saved.fill(0, durableInPage);
    this.undo.set(page, saved);
  }

  private ensureCapacity(end: number): void {
    assert(end <= SIM_FILE_BYTES_MAX, 'inode: file too large for the simulator');
    if (end <= this.data.length) return;
    const pages = Math.ceil(end / SIM_PAGE_BYTES);
    const grown = new Uint8Array(Math.max(pages * SIM_PAGE_BYTES, this.data.length * 2));
    grown.set(this.data);
    this.data = grown;
  }

  copy(): Inode {
    const other = new Inode(this.id, this.data.slice(), this.size);
    other.durableSize = this.durableSize;
    // Undo images are never mutated after creation, so the copies may share them.
    for (const [page, saved] of this.undo) other.undo.set(page, saved);
    return other;
  }
}

export class SimFs implements FileLayer {
  readonly stats: SimFsStats = {
    pwrites: 0,
    bytesWritten: 0,
    fdatasyncs: 0,
    dirSyncs: 0,
    crashes: 0,
  };
  private dirs = new Map<string, SimDir>();
  private readonly fds = new Map<number, Inode>();
  private readonly faults = new Map<SimFaultOp, SimFaultCode>();
  private nextFd = 3;
  private nextInodeId = 1;

  constructor() {
    // Both roots exist: '/' for absolute paths and '' for relative ones.
    this.dirs.set('/', newDir());
    this.dirs.set('', newDir());
  }

  open(path: string, options: { readonly create: boolean }): number {
    const { dir, name } = this.lookupParent(path, 'open');
    if (dir.subdirs.has(name)) throw fsError('EISDIR', 'open', path);
    let inode = dir.entries.get(name);
    if (inode === undefined) {
      if (!options.create) throw fsError('ENOENT', 'open', path);
      inode = new Inode(this.nextInodeId++, new Uint8Array(0), 0);
      dir.entries.set(name, inode);
      dir.pending.push({ kind: 'create', name, inode });
    }
    const fd = this.nextFd++;
    this.fds.set(fd, inode);
    return fd;
  }

  pwrite(fd: number, data: Uint8Array, position: number): void {
    const inode = this.inode(fd, 'write');
    assert(Number.isSafeInteger(position) && position >= 0, 'pwrite: bad position');
    this.injectFault('pwrite', 'write');
    inode.write(data, position);
    this.stats.pwrites++;
    this.stats.bytesWritten += data.length;
  }

  read(fd: number, into: Uint8Array, length: number, position: number): number {
    const inode = this.inode(fd, 'read');
    assert(length >= 0 && length <= into.length, 'read: length exceeds the buffer');
    assert(Number.isSafeInteger(position) && position >= 0, 'read: bad position');
    const n = Math.max(0, Math.min(length, inode.size - position));
    into.set(inode.data.subarray(position, position + n), 0);
    return n;
  }

  fdatasync(fd: number): void {
    const inode = this.inode(fd, 'fdatasync');
    // A failed fdatasync leaves the dirty pages dirty. (Linux may instead drop them and report
    // success next time; storage code must treat any fdatasync error as fatal either way.)
    this.injectFault('fdatasync', 'fdatasync');
    inode.sync();
    this.stats.fdatasyncs++;
  }

  size(fd: number): number {
    return this.inode(fd, 'fstat').size;
  }

  truncate(fd: number, length: number): void {
    const inode = this.inode(fd, 'ftruncate');
    assert(Number.isSafeInteger(length) && length >= 0, 'truncate: bad length');
    inode.truncate(length);
  }

  close(fd: number): void {
    this.inode(fd, 'close');
    this.fds.delete(fd);
  }

  rename(from: string, to: string): void {
    const source = this.lookupParent(from, 'rename');
    const target = this.lookupParent(to, 'rename');
    const inode = source.dir.entries.get(source.name);
    if (inode === undefined) {
      throw fsError(source.dir.subdirs.has(source.name) ? 'EISDIR' : 'ENOENT', 'rename', from);
    }
    if (source.dir !== target.dir) throw fsError('EXDEV', 'rename', from);
    if (target.dir.subdirs.has(target.name)) throw fsError('EISDIR', 'rename', to);
    if (source.name === target.name) return; // POSIX: renaming a file onto itself does nothing.
    const dir = source.dir;
    dir.entries.delete(source.name);
    dir.entries.set(target.name, inode);
    dir.pending.push({ kind: 'rename', from: source.name, to: target.name, inode });
  }

  unlink(path: string): void {
    const { dir, name } = this.lookupParent(path, 'unlink');
    if (dir.subdirs.has(name)) throw fsError('EISDIR', 'unlink', path);
    if (!dir.entries.delete(name)) throw fsError('ENOENT', 'unlink', path);
    dir.pending.push({ kind: 'unlink', name });
  }

  fsyncDir(dir: string): void {
    const d = this.dirs.get(dirKey(dir));
    if (d === undefined) throw fsError('ENOENT', 'open', dir);
    d.durable = new Map(d.entries);
    d.pending = [];
    this.stats.dirSyncs++;
  }

  mkdirp(dir: string): void {
    const { root, parts } = splitPath(dir);
    let parentKey = root;
    for (const part of parts) {
      const parent = this.dirs.get(parentKey);
      assert(parent !== undefined, 'mkdirp: parent directory vanished');
      const key = childKey(parentKey, part);
      if (parent.entries.has(part)) throw fsError('EEXIST', 'mkdir', key);
      if (!parent.subdirs.has(part)) {
        parent.subdirs.add(part);
        this.dirs.set(key, newDir());
      }
      parentKey = key;
    }
  }

  readdir(dir: string): string[] {
    const d = this.dirs.get(dirKey(dir));
    if (d === undefined) return [];
    return [...d.entries.keys(), ...d.subdirs].sort();
  }

  exists(path: string): boolean {
    if (this.dirs.has(dirKey(path))) return true;
    const { root, parts } = splitPath(path);
    const name = parts.pop();
    if (name === undefined) return false;
    const dir = this.dirs.get(joinKey(root, parts));
    return dir !== undefined && dir.entries.has(name);
  }

  /** Makes the next `op` call throw an error with `code`, changing nothing. One-shot. */
  failNext(op: SimFaultOp, code: SimFaultCode): void {
    this.faults.set(op, code);
  }

  /** Current content of the file at `path` (a copy), for tests and assertions. */
  readFile(path: string): Uint8Array {
    const { dir, name } = this.lookupParent(path, 'open');
    const inode = dir.entries.get(name);
    if (inode === undefined) throw fsError('ENOENT', 'open', path);
    return inode.data.slice(0, inode.size);
  }

  /**
   * Simulates power loss: replaces the whole state by a crash image drawn from `rng` (see the
   * file comment), invalidates every descriptor and clears pending faults (the machine reboots).
   */
  crash(rng: Random): CrashReport {
    const report = { pagesKept: 0, pagesTorn: 0, pagesLost: 0, dirOpsLost: 0 };
    const images = new Map<Inode, Inode>();
    for (const dir of this.dirs.values()) {
      const kept = rng.int(dir.pending.length + 1);
      report.dirOpsLost += dir.pending.length - kept;
      const entries = new Map(dir.durable);
      for (let i = 0; i < kept; i++) replay(entries, dir.pending[i]!);
      for (const [name, inode] of entries) {
        let image = images.get(inode);
        if (image === undefined) {
          image = this.crashImage(inode, rng, report);
          images.set(inode, image);
        }
        entries.set(name, image);
      }
      dir.entries = entries;
      dir.durable = new Map(entries);
      dir.pending = [];
    }
    this.fds.clear();
    this.faults.clear();
    this.stats.crashes++;
    return report;
  }

  /** A deep copy (descriptors, pending operations and dirty pages included). */
  clone(): SimFs {
    const other = new SimFs();
    const copies = new Map<Inode, Inode>();
    const copyOf = (inode: Inode): Inode => {
      let copy = copies.get(inode);
      if (copy === undefined) {
        copy = inode.copy();
        copies.set(inode, copy);
      }
      return copy;
    };
    const copyMap = (m: Map<string, Inode>): Map<string, Inode> =>
      new Map([...m].map(([name, inode]) => [name, copyOf(inode)]));
    other.dirs = new Map();
    for (const [key, d] of this.dirs) {
      const pending = d.pending.map((op): DirOp =>
        op.kind === 'unlink' ? op : { ...op, inode: copyOf(op.inode) },
      );
      const entries = copyMap(d.entries);
      const durable = copyMap(d.durable);
      other.dirs.set(key, { entries, durable, pending, subdirs: new Set(d.subdirs) });
    }
    for (const [fd, inode] of this.fds) other.fds.set(fd, copyOf(inode));
    for (const [op, code] of this.faults) other.faults.set(op, code);
    Object.assign(other.stats, this.stats);
    other.nextFd = this.nextFd;
    other.nextInodeId = this.nextInodeId;
    return other;
  }

  /** Builds the post-crash inode for `inode`, reusing its buffer (the old inode is discarded). */
  private crashImage(inode: Inode, rng: Random, report: PageCounts): Inode {
    const data = inode.data;
    let keptEnd = 0;
    const dirty = [...inode.undo].sort((x, y) => x[0] - y[0]);
    for (const [page, saved] of dirty) {
      const roll = rng.int(3);
      const sectors =
        roll === 0 ? 0 : roll === 1 ? SECTORS_PER_PAGE : rng.range(1, SECTORS_PER_PAGE - 1);
      if (sectors === 0) report.pagesLost++;
      else if (sectors === SECTORS_PER_PAGE) report.pagesKept++;
      else report.pagesTorn++;
      const start = page * SIM_PAGE_BYTES;
      const keptBytes = Math.max(0, Math.min(sectors * SIM_SECTOR_BYTES, inode.size - start));
      if (keptBytes > 0) keptEnd = Math.max(keptEnd, start + keptBytes);
      if (saved === null) data.fill(0, start + keptBytes, start + SIM_PAGE_BYTES);
      else data.set(saved.subarray(keptBytes), start + keptBytes);
    }
    const size = Math.max(inode.durableSize, keptEnd);
    data.fill(0, size);
    return new Inode(this.nextInodeId++, data, size);
  }

  private inode(fd: number, syscall: string): Inode {
    const inode = this.fds.get(fd);
    if (inode === undefined) throw fsError('EBADF', syscall);
    return inode;
  }

  private lookupParent(path: string, syscall: string): { dir: SimDir; name: string } {
    const { root, parts } = splitPath(path);
    const name = parts.pop();
    if (name === undefined) throw fsError('EISDIR', syscall, path);
    const dir = this.dirs.get(joinKey(root, parts));
    if (dir === undefined) throw fsError('ENOENT', syscall, path);
    return { dir, name };
  }

  private injectFault(op: SimFaultOp, syscall: string): void {
    const code = this.faults.get(op);
    if (code === undefined) return;
    this.faults.delete(op);
    throw fsError(code, syscall);
  }
}

function newDir(): SimDir {
  return { entries: new Map(), durable: new Map(), pending: [], subdirs: new Set() };
}

function replay(entries: Map<string, Inode>, op: DirOp): void {
  switch (op.kind) {
    case 'create':
      entries.set(op.name, op.inode);
      break;
    case 'rename':
      assert(entries.get(op.from) === op.inode, 'replay: rename source does not match');
      entries.delete(op.from);
      entries.set(op.to, op.inode);
      break;
    case 'unlink':
      entries.delete(op.name);
      break;
  }
}

/** Splits a '/'-separated path; '' and '.' components are dropped, '..' is not supported. */
function splitPath(path: string): { root: string; parts: string[] } {
  assert(path.length > 0, 'path must not be empty');
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  assert(!parts.includes('..'), 'SimFs does not resolve ".." in paths');
  return { root: path.startsWith('/') ? '/' : '', parts };
}

function joinKey(root: string, parts: readonly string[]): string {
  return root + parts.join('/');
}

function childKey(parentKey: string, name: string): string {
  return parentKey === '' || parentKey === '/' ? parentKey + name : `${parentKey}/${name}`;
}

function dirKey(path: string): string {
  const { root, parts } = splitPath(path);
  return joinKey(root, parts);
}

const ERROR_TEXT: Record<string, string> = {
  EBADF: 'bad file descriptor',
  EEXIST: 'file already exists',
  EIO: 'i/o error',
  EISDIR: 'illegal operation on a directory',
  ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device',
  EXDEV: 'cross-device link not permitted (SimFs renames within one directory only)',
};

function fsError(code: string, syscall: string, path?: string): SimFsError {
  const where = path === undefined ? '' : ` '${path}'`;
  const error = new Error(`${code}: ${ERROR_TEXT[code] ?? 'error'}, ${syscall}${where}`);
  return Object.assign(error, path === undefined ? { code, syscall } : { code, syscall, path });
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Out of line so the passing branch of `assert` stays tiny. */
function fail(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
