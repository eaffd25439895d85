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
const DAMAGES: readonly Damage[] = ['none', 'powerLoss', 'bitFlip', 'zeroed', 'truncated', 'deleted'];

/**
 * Builds a log in a SimFs from `rng`; returns the options it was written with and the log, still
 * open (or null when closed at the end).
 */
function buildLog(fs: SimFs, rng: Random): { options: SegmentLogOptions; log: SegmentLog | null } {
  const segmentBytes = rng.pick([4096, 8192, 16384, 65536]);
  const options: SegmentLogOptions = {
    segmentBytes,
    groupBodyBytesMax: rng.chance(0.3) ? rng.range(200, 2000) : Math.min(4096, segmentBytes - 200),
    preallocChunkBytes: Math.min(4096, segmentBytes),
    preallocAheadBytes: Math.min(segmentBytes, rng.pick([0, 4096, 8192])),
    recordPayloadBytesMax: 3500,
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
      if (below > log.firstSegment && log.damagedRanges.length === 0) log.retireSegmentsBelow(below);
    } else if (roll < 0.27) {
      log.sync();
      log.close();
      log = SegmentLog.open(fs, DIR, options).log;
    } else {
      decree += rng.int(3);
      const payload = new Uint8Array(rng.chance(0.08) ? rng.range(2000, 3500) : rng.int(300));
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
  const files = fs.readdir(DIR).map((n) => [n, Buffer.from(fs.readFile(`${DIR}/${n}`)).toString('hex')]);
  if (outcome.opened === undefined) return { threw: outcome.threw, files };
  const { records, report } = outcome.opened;
  return {
    records: records.map((r) => [r.type, r.decree, r.ballot, r.segment, r.offset, [...r.payload]]),
    report: { ...report, error: report.error?.message ?? null },
    files,
  };
}

describe('SegmentLog recovery with pre-faulted memory', () => {
  test(`${PREFAULT_SEEDS} damaged logs: 'always' recovers exactly what 'never' does`, () => {
    const tally = new Map<string, number>();
    let arenaRecords = 0;
    for (let seed = BASE_SEED; seed < BASE_SEED + PREFAULT_SEEDS; seed++) {
      const where = `seed ${seed}`;
      const rng = new Random(seed);
      const fs = new SimFs();
      const { options, log } = buildLog(fs, rng);
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
        // Waiting for the helper ('always') puts every kept payload in one of its arenas.
        assert.ok(r.payload.buffer.byteLength >= ARENA_BYTES_FIRST, `${where}: not in an arena`);
        arenaRecords++;
      }
      serial.opened?.log.close();
      helped.opened?.log.close();
    }
    const seen = JSON.stringify([...tally].sort());
    assert.ok((tally.get('powerLoss/tornTail') ?? 0) > 0, `no torn tail: ${seen}`);
    assert.ok([...tally.keys()].some((k) => k.endsWith('/corrupt')), `no corruption: ${seen}`);
    assert.ok(arenaRecords > 1000, `only ${arenaRecords} records in arenas: ${seen}`);
  });
});
