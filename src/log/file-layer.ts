/**
 * FileLayer: the narrow, synchronous file-system surface that paxline's storage code is written
 * against. Production uses `NodeFileLayer` (node:fs, synchronous calls, run inside the log-fsync
 * worker); the deterministic simulator uses `SimFs`, an in-memory implementation with a crash model.
 *
 * Durability contract (what callers may rely on, and what SimFs enforces at a crash):
 *  - Bytes written with `pwrite` are durable only after `fdatasync` on that descriptor returns.
 *  - A file created by `open(..., create)` and a `rename`/`unlink` are durable only after
 *    `fsyncDir` on the containing directory returns.
 *  - Everything else may be lost, kept, or (for data pages) partially kept at a crash.
 *
 * Paths are '/'-separated. Descriptors are small integers owned by the layer.
 */
export interface FileLayer {
  /** Opens `path`. With `create`, creates it if missing (the directory entry is not yet durable). */
  open(path: string, options: { readonly create: boolean }): number;
  /** Writes all of `data` at byte `position`, extending the file if needed. */
  pwrite(fd: number, data: Uint8Array, position: number): void;
  /** Reads up to `length` bytes at `position` into `into` (offset 0); returns bytes read. */
  read(fd: number, into: Uint8Array, length: number, position: number): number;
  /** Makes every byte written to `fd` so far, and the file size, durable. */
  fdatasync(fd: number): void;
  /** Current size of the open file in bytes. */
  size(fd: number): number;
  /** Sets the file size (shrinks or zero-extends). Durable only after `fdatasync`. */
  truncate(fd: number, length: number): void;
  close(fd: number): void;
  /** Atomically replaces `to` with `from` (durable after `fsyncDir` of the directory). */
  rename(from: string, to: string): void;
  unlink(path: string): void;
  /** Makes creates, renames and unlinks in directory `dir` durable. */
  fsyncDir(dir: string): void;
  /** Creates `dir` (and parents) if missing; the new directory entry is durable at once. */
  mkdirp(dir: string): void;
  /** Names (not paths) of entries in `dir`, sorted; [] if `dir` does not exist. */
  readdir(dir: string): string[];
  exists(path: string): boolean;
}
