/**
 * A FileLayer over SimFs whose fdatasync and fsyncDir calls return at once but take effect only
 * when the simulator says so (`commit()`), modelling a sync call that is still in progress: the
 * log believes its group durable, the disk has not confirmed it yet, and a crash in between may
 * keep, tear or lose the written pages. The simulator publishes durability to the core only
 * after `commit()`, exactly as the runtime publishes it only after fdatasync returns.
 *
 * Invariant: every sync call made before `commit()` is applied by it, in call order, to the
 * file it was made for — pending data syncs follow their file through renames.
 */
import type { FileLayer } from '../log/file-layer.js';
import type { SimFs } from './sim-fs.js';

type PendingSync = { kind: 'data'; path: string } | { kind: 'dir'; dir: string };

export class DeferredSyncFs implements FileLayer {
  private readonly paths = new Map<number, string>();
  private pending: PendingSync[] = [];

  constructor(private readonly fs: SimFs) {}

  /** Makes every sync requested so far take effect. */
  commit(): void {
    const work = this.pending;
    this.pending = [];
    for (const p of work) {
      if (p.kind === 'dir') {
        this.fs.fsyncDir(p.dir);
        continue;
      }
      // The descriptor the log used may be closed by now: sync the file through a fresh one.
      if (!this.fs.exists(p.path)) continue;
      const fd = this.fs.open(p.path, { create: false });
      this.fs.fdatasync(fd);
      this.fs.close(fd);
    }
  }

  get pendingSyncs(): number {
    return this.pending.length;
  }

  open(path: string, options: { readonly create: boolean }): number {
    const fd = this.fs.open(path, options);
    this.paths.set(fd, path);
    return fd;
  }

  fdatasync(fd: number): void {
    const path = this.paths.get(fd);
    if (path === undefined) {
      this.fs.fdatasync(fd); // let SimFs raise its EBADF
      return;
    }
    this.fs.size(fd); // an invalid descriptor fails now, as a real fdatasync would
    this.pending.push({ kind: 'data', path });
  }

  fsyncDir(dir: string): void {
    this.pending.push({ kind: 'dir', dir });
  }

  close(fd: number): void {
    this.fs.close(fd);
    this.paths.delete(fd);
  }

  /** A sync requested under the old name must still reach the file under its new one. */
  rename(from: string, to: string): void {
    this.fs.rename(from, to);
    for (const [fd, p] of this.paths) if (p === from) this.paths.set(fd, to);
    this.pending = this.pending.map((s) => (s.kind === 'data' && s.path === from ? { kind: 'data', path: to } : s));
  }

  pwrite(fd: number, data: Uint8Array, position: number): void {
    this.fs.pwrite(fd, data, position);
  }

  read(fd: number, into: Uint8Array, length: number, position: number): number {
    return this.fs.read(fd, into, length, position);
  }

  size(fd: number): number {
    return this.fs.size(fd);
  }

  truncate(fd: number, length: number): void {
    this.fs.truncate(fd, length);
  }

  unlink(path: string): void {
    this.fs.unlink(path);
  }

  mkdirp(dir: string): void {
    this.fs.mkdirp(dir);
  }

  readdir(dir: string): string[] {
    return this.fs.readdir(dir);
  }

  exists(path: string): boolean {
    return this.fs.exists(path);
  }
}
