/**
 * LogError: the coded error every storage failure surfaces as. Code across workers matches on
 * `code` (a stable string), never on the message; `file` and `offset` say where, when known.
 *
 * Codes:
 *  - PAXLINE_DISK_FULL: ENOSPC. From a write: nothing was acknowledged, the log is still usable
 *    and `sync()` may simply be retried once space returns. From fdatasync: as FSYNC_FAILED.
 *    Also thrown by the sync() after one whose trailing preallocation hit ENOSPC in fdatasync
 *    (the log stopped; its `failed` is set). A caller that waits for space on this code resumes
 *    with `log.failed === null ? log.sync() : log.recoverAfterFailure()`.
 *    From SegmentLog.open (its own syncs and torn-tail writes): the log was not opened; retry.
 *  - PAXLINE_FSYNC_FAILED: fdatasync failed. Everything written since the last successful one is
 *    unsynced; the log refuses to sync until `recoverAfterFailure()` rewrites it elsewhere.
 *  - PAXLINE_WRITE_FAILED: a write failed with something other than ENOSPC (EIO, ...); handled
 *    like a failed fdatasync, because what reached the page cache is unknown.
 *    open() and retireSegmentsBelow() use FSYNC_FAILED / WRITE_FAILED too (file and offset
 *    named); they do not stop an open log.
 *  - PAXLINE_LOG_FAILED: the log is stopped by an earlier failure (`cause` holds it).
 *  - PAXLINE_LOG_CORRUPT: bytes that were durable are damaged (or metadata is unreadable).
 *  - PAXLINE_LOG_VERSION: a file has a valid checksum but a format version this build cannot read.
 *  - PAXLINE_LOG_CLOSED: used after close().
 *  - PAXLINE_INVALID_OPTION / PAXLINE_INVALID_ARGUMENT: bad input; `field` names it.
 */
export type LogErrorCode =
  | 'PAXLINE_DISK_FULL'
  | 'PAXLINE_FSYNC_FAILED'
  | 'PAXLINE_WRITE_FAILED'
  | 'PAXLINE_LOG_FAILED'
  | 'PAXLINE_LOG_CORRUPT'
  | 'PAXLINE_LOG_VERSION'
  | 'PAXLINE_LOG_CLOSED'
  | 'PAXLINE_INVALID_OPTION'
  | 'PAXLINE_INVALID_ARGUMENT';

export interface LogErrorDetails {
  readonly file?: string;
  readonly offset?: number;
  readonly field?: string;
  readonly cause?: unknown;
}

export class LogError extends Error {
  readonly code: LogErrorCode;
  /** Path of the file concerned, or null. */
  readonly file: string | null;
  /** Byte offset in `file`, or null. */
  readonly offset: number | null;
  /** Option or argument name, for PAXLINE_INVALID_OPTION / PAXLINE_INVALID_ARGUMENT. */
  readonly field: string | null;

  constructor(code: LogErrorCode, message: string, details: LogErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'LogError';
    this.code = code;
    this.file = details.file ?? null;
    this.offset = details.offset ?? null;
    this.field = details.field ?? null;
  }
}

/**
 * The `code` of a system error (node's or SimFs's: both carry `code` and `syscall`), or
 * undefined for anything else — an assertion failure or a bug, which must propagate unchanged.
 */
export function systemErrorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, syscall } = error as { code?: unknown; syscall?: unknown };
  return typeof code === 'string' && typeof syscall === 'string' ? code : undefined;
}
