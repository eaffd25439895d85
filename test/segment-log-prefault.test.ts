/**
 * Recovery with pre-faulted memory (recoveryPrefault 'always': a helper thread's arenas hold
 * every kept payload) against recovery without it ('never'), on the same damaged logs: the
 * records (with their locations), the report, the error and every file after open must be
 * identical. The logs come from random appends, syncs, failed fdatasyncs (abandoned groups),
 * retirements with recycling, reopens and partial keeps (keepRecordsFromDecree), then one kind
 * of damage: power loss, a bit flip, a zeroed range, a truncated or a deleted segment, or none.
 * Seeds BASE..BASE+PREFAULT_SEEDS-1 (BASE is 1 unless SEED is set; failures name their seed).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { ARENA_BYTES_FIRST } from '../src/log/segment-limits.js';
import {
  LogError,
  SegmentLog,
  type OpenedSegmentLog,
  type SegmentLogOptions,
} from '../src/log/segment-log.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';
import { flipBit, poke, truncateFile } from './segment-log-helpers.js';

const DIR = '/data/log';
const BASE_SEED = Number(process.env['SEED'] ?? 1);
const PREFAULT_SEEDS = 120;

type Damage = 'none' | 'powerLoss' | 'bitFlip' | 'zeroed' | 'truncated' | 'deleted';
const DAMAGES: readonly Damage[] = [
  'none', 'powerLoss', 'bitFlip', 'zeroed', 'truncated', 'deleted',
];

/** Small logs (groups of a few KiB), or large ones whose groups are read straight into arenas. */
interface Shape {
  readonly name: string;
  readonly segmentBytes: readonly number[];
  readonly groupBodyBytesMax: number;
  /** Payload bytes of a big record, at most, and the share of big records. */
  readonly bigBytesMax: number;
  readonly bigShare: number;
  readonly seeds: number;
  /** Kept payloads (in arenas) the seeds must produce at least, so the test means something. */
  readonly keptMin: number;
}

const SMALL: Shape = {
  name: 'small groups', segmentBytes: [4096, 8192, 16384, 65536], groupBodyBytesMax: 4096,
  bigBytesMax: 3500, bigShare: 0.08, seeds: PREFAULT_SEEDS, keptMin: 1000,
};
// Logs of tens of MiB in segments larger than the read window (WINDOW_BYTES), with bodies from
// DIRECT_BODY_BYTES_MIN up: those are read straight into arenas (directBody).
const LARGE: Shape = {
  name: 'large groups', segmentBytes: [16 << 20, 32 << 20], groupBodyBytesMax: 2 << 20,
  bigBytesMax: 1_000_000, bigShare: 0.3, seeds: PREFAULT_SEEDS / 4, keptMin: 200,
};

/**
 * Builds a log in a SimFs from `rng`; returns the options it was written with and the log, still
 * open (or null when closed at the end).
 */
function buildLog(
  fs: SimFs,
  rng: Random,
  shape: Shape,
): { options: SegmentLogOptions; log: SegmentLog | null } {
  const segmentBytes = rng.pick(shape.segmentBytes);
  const bodyMax = Math.min(shape.groupBodyBytesMax, segmentBytes - 200);
  const options: SegmentLogOptions = {
    segmentBytes,
    groupBodyBytesMax: rng.chance(0.3) ? rng.range(200, 2000) : bodyMax,
    preallocChunkBytes: Math.min(4096, segmentBytes),
    preallocAheadBytes: Math.min(segmentBytes, rng.pick([0, 4096, 8192])),
    recordPayloadBytesMax: shape.bigBytesMax,
    recycleSegments: rng.pick([0, 1, 2]),
  };
  let { log } = SegmentLog.open(fs, DIR, options);
  let decree = 0;
  for (let step = rng.range(20, 120); step > 0; step--) {
    const roll = rng.next();
    if (roll < 0.2) {
      // Armed only when the sync has a group to write, so the fault is always consumed.
      if (log.appendedSeq > log.durableSeq && rng.chance(0.15)) fs.failNext('fdatasync', 'EIO');
      try {
        log.sync();
      } catch (e) {
        if (!(e instanceof LogError)) throw e;
        log.recoverAfterFailure(); // the groups of the failed sync are abandoned on disk
      }
    } else if (roll < 0.25) {
      const below = log.durablePosition.segment;
      if (below > log.firstSegment && log.damagedRanges.length === 0) {
        log.retireSegmentsBelow(below);
      }
    } else if (roll < 0.27) {
      log.sync();
      log.close();
      log = SegmentLog.open(fs, DIR, options).log;
    } else {
      decree += rng.int(3);
      const big = rng.chance(shape.bigShare)
        ? rng.range(shape.bigBytesMax / 2, shape.bigBytesMax)
        : 0;
      const payload = new Uint8Array(big > 0 ? big : rng.int(300));
      for (let i = 0; i < payload.length; i += 1 + rng.int(16)) payload[i] = rng.int(256);
      log.append(rng.range(1, 4), decree, rng.int(1000), payload);
    }
  }
  if (rng.chance(0.5)) log.sync();
  if (rng.chance(0.5)) {
    log.close();
    return { options, log: null };
  }
  return { options, log };
}

