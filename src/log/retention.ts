/**
 * Retention: which checkpoints and log segments may be deleted, as a pure plan, and an executor
 * that carries a plan out (unlink, then fsync each directory touched). Segments of a live log go
 * through `SegmentLog.retireSegmentsBelow` (pass the log in the targets): it advances the log's
 * first segment in log.meta before unlinking, and closes its descriptors so the space is freed.
 *
 * Rules (DESIGN §3, issue 3):
 *  1. Keep the newest K checkpoints. Let C be the decree of the oldest one kept: recovery may
 *     have to fall back to it (the newer ones can fail verification or be declined), and then
 *     replays every decree above C, so every segment holding a decree > C is kept. With no
 *     checkpoint at all, every segment is kept.
 *  2. Until checkpoint transfer between replicas exists, a lagging member can catch up only from
 *     logs: every segment holding a decree ≥ membersLowDecree (the lowest durable decree any
 *     member has reported) is kept.
 *  3. The newest segment (the one being appended to) is always kept.
 *  4. Only a prefix of the segments (in segment-number order) is ever deleted: the first segment
 *     any rule keeps, and every later one, stay. Decree ranges of segments can overlap (a decree
 *     re-accepted at a higher ballot lands in a later segment), and a prefix keeps the remaining
 *     log one contiguous run, which is what recovery reads.
 *
 *   segments:  [ s1 | s2 | s3 | s4 | s5 | s6 (active) ]
 *                ^^^^^^^^^              rule 1 would keep s3.. (hold decrees > C)
 *                ^^^^                   rule 2 keeps s2.. (hold decrees ≥ membersLowDecree)
 *   plan:      delete s1; keep s2..s6. If the kept bytes exceed maxLogBytes, the plan is
 *              `blocked` (PAXLINE_RETENTION_BLOCKED, s2 held for a member): never delete it.
 *
 * When the log is over maxLogBytes but rule 2 holds nothing extra, the plan is not blocked but
 * `overMaxLogBytes`: a newer checkpoint is what frees space.
 *
 * Invariants (checked by a property test): no plan deletes a segment holding a decree above C or
 * at or above membersLowDecree, the newest segment, or one of the newest K checkpoints; deletions
 * of segments are a prefix. The caller must pass only checkpoints known to be complete (returned
 * by `writeCheckpoint`, or verified at start-up).
 */
import { assert } from '../core/assert.js';
import type { FileLayer } from './file-layer.js';
import { checkpointFileName } from './checkpoint.js';
import {
  StorageError,
  dirOf,
  guardWrite,
  isCount,
  isSystemError,
  joinPath,
  mapWriteError,
} from './checkpoint-support.js';

export interface RetentionSegment {
  /** Segment number; files are deleted in this order. */
  readonly segment: number;
  /** Lowest and highest decree with a record in the segment; lastDecree < firstDecree = none. */
  readonly firstDecree: number;
  readonly lastDecree: number;
  readonly bytes: number;
}

export interface RetentionInput {
  readonly segments: readonly RetentionSegment[];
  /** Decrees of the complete checkpoints on disk. */
  readonly checkpointDecrees: readonly number[];
  /** K ≥ 1: how many of the newest checkpoints to keep (RSL maxCheckpoints, default 4). */
  readonly keepCheckpoints: number;
  /** Lowest durable decree any member has reported (0 when some member is unknown). */
  readonly membersLowDecree: number;
  /** Budget for the kept log. */
  readonly maxLogBytes: number;
}

export interface RetentionBlocked {
  readonly code: 'PAXLINE_RETENTION_BLOCKED';
  readonly message: string;
  /** Segments that only rule 2 keeps (a member still needs them). */
  readonly heldSegments: readonly number[];
  readonly heldBytes: number;
}

export interface RetentionPlan {
  /** Segment numbers to delete, ascending (always a prefix of the segments). */
  readonly deleteSegments: readonly number[];
  readonly keepSegments: readonly number[];
  /** Checkpoint decrees to delete / keep, ascending. */
  readonly deleteCheckpoints: readonly number[];
  readonly keepCheckpoints: readonly number[];
  /** C: decree of the oldest kept checkpoint, null when there is none. */
  readonly oldestKeptCheckpoint: number | null;
  readonly keptLogBytes: number;
  readonly overMaxLogBytes: boolean;
  /** Non-null when the log is over budget because a member still needs old segments. */
  readonly blocked: RetentionBlocked | null;
}

