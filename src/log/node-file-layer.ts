/**
 * NodeFileLayer: the production `FileLayer`, a thin wrapper over synchronous node:fs. It runs in
 * the log-fsync worker, where blocking calls are the point (one outstanding fdatasync at a time,
 * off the main thread).
 *
 * Invariants:
 *  - Errors from node:fs propagate unchanged (an Error with `code`, `syscall`, `path`); mapping
 *    codes to paxline errors is the storage layer's job, not this wrapper's.
 *  - `open` never truncates: it uses O_RDWR | O_CREAT rather than 'w+' (which truncates) or 'a+'
 *    (which forces every write to the end, ignoring the position on Linux).
 *  - `pwrite` writes all bytes or throws; short writes are retried at the advanced position.
 *  - `mkdirp` fsyncs the parent of every directory it creates, because the FileLayer contract
 *    promises that new directory entries are durable at once.
 */
import {
  closeSync,
  constants,
  existsSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { FileLayer } from './file-layer.js';

export class NodeFileLayer implements FileLayer {
  open(path: string, options: { readonly create: boolean }): number {
    const flags = options.create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR;
    return openSync(path, flags);
  }

  pwrite(fd: number, data: Uint8Array, position: number): void {
    assert(Number.isSafeInteger(position) && position >= 0, 'pwrite: bad position');
    let done = 0;
    while (done < data.length) {
      const written = writeSync(fd, data, done, data.length - done, position + done);
      // A regular file only writes zero bytes for a zero-length request; guard the loop anyway.
      assert(written > 0, 'pwrite: writeSync made no progress');
      done += written;
    }
  }

  read(fd: number, into: Uint8Array, length: number, position: number): number {
    assert(length >= 0 && length <= into.length, 'read: length exceeds the buffer');
    assert(Number.isSafeInteger(position) && position >= 0, 'read: bad position');
    return readSync(fd, into, 0, length, position);
  }

  fdatasync(fd: number): void {
    fdatasyncSync(fd);
  }

  size(fd: number): number {
    return fstatSync(fd).size;
  }

  truncate(fd: number, length: number): void {
    assert(Number.isSafeInteger(length) && length >= 0, 'truncate: bad length');
    ftruncateSync(fd, length);
  }

  close(fd: number): void {
    closeSync(fd);
  }

  rename(from: string, to: string): void {
    renameSync(from, to);
  }

  unlink(path: string): void {
    unlinkSync(path);
  }

  fsyncDir(dir: string): void {
    // Linux allows fsync on a directory opened read-only; that is how entries become durable.
    const fd = openSync(dir, constants.O_RDONLY);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  mkdirp(dir: string): void {
    const first = mkdirSync(dir, { recursive: true });
    if (first === undefined) return; // Everything existed already: nothing new to make durable.
    // The new entries are `first`, its descendants down to `dir`; each lives in its parent, so
    // fsync the parents from the leaf's parent up to the parent of `first`.
    const stop = dirname(resolve(first));
    let parent = dirname(resolve(dir));
    for (;;) {
      this.fsyncDir(parent);
      if (parent === stop || parent === dirname(parent)) break;
      parent = dirname(parent);
    }
  }

  readdir(dir: string): string[] {
    try {
      return readdirSync(dir).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
  }

  exists(path: string): boolean {
    return existsSync(path);
  }
}

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Out of line so the passing branch of `assert` stays tiny on the write path. */
function fail(message: string): never {
  throw new Error(`assertion failed: ${message}`);
}
