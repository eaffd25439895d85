/**
 * A FileLayer over SimFs that loses power at its `cutAt`-th call: that call and every later one
 * throw PowerCut. A cut pwrite may first write a prefix of its data (chosen by `tear`), so a write
 * can also be torn inside a sector. Shared by the checkpoint and metadata power-loss tests.
 */
import type { FileLayer } from '../../src/log/file-layer.js';
import type { SimFs } from '../../src/sim/sim-fs.js';
import type { Random } from '../../src/util/random.js';

export class PowerCut extends Error {
  constructor() {
    super('simulated power cut');
  }
}

/** How many bytes of a cut pwrite reach the file first (0 = none). */
export type TearPolicy = (rng: Random, data: Uint8Array) => number;

export class CutFs implements FileLayer {
  ops = 0;
  constructor(
    private readonly inner: SimFs,
    private readonly rng: Random,
    private readonly cutAt = Number.POSITIVE_INFINITY,
    private readonly tear: TearPolicy = () => 0,
  ) {}

  get cut(): boolean {
    return this.ops > this.cutAt;
  }

  private step(): void {
    if (this.ops++ >= this.cutAt) throw new PowerCut();
  }

  open(path: string, options: { readonly create: boolean }): number {
    this.step();
    return this.inner.open(path, options);
  }
  pwrite(fd: number, data: Uint8Array, position: number): void {
    if (this.ops === this.cutAt && data.length > 1) {
      const end = this.tear(this.rng, data);
      if (end > 0) this.inner.pwrite(fd, data.subarray(0, end), position);
    }
    this.step();
    this.inner.pwrite(fd, data, position);
  }
  read(fd: number, into: Uint8Array, length: number, position: number): number {
    this.step();
    return this.inner.read(fd, into, length, position);
  }
  fdatasync(fd: number): void {
    this.step();
    this.inner.fdatasync(fd);
  }
  size(fd: number): number {
    this.step();
    return this.inner.size(fd);
  }
  truncate(fd: number, length: number): void {
    this.step();
    this.inner.truncate(fd, length);
  }
  close(fd: number): void {
    this.step();
    this.inner.close(fd);
  }
  rename(from: string, to: string): void {
    this.step();
    this.inner.rename(from, to);
  }
  unlink(path: string): void {
    this.step();
    this.inner.unlink(path);
  }
  fsyncDir(dir: string): void {
    this.step();
    this.inner.fsyncDir(dir);
  }
  mkdirp(dir: string): void {
    this.step();
    this.inner.mkdirp(dir);
  }
  readdir(dir: string): string[] {
    this.step();
    return this.inner.readdir(dir);
  }
  exists(path: string): boolean {
    this.step();
    return this.inner.exists(path);
  }
}