export function planRetention(input: RetentionInput): RetentionPlan {
  checkInput(input);
  const segments = [...input.segments].sort((a, b) => a.segment - b.segment);
  const checkpoints = [...new Set(input.checkpointDecrees)].sort((a, b) => a - b);
  const keepFrom = Math.max(0, checkpoints.length - input.keepCheckpoints);
  const keepCheckpoints = checkpoints.slice(keepFrom);
  const oldestKept = keepCheckpoints[0] ?? null;
  const neededByCheckpoint = (s: RetentionSegment): boolean =>
    oldestKept === null || (holdsDecree(s) && s.lastDecree > oldestKept);
  const neededByMembers = (s: RetentionSegment): boolean =>
    holdsDecree(s) && s.lastDecree >= input.membersLowDecree;
  // Rule 3 and 4: the prefix ends at the first needed segment, and never takes the newest.
  const cut = (needed: (s: RetentionSegment) => boolean): number => {
    const first = segments.findIndex(needed);
    return Math.min(first < 0 ? segments.length : first, Math.max(0, segments.length - 1));
  };
  const cutByCheckpoint = cut(neededByCheckpoint);
  const cutBoth = cut((s) => neededByCheckpoint(s) || neededByMembers(s));
  const kept = segments.slice(cutBoth);
  const keptLogBytes = sumBytes(kept);
  const overMaxLogBytes = keptLogBytes > input.maxLogBytes;
  const held = segments.slice(cutBoth, cutByCheckpoint);
  const blocked =
    overMaxLogBytes && held.length > 0 ? blockedReport(input, held, keptLogBytes) : null;
  const plan: RetentionPlan = {
    deleteSegments: segments.slice(0, cutBoth).map((s) => s.segment),
    keepSegments: kept.map((s) => s.segment),
    deleteCheckpoints: checkpoints.slice(0, keepFrom),
    keepCheckpoints,
    oldestKeptCheckpoint: oldestKept,
    keptLogBytes,
    overMaxLogBytes,
    blocked,
  };
  assert(plan.deleteSegments.length + plan.keepSegments.length === segments.length, 'plan: split');
  return plan;
}

function blockedReport(
  input: RetentionInput,
  held: readonly RetentionSegment[],
  keptLogBytes: number,
): RetentionBlocked {
  const heldBytes = sumBytes(held);
  const heldSegments = held.map((s) => s.segment);
  const message =
    `PAXLINE_RETENTION_BLOCKED: the log holds ${keptLogBytes} bytes, over maxLogBytes ` +
    `${input.maxLogBytes}, because a member still needs decrees from ${input.membersLowDecree}: ` +
    `segments ${heldSegments.join(', ')} (${heldBytes} bytes) are kept for it`;
  return { code: 'PAXLINE_RETENTION_BLOCKED', message, heldSegments, heldBytes };
}

/** The `StorageError` form of a blocked plan, for callers that surface it as an error. */
export function retentionBlockedError(blocked: RetentionBlocked): StorageError {
  const detail = blocked.message.slice(blocked.message.indexOf(': ') + 2);
  return new StorageError(blocked.code, detail, []);
}

/** What executeRetention needs of an open SegmentLog (its retireSegmentsBelow). */
export interface RetiringLog {
  /** Durably advances the log's first segment to `segment`, then deletes the files below it. */
  retireSegmentsBelow(segment: number): string[];
}

export interface RetentionTargets {
  /** Directory of the checkpoint files (named by `checkpointFileName`). */
  readonly checkpointDir: string;
  /** Path of a segment file, by number (the segment log owns the naming). */
  readonly segmentPath: (segment: number) => string;
  /**
   * The open log the segments belong to. When given, segments are retired through it (log.meta
   * first, then the files; its descriptors are closed, so the space is freed), which is what a
   * live replica must do: unlinking a log's segments behind its back makes the next open report
   * them as missing durable data. Without it the files are unlinked directly (offline use).
   */
  readonly log?: RetiringLog;
}

export interface RetentionResult {
  readonly deletedSegments: readonly number[];
  readonly deletedCheckpoints: readonly number[];
  /** Paths that were already gone (e.g. deleted by an earlier, interrupted run). */
  readonly alreadyGone: readonly string[];
}

