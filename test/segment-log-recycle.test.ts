/**
 * Segment recycling and the options that came with it (docs/decisions/0006-segment-recycling.md):
 * retired segment files kept as free files and reused at rollover; group headers bound to their
 * segment, so a recycled file's old groups never verify; clean restarts of a recycled segment
 * reported clean; corruption before the durable floor of a recycled segment still corrupt; free
 * files handled at open; keepRecordsFromDecree. Power cuts inside retirement and recycling run in
 * segment-log-crash.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeSegmentHeader,
  parseGroupHeader,
  segmentBinding,
} from '../src/log/segment-format.js';
import { rolloverShortfall } from '../src/log/segment-log-options.js';
import {
  resolveSegmentLogOptions,
  SegmentLog,
  type SegmentLogOptions,
  type StoredRecord,
} from '../src/log/segment-log.js';
import { SimFs } from '../src/sim/sim-fs.js';
import {
  appendGroup,
  flipBit,
  groupsOf,
  makeRecord,
  plain,
  poke,
  segPath,
} from './segment-log-helpers.js';

const DIR = '/data/log';
const OPTS: SegmentLogOptions = Object.freeze({
  segmentBytes: 8192,
  preallocChunkBytes: 4096,
  preallocAheadBytes: 8192,
  recycleSegments: 2,
});

/** Group g holds decrees 2g+1 and 2g+2 (about 1 KiB: several groups per segment). */
function groupRecords(g: number): StoredRecord[] {
  return [makeRecord(2 * g + 1, 400 + g), makeRecord(2 * g + 2, 500 + g)];
}

function freeFiles(fs: SimFs): string[] {
  return fs.readdir(DIR).filter((n) => n.startsWith('free-'));
}

/**
 * Writes groups from `from`, retiring every segment below the one before the durable segment
 * after each sync (a replica's retention), until `count` groups were written.
 */
function writeWithRetention(log: SegmentLog, from: number, count: number): void {
  for (let g = from; g < from + count; g++) {
    appendGroup(log, groupRecords(g));
    const keep = log.durablePosition.segment - 1;
    if (keep > log.firstSegment) log.retireSegmentsBelow(keep);
  }
}

