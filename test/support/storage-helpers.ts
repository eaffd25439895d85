/**
 * Small helpers shared by the checkpoint and metadata tests: damaging files durably, and
 * expecting a coded StorageError.
 */
import assert from 'node:assert/strict';
import { StorageError } from '../../src/log/checkpoint-support.js';
import type { FileLayer } from '../../src/log/file-layer.js';

/** Overwrites `bytes` at `offset` of `path` and makes the damage durable. */
export function patch(fs: FileLayer, path: string, offset: number, bytes: Uint8Array): void {
  const fd = fs.open(path, { create: false });
  fs.pwrite(fd, bytes, offset);
  fs.fdatasync(fd);
  fs.close(fd);
}

/** Runs `fn`, which must throw a StorageError, and returns it. */
export function storageError(fn: () => unknown): StorageError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}