/**
 * Deletes what `plan` allows: segments oldest first (so a crash, which keeps a prefix of a
 * directory's unlinks, still leaves a contiguous run of segments), then checkpoints oldest
 * first, then fsyncs every directory touched. Files already gone are not an error. Disk
 * failures surface as PAXLINE_WRITE_FAILED / PAXLINE_FSYNC_FAILED.
 *
 * With `targets.log`, the segments go through `log.retireSegmentsBelow(first kept segment)`
 * instead (its LogError codes: PAXLINE_DISK_FULL / PAXLINE_FSYNC_FAILED / PAXLINE_WRITE_FAILED,
 * PAXLINE_INVALID_ARGUMENT if the plan is stale and would retire what the log still writes).
 */
export function executeRetention(
  fs: FileLayer,
  plan: RetentionPlan,
  targets: RetentionTargets,
): RetentionResult {
  const kept = new Set(plan.keepSegments);
  const safe = plan.deleteSegments.every((s) => !kept.has(s));
  assert(safe, 'executeRetention: plan deletes a kept segment');
  assert(
    plan.deleteCheckpoints.length === 0 || plan.keepCheckpoints.length > 0,
    'executeRetention: plan deletes every checkpoint',
  );
  const dirs = new Set<string>();
  const alreadyGone: string[] = [];
  const remove = (path: string): void => {
    try {
      fs.unlink(path);
    } catch (error) {
      if (isSystemError(error) && error.code === 'ENOENT') {
        alreadyGone.push(path);
        return;
      }
      throw mapWriteError(error, 'unlink', path);
    }
    dirs.add(dirOf(path));
  };
  if (targets.log !== undefined) retireThroughLog(targets.log, plan, targets, alreadyGone);
  else for (const segment of plan.deleteSegments) remove(targets.segmentPath(segment));
  for (const decree of plan.deleteCheckpoints) {
    remove(joinPath(targets.checkpointDir, checkpointFileName(decree)));
  }
  for (const dir of dirs) guardWrite(() => fs.fsyncDir(dir), 'fsyncDir', dir);
  return {
    deletedSegments: [...plan.deleteSegments],
    deletedCheckpoints: [...plan.deleteCheckpoints],
    alreadyGone,
  };
}

function retireThroughLog(
  log: RetiringLog,
  plan: RetentionPlan,
  targets: RetentionTargets,
  alreadyGone: string[],
): void {
  if (plan.deleteSegments.length === 0) return;
  const firstKept = plan.keepSegments[0];
  assert(firstKept !== undefined, 'executeRetention: plan keeps no segment');
  assert(plan.deleteSegments.every((s) => s < firstKept), 'executeRetention: not a prefix');
  const deleted = new Set(log.retireSegmentsBelow(firstKept));
  for (const segment of plan.deleteSegments) {
    const path = targets.segmentPath(segment);
    if (!deleted.has(path.slice(path.lastIndexOf('/') + 1))) alreadyGone.push(path);
  }
}

function holdsDecree(s: RetentionSegment): boolean {
  return s.lastDecree >= s.firstDecree;
}

function sumBytes(segments: readonly RetentionSegment[]): number {
  let total = 0;
  for (const s of segments) total += s.bytes;
  return total;
}

function checkInput(input: RetentionInput): void {
  const k = input.keepCheckpoints;
  assert(Number.isInteger(k) && k >= 1, 'retention: keepCheckpoints must be >= 1');
  assert(isCount(input.membersLowDecree), 'retention: membersLowDecree must be a count');
  assert(isCount(input.maxLogBytes), 'retention: maxLogBytes must be a count');
  for (const decree of input.checkpointDecrees) {
    assert(isCount(decree), 'retention: bad checkpoint decree');
  }
  const numbers = new Set<number>();
  for (const s of input.segments) {
    assert(isCount(s.segment) && !numbers.has(s.segment), 'retention: duplicate segment number');
    numbers.add(s.segment);
    const rangeOk = Number.isSafeInteger(s.lastDecree) && s.lastDecree >= -1;
    assert(isCount(s.firstDecree) && rangeOk, 'retention: bad decree range');
    assert(isCount(s.bytes), 'retention: segment bytes must be a count');
  }
}