describe('SegmentLog segment recycling', () => {
  test('retired segments become free files; rollovers reuse them without zero-fill', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    writeWithRetention(log, 0, 40);
    assert.ok(log.stats.segmentsFreed >= 2, JSON.stringify(log.stats));
    assert.ok(freeFiles(fs).length >= 1 && freeFiles(fs).length <= 2, freeFiles(fs).join());
    const zeroed = log.stats.preallocBytes;
    const recycled = log.stats.segmentsRecycled;
    writeWithRetention(log, 40, 60);
    assert.ok(log.stats.segmentsRecycled > recycled + 3, JSON.stringify(log.stats));
    assert.equal(log.stats.preallocBytes, zeroed, 'no zero-fill once every rollover recycles');
    // The recycled segment's file holds its new groups first, then old ones that never verify.
    const seg = log.durablePosition.segment;
    const bytes = fs.readFile(segPath(DIR, seg));
    assert.equal(bytes.length, OPTS.segmentBytes);
    const groups = groupsOf(bytes, seg);
    assert.equal(groups.at(-1)!.end, log.durablePosition.offset);
    assert.ok(bytes.subarray(log.durablePosition.offset).some((b) => b !== 0), 'stale bytes');
    const expected = log.readRecords(0, 1e9);
    log.close();
    const again = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(again.report.kind, 'clean', again.report.message);
    assert.equal(again.report.bytesCut, 0);
    assert.equal(again.report.freeSegments, freeFiles(fs).length);
    assert.deepEqual(plain(again.records), plain(expected));
    // Appends continue after the last group, over the stale bytes.
    appendGroup(again.log, groupRecords(99));
    again.log.close();
    const third = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(third.report.kind, 'clean', third.report.message);
    assert.deepEqual(plain(third.records), plain([...expected, ...groupRecords(99)]));
  });

  test('a torn group in a recycled segment is cut; the stale bytes after it are not', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    toRecycledSegmentWithRoom(fs, log, 0);
    const seg = log.durablePosition.segment;
    const kept = log.readRecords(0, 1e9);
    for (const r of groupRecords(50)) log.appendRecord(r);
    fs.failNext('fdatasync', 'EIO'); // the group reaches the page cache only
    assert.throws(() => log.sync(), { code: 'PAXLINE_FSYNC_FAILED' });
    const path = segPath(DIR, seg);
    const torn = groupsOf(fs.readFile(path), seg).at(-1)!;
    poke(fs, path, torn.end - 64, new Uint8Array(64)); // its last bytes never landed
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'tornTail', opened.report.message);
    assert.equal(opened.report.bytesCut, torn.end - torn.position);
    assert.deepEqual(plain(opened.records), plain(kept));
    const after = fs.readFile(path);
    assert.ok(after.subarray(torn.position, torn.end).every((b) => b === 0), 'torn group zeroed');
    assert.ok(after.subarray(torn.end).some((b) => b !== 0), 'stale bytes left alone');
  });

  test('a bit flip before the durable floor of a recycled segment is corruption', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    toRecycledSegmentWithRoom(fs, log, 0);
    const seg = log.durablePosition.segment;
    log.close(); // the floor covers the end
    const path = segPath(DIR, seg);
    const groups = groupsOf(fs.readFile(path), seg);
    assert.ok(groups.length >= 1);
    // The last group: only the floor tells its damage from a torn tail.
    flipBit(fs, path, groups.at(-1)!.position + 100);
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'corrupt', opened.report.message);
    assert.equal(opened.report.damaged[0]!.segment, seg);
    assert.equal(opened.report.error?.code, 'PAXLINE_LOG_CORRUPT');
  });

  test('an old group of a recycled file never verifies in its new segment', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    toRecycledSegmentWithRoom(fs, log, 0);
    const seg = log.durablePosition.segment;
    log.close();
    const bytes = fs.readFile(segPath(DIR, seg));
    const header = new DataView(bytes.buffer, bytes.byteOffset).getUint32(20, true);
    assert.ok(header > 0 && header < seg, `recycled from ${header}`);
    // Bound to the segment it was, the stale tail holds whole valid groups; bound to seg, none.
    const stale = bytes.slice();
    const end = log.durablePosition.offset;
    const old = groupsOfAt(stale, header, end);
    assert.ok(old > 0, 'stale groups of the earlier life are there');
    assert.equal(groupsOfAt(stale, seg, end), 0);
  });

  test('open: an interrupted rollover (free file stamped for another segment) is deleted', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    writeWithRetention(log, 0, 40);
    const free = freeFiles(fs);
    assert.ok(free.length >= 1);
    log.close();
    const path = `${DIR}/${free[0]!}`;
    // A rollover stamped its header for segment 99, then the power went.
    poke(fs, path, 0, encodeSegmentHeader(99, 1, OPTS.segmentBytes!, 1));
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.ok(!fs.exists(path), 'a free file whose header names another segment is deleted');
    assert.equal(opened.report.freeSegments, free.length - 1);
  });

  test('recycleSegments 0 deletes retired segments; too many free files are deleted at open', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, { ...OPTS, recycleSegments: 2 });
    writeWithRetention(log, 0, 40);
    log.retireSegmentsBelow(log.durablePosition.segment); // fills the pool
    log.close();
    assert.equal(freeFiles(fs).length, 2);
    const one = SegmentLog.open(fs, DIR, { ...OPTS, recycleSegments: 1 });
    assert.equal(freeFiles(fs).length, 1);
    assert.equal(one.report.freeSegments, 1);
    writeWithRetention(one.log, 40, 30);
    one.log.close();
    const none = SegmentLog.open(fs, DIR, { ...OPTS, recycleSegments: 0 });
    assert.deepEqual(freeFiles(fs), []);
    writeWithRetention(none.log, 70, 30);
    assert.equal(none.log.stats.segmentsRecycled, 0);
    assert.deepEqual(freeFiles(fs), []);
    none.log.close();
  });
});

