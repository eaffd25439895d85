/**
 * Shared helpers of the checkpoint, metadata and retention modules: the coded `StorageError`,
 * the mapping of file-system failures to paxline codes, little-endian u64 fields that hold
 * safe-integer Numbers, and '/'-path joining.
 *
 * (It carries the `checkpoint-` prefix only because of file ownership while the segmented log is
 * written in parallel; once a project-wide `PaxlineError` base exists, `StorageError` should
 * extend it and move next to the segment log's errors.)
 *
 * Invariants:
 *  - Every `StorageError` message starts with its code and names the file and offset when known,
 *    so the text alone says what and where even after a `postMessage` drops the fields.
 *  - Only genuine system errors (an Error with a string `code`, as node:fs and SimFs throw) are
 *    mapped; anything else — an assertion failure, a test's simulated power cut — propagates
 *    unchanged, so a bug is never disguised as a disk fault.
 */
import { AssertionFailure } from '../core/assert.js';

export type StorageErrorCode =
  | 'PAXLINE_CHECKPOINT_CORRUPT'
  | 'PAXLINE_CHECKPOINT_VERSION'
  | 'PAXLINE_PROMISE_UNKNOWN'
  | 'PAXLINE_RETENTION_BLOCKED'
  | 'PAXLINE_DISK_FULL'
  | 'PAXLINE_FSYNC_FAILED'
  | 'PAXLINE_WRITE_FAILED';

/** One damaged or unreadable place: a file, a byte offset in it, and what was wrong there. */
export interface StorageProblem {
  readonly file: string;
  readonly offset: number;
  readonly detail: string;
}

export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  /** The (first) file concerned, or null when the error is not about one file. */
  readonly file: string | null;
  /** Byte offset in `file` where the problem was found, or null. */
  readonly offset: number | null;
  /** Every place involved (e.g. both metadata slots), `file`/`offset` being the first. */
  readonly problems: readonly StorageProblem[];

  constructor(
    code: StorageErrorCode,
    detail: string,
    problems: readonly StorageProblem[],
    options?: { readonly cause: unknown },
  ) {
    const where = problems.map((p) => `${p.file} at offset ${p.offset}: ${p.detail}`).join('; ');
    super(`${code}: ${detail}${where === '' ? '' : ` (${where})`}`, options);
    this.code = code;
    this.file = problems[0]?.file ?? null;
    this.offset = problems[0]?.offset ?? null;
    this.problems = problems;
  }
}

/** True for an error thrown by a FileLayer for a system failure (ENOSPC, EIO, ENOENT, ...). */
export function isSystemError(error: unknown): error is Error & { code: string } {
  if (!(error instanceof Error)) return false;
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' && !code.startsWith('PAXLINE_');
}

/**
 * Maps a failure of a write-path call to a coded StorageError, with the codes the segment log
 * uses: ENOSPC → PAXLINE_DISK_FULL; any other failure of `fdatasync`/`fsyncDir` →
 * PAXLINE_FSYNC_FAILED; of anything else (`pwrite`, `open`, `rename`, `unlink`, ...) →
 * PAXLINE_WRITE_FAILED. After either of the last two, nothing written since the last good sync
 * may be trusted. Non-system errors are returned unchanged, to be rethrown as they are.
 */
export function mapWriteError(error: unknown, syscall: string, file: string): unknown {
  if (!isSystemError(error)) return error;
  const problem = { file, offset: 0, detail: `${syscall} failed with ${error.code}` };
  const options = { cause: error };
  if (error.code === 'ENOSPC') {
    return new StorageError('PAXLINE_DISK_FULL', 'no space left on device', [problem], options);
  }
  if (syscall === 'fdatasync' || syscall === 'fsyncDir') {
    const detail = `${syscall} failed; unsynced data is lost`;
    return new StorageError('PAXLINE_FSYNC_FAILED', detail, [problem], options);
  }
  return new StorageError('PAXLINE_WRITE_FAILED', `${syscall} failed`, [problem], options);
}

/** Runs a write-path call, turning a system failure into PAXLINE_DISK_FULL/FSYNC_FAILED. */
export function guardWrite(fn: () => void, syscall: string, file: string): void {
  try {
    fn();
  } catch (error) {
    throw mapWriteError(error, syscall, file);
  }
}

const TWO_POW_32 = 0x1_0000_0000;

/** Writes a safe, non-negative integer as a little-endian u64. */
export function setU64(view: DataView, offset: number, value: number): void {
  view.setUint32(offset, value % TWO_POW_32, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}

/** Reads a little-endian u64; returns -1 when it exceeds Number.MAX_SAFE_INTEGER (damage). */
export function getU64(view: DataView, offset: number): number {
  const hi = view.getUint32(offset + 4, true);
  if (hi > 0x1f_ffff) return -1;
  return hi * TWO_POW_32 + view.getUint32(offset, true);
}

export function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** `dir/name`, without doubling a trailing '/'. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** The directory part of a '/'-separated path ('.' for a bare name, '/' for a root entry). */
export function dirOf(path: string): string {
  const slash = path.lastIndexOf('/');
  if (slash < 0) return '.';
  return slash === 0 ? '/' : path.slice(0, slash);
}

/**
 * Runs `fn`, swallowing any error except a failed assertion (which nothing may catch): for
 * best-effort cleanup after a failure already in hand, which is what the caller reports.
 */
export function bestEffort(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (error instanceof AssertionFailure) throw error;
  }
}