function damage(fs: SimFs, log: SegmentLog | null, rng: Random, kind: Damage): void {
  if (kind === 'powerLoss') {
    if (log !== null && log.failed === null) {
      // A group written but never synced: the crash keeps, tears or loses its pages.
      log.append(1, 1_000_000, 1, new Uint8Array(rng.range(100, 3000)).fill(7));
      fs.failNext('fdatasync', 'EIO');
      assert.throws(() => log.sync(), LogError);
    }
    fs.crash(rng);
    return;
  }
  const names = fs.readdir(DIR).filter((n) => n.startsWith('seg-'));
  if (names.length === 0 || kind === 'none') return;
  const path = `${DIR}/${rng.pick(names)}`;
  const size = fs.readFile(path).length;
  if (kind === 'bitFlip') flipBit(fs, path, rng.int(size), rng.int(8));
  else if (kind === 'zeroed') poke(fs, path, rng.int(size), new Uint8Array(rng.range(1, 600)));
  else if (kind === 'truncated') truncateFile(fs, path, rng.int(size));
  else if (names.length > 1) fs.unlink(path);
}

type Outcome =
  | { readonly threw: string; readonly opened?: undefined }
  | { readonly threw?: undefined; readonly opened: OpenedSegmentLog };

function openOutcome(fs: SimFs, options: SegmentLogOptions): Outcome {
  try {
    return { opened: SegmentLog.open(fs, DIR, options) };
  } catch (e) {
    if (!(e instanceof LogError)) throw e;
    return { threw: `${e.code}: ${e.message}` };
  }
}

/** Everything an open returns and leaves behind, in a comparable form. */
function observe(fs: SimFs, outcome: Outcome): unknown {
  const digest = (n: string): string =>
    createHash('sha256').update(fs.readFile(`${DIR}/${n}`)).digest('hex');
  const files = fs.readdir(DIR).map((n) => [n, digest(n)]);
  if (outcome.opened === undefined) return { threw: outcome.threw, files };
  const { records, report } = outcome.opened;
  return {
    records: records.map((r) => {
      const payload = createHash('sha256').update(r.payload).digest('hex');
      return [r.type, r.decree, r.ballot, r.segment, r.offset, r.payload.length, payload];
    }),
    report: { ...report, error: report.error?.message ?? null },
    files,
  };
}

describe('SegmentLog recovery with pre-faulted memory', () => {
  for (const shape of [SMALL, LARGE]) {
    const name = `${shape.seeds} damaged logs, ${shape.name}: 'always' recovers what 'never' does`;
    test(name, async () => {
      await compareRuns(shape);
    });
  }
});

async function compareRuns(shape: Shape): Promise<void> {
  const tally = new Map<string, number>();
  let keptRecords = 0;
  let arenaRecords = 0;
  for (let seed = BASE_SEED; seed < BASE_SEED + shape.seeds; seed++) {
    const where = `seed ${seed}`;
    const rng = new Random(seed);
    const fs = new SimFs();
    const { options, log } = buildLog(fs, rng, shape);
    const kind = rng.pick(DAMAGES);
    damage(fs, log, rng, kind);
    const keep = rng.chance(0.6) ? {} : { keepRecordsFromDecree: rng.int(200) };
    const other = fs.clone();
    const serial = openOutcome(fs, { ...options, ...keep, recoveryPrefault: 'never' });
    const helped = openOutcome(other, { ...options, ...keep, recoveryPrefault: 'always' });
    assert.deepEqual(observe(other, helped), observe(fs, serial), `${where} (${kind})`);
    const outcome = serial.opened?.report.kind ?? 'refused';
    tally.set(`${kind}/${outcome}`, (tally.get(`${kind}/${outcome}`) ?? 0) + 1);
    for (const r of helped.opened?.records ?? []) {
      if (r.payload.length === 0) continue;
      keptRecords++;
      if (r.payload.buffer.byteLength >= ARENA_BYTES_FIRST) arenaRecords++;
    }
    serial.opened?.log.close();
    helped.opened?.log.close();
    // Let the event loop reap the helper thread this open stopped, as a process would.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seen = JSON.stringify([...tally].sort());
  assert.ok([...tally.keys()].some((k) => k.endsWith('/tornTail')), `no torn tail: ${seen}`);
  assert.ok([...tally.keys()].some((k) => k.endsWith('/corrupt')), `no corruption: ${seen}`);
  // Waiting for the helper ('always') puts kept payloads in its arenas: all of them unless a
  // helper failed to deliver within ARENA_WAIT_MS_MAX (seen once in ten runs on a loaded machine;
  // that open then copies into fresh memory, as 'never' does).
  const inArenas = `${arenaRecords} of ${keptRecords} kept payloads in arenas`;
  assert.ok(arenaRecords >= shape.keptMin && arenaRecords >= 0.9 * keptRecords, inArenas);
}