describe('SegmentLog open options', () => {
  test('keepRecordsFromDecree: older records verified and indexed, not returned', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, OPTS);
    for (let g = 0; g < 10; g++) appendGroup(log, groupRecords(g));
    appendGroup(log, [makeRecord(0, 0, 7, 1)]); // a promise (decree 0) is always kept
    log.close();
    const opened = SegmentLog.open(fs, DIR, { ...OPTS, keepRecordsFromDecree: 15 });
    assert.equal(opened.report.records, 21);
    const want = [...groupRecords(7), ...groupRecords(8), ...groupRecords(9)];
    assert.deepEqual(plain(opened.records), plain([...want, makeRecord(0, 0, 7, 1)]));
    assert.deepEqual(plain(opened.log.readRecords(1, 4)), plain([...groupRecords(0), ...groupRecords(1)]));
    opened.log.close();
  });

  test('options are validated, naming the field', () => {
    const cases: [SegmentLogOptions, string][] = [
      [{ recycleSegments: -1 }, 'recycleSegments'],
      [{ recycleSegments: 65 }, 'recycleSegments'],
      [{ recycleSegments: 1.5 }, 'recycleSegments'],
      [{ keepRecordsFromDecree: -1 }, 'keepRecordsFromDecree'],
      [{ keepRecordsFromDecree: Number.NaN }, 'keepRecordsFromDecree'],
      [{ recoveryPrefault: 'sometimes' as never }, 'recoveryPrefault'],
    ];
    for (const [options, field] of cases) {
      assert.throws(
        () => SegmentLog.open(new SimFs(), DIR, options),
        (e: unknown) =>
          e instanceof Error && (e as { code?: string }).code === 'PAXLINE_INVALID_OPTION' &&
          (e as { field?: string }).field === field,
        JSON.stringify(options),
      );
    }
  });
});

/** The number of valid group headers bound to `segment` at aligned positions from `from`. */
function groupsOfAt(bytes: Uint8Array, segment: number, from: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const binding = segmentBinding(segment);
  let found = 0;
  for (let at = from; at + 56 <= bytes.length; at += 8) {
    if (parseGroupHeader(bytes, view, at, binding) !== null) found++;
  }
  return found;
}

/** The segment the durable segment's file was recycled from (0: a new file). */
function recycledFrom(fs: SimFs, log: SegmentLog): number {
  if (log.durablePosition.segment === 0) return 0;
  const bytes = fs.readFile(segPath(DIR, log.durablePosition.segment));
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(20, true);
}

/** Writes on (with retention) until the durable segment is a recycled one with room left. */
function toRecycledSegmentWithRoom(fs: SimFs, log: SegmentLog, from: number): number {
  let g = from;
  while (recycledFrom(fs, log) === 0 || log.durablePosition.offset > 8192 - 2048) {
    writeWithRetention(log, g++, 1);
  }
  return g;
}

describe('SegmentLog rollover spread', () => {
  const SPREAD = OPTS.segmentBytes! / 2;

  /** Writes 40 groups with the given seed; checks each finished segment; returns groups per segment. */
  function writeAndCheck(seed: number, spread: number): number[] {
    const fs = new SimFs();
    const opts: SegmentLogOptions = { ...OPTS, rolloverSpreadBytes: spread, rolloverSeed: seed };
    const { log } = SegmentLog.open(fs, DIR, opts);
    for (let g = 0; g < 40; g++) appendGroup(log, groupRecords(g));
    const last = log.durablePosition.segment;
    const perSegment: number[] = [];
    for (let seg = 1; seg < last; seg++) {
      const groups = groupsOf(fs.readFile(segPath(DIR, seg)), seg);
      const next = groupsOf(fs.readFile(segPath(DIR, seg + 1)), seg + 1)[0]!;
      const limit = OPTS.segmentBytes! - rolloverShortfall(seed, seg, spread);
      const end = groups.at(-1)!.end;
      assert.ok(groups.length === 1 || end <= limit, `segment ${seg} ends at ${end}, past its limit ${limit}`);
      assert.ok(end + (next.end - next.position) > limit, `segment ${seg} rolled over before its limit ${limit}`);
      perSegment.push(groups.length);
    }
    const expected = log.readRecords(0, 1e9);
    assert.equal(expected.length, 80);
    log.close();
    const again = SegmentLog.open(fs, DIR, opts);
    assert.equal(again.report.kind, 'clean', again.report.message);
    assert.deepEqual(plain(again.records), plain(expected), 'every record back, in order');
    again.log.close();
    return perSegment;
  }

  test('each segment stops at its seed\'s limit; other seeds roll over elsewhere; reopen reads every record', () => {
    const full = writeAndCheck(0, 0);
    const a = writeAndCheck(1, SPREAD);
    const b = writeAndCheck(2, SPREAD);
    assert.notDeepEqual(a, b, 'two seeds roll over at different records');
    assert.ok(a.length > full.length || b.length > full.length, 'segments that stop early: more of them');
  });

  test('a segment that stops early is still zeroed to its full size, so it can be reused', () => {
    // 64 KiB segments stopping up to 32 KiB early; preallocation reaches only 4 KiB ahead: without
    // running further ahead for a segment that stops early, its file would end short and never
    // be recycled.
    const segmentBytes = 65536;
    const opts: SegmentLogOptions = {
      segmentBytes, preallocChunkBytes: 4096, preallocAheadBytes: 4096, recycleSegments: 0,
      rolloverSpreadBytes: segmentBytes / 2, rolloverSeed: 3,
    };
    const bigGroup = (g: number): StoredRecord[] => [makeRecord(2 * g + 1, 3000), makeRecord(2 * g + 2, 3000)];
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, opts);
    for (let g = 0; g < 80; g++) appendGroup(log, bigGroup(g));
    const last = log.durablePosition.segment;
    assert.ok(last > 4);
    let early = 0;
    for (let seg = 1; seg < last; seg++) {
      const bytes = fs.readFile(segPath(DIR, seg));
      assert.equal(bytes.length, segmentBytes, `segment ${seg} file size`);
      if (groupsOf(bytes, seg).at(-1)!.end + 8192 < segmentBytes) early++;
    }
    assert.ok(early > 0, 'some segments stopped well before their end');
    log.close();
  });

  test('rolloverShortfall: a multiple of 8 within the spread, fixed per seed and segment; none without a spread', () => {
    const seen = new Set<number>();
    for (let seg = 1; seg <= 200; seg++) {
      const d = rolloverShortfall(7, seg, 4096);
      assert.ok(d % 8 === 0 && d >= 0 && d <= 4096);
      assert.equal(rolloverShortfall(7, seg, 4096), d);
      assert.equal(rolloverShortfall(7, seg, 0), 0);
      seen.add(d);
    }
    assert.ok(seen.size > 100, 'spread over the range');
    let differ = 0;
    for (let seg = 1; seg <= 100; seg++) if (rolloverShortfall(1, seg, 4096) !== rolloverShortfall(2, seg, 4096)) differ++;
    assert.ok(differ > 90);
  });

  test('rolloverSpreadBytes beyond half a segment, or a negative seed, is refused with the field named', () => {
    assert.throws(() => resolveSegmentLogOptions({ ...OPTS, rolloverSpreadBytes: OPTS.segmentBytes! / 2 + 1 }),
      (e: { code?: string; field?: string }) => e.code === 'PAXLINE_INVALID_OPTION' && e.field === 'rolloverSpreadBytes');
    assert.throws(() => resolveSegmentLogOptions({ ...OPTS, rolloverSeed: -1 }),
      (e: { code?: string; field?: string }) => e.code === 'PAXLINE_INVALID_OPTION' && e.field === 'rolloverSeed');
  });
});
