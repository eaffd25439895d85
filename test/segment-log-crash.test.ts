/**
 * Crash and damage tests of SegmentLog over SimFs.
 *
 * Power loss: at >= 1,000 random cut points (seeds BASE..BASE+999; BASE is 1 unless SEED is set,
 * and every failure names its seed, so `SEED=<n>` replays it first) the log takes random appends,
 * syncs, preallocations and clean closes, then SimFs.crash builds a power-loss image (fsynced
 * bytes, plus random unsynced 4 KiB pages kept, lost or torn at 512 B, plus unsynced creates kept
 * or lost). Recovery must return a prefix of what was appended that holds every record reported
 * durable, and classify the damage as clean or torn tail — never corrupt, since this model has no
 * bit flips. Then more appends, another crash: several rounds per seed. A second property adds
 * injected ENOSPC / EIO faults (retry, recoverAfterFailure) to the same checks. Retention runs
 * too (retireSegmentsBelow up to the durable segment) with a random recycleSegments, so cuts
 * fall inside retirement and inside rollovers onto recycled files: recovery may then start
 * later in the sequence (retired records are gone by design), never past what was retired. A
 * third property leaves retired files for later (removeFilesNow false, as the log stage does)
 * and removes a few at a time, so cuts also fall between a retirement and its files' removal.
 * Half the seeds spread rollovers (rolloverSpreadBytes), so segments also end before they fill.
 *
 * Corruption matrix: each case damages a log on purpose and checks the verdict, the report and
 * the error a user would see; repairable cases also check markRepaired.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FileLayer } from '../src/log/file-layer.js';
import { FORMAT_VERSION, encodeSegmentHeader } from '../src/log/segment-format.js';
import {
  LogError,
  SegmentLog,
  segmentFileName,
  type DamageReason,
  type DamagedRange,
  type OpenedSegmentLog,
  type SegmentLogOptions,
  type StoredRecord,
} from '../src/log/segment-log.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { crc32c } from '../src/util/crc32c.js';
import { Random } from '../src/util/random.js';
import {
  appendGroup,
  describeLog,
  flipBit,
  groupsOf,
  makeRecord,
  plain,
  poke,
  segPath,
  truncateFile,
} from './segment-log-helpers.js';

const DIR = '/data/log';
const BASE_SEED = Number(process.env['SEED'] ?? 1);

function sameRecord(a: StoredRecord, b: StoredRecord): boolean {
  if (a.type !== b.type || a.decree !== b.decree || a.ballot !== b.ballot) return false;
  if (a.payload.length !== b.payload.length) return false;
  for (let i = 0; i < a.payload.length; i++) if (a.payload[i] !== b.payload[i]) return false;
  return true;
}

/**
 * Half the seeds roll over early, as replicas do (segment-log-options.ts rolloverSpreadBytes).
 * Drawn from a generator of their own, so every seed's other choices stay what they were.
 */
function spreadOptions(seed: number, segmentBytes: number): SegmentLogOptions {
  const rng = new Random(seed ^ 0x5bd1e995);
  if (!rng.chance(0.5)) return {};
  return { rolloverSpreadBytes: rng.pick([segmentBytes / 8, segmentBytes / 4, segmentBytes / 2]), rolloverSeed: rng.range(0, 100) };
}

function randomOptions(rng: Random): SegmentLogOptions {
  const segmentBytes = rng.pick([4096, 8192, 16384, 65536]);
  const chunk = rng.pick([4096, 8192]);
  return {
    segmentBytes,
    groupBodyBytesMax: rng.chance(0.3) ? rng.range(200, 2000) : Math.min(4096, segmentBytes - 200),
    preallocChunkBytes: Math.min(chunk, segmentBytes),
    preallocAheadBytes: Math.min(segmentBytes, rng.pick([0, 4096, 8192, 16384])),
    preallocOnSync: rng.chance(0.7),
    recordPayloadBytesMax: 3500,
    recycleSegments: rng.pick([0, 1, 2, 3]),
    ...spreadOptions(rng.seed, segmentBytes),
  };
}

interface Model {
  rng: Random;
  decree: number;
  appended: StoredRecord[];
  durable: number;
  /** Records [0, retiredLow) are retired for sure; up to retiredHigh may be (a retire ran). */
  retiredLow: number;
  retiredHigh: number;
}

function randomRecord(m: Model): StoredRecord {
  const { rng } = m;
  m.decree += rng.int(3);
  const big = rng.chance(0.08);
  const payload = new Uint8Array(big ? rng.range(2000, 3500) : rng.int(300));
  for (let i = 0; i < payload.length; i += 1 + rng.int(16)) payload[i] = rng.int(256);
  return { type: rng.range(1, 4), decree: m.decree, ballot: rng.int(1000), payload };
}

/**
 * Checks a recovery against the model: the records are appended[off, off + n) for an `off`
 * in [retiredLow, retiredHigh] (retired ones are gone by design), holding every durable one.
 * Returns off + n, the model's new length, after moving its retired bounds to `off`.
 */
function checkRecovery(where: string, m: Model, opened: OpenedSegmentLog): number {
  const { records, report } = opened;
  assert.notEqual(report.kind, 'corrupt', `${where}: ${report.message}`);
  let off = -1;
  if (records.length === 0) off = Math.max(m.retiredLow, Math.min(m.durable, m.retiredHigh));
  for (let k = m.retiredLow; off < 0 && k <= m.retiredHigh && k < m.appended.length; k++) {
    if (sameRecord(records[0]!, m.appended[k]!)) off = k;
  }
  assert.ok(off >= 0, `${where}: first record is not one that may follow the retired ones`);
  const got = `${off + records.length} < ${m.durable}`;
  assert.ok(off + records.length >= m.durable, `${where}: lost durable records (${got})`);
  assert.ok(off + records.length <= m.appended.length, `${where}: phantom records`);
  for (let i = 0; i < records.length; i++) {
    if (!sameRecord(records[i]!, m.appended[off + i]!)) assert.fail(`${where}: record ${i} differs`);
  }
  m.retiredLow = off;
  m.retiredHigh = off;
  return off + records.length;
}

interface Totals {
  crashes: number;
  cutsInSync: number;
  cutsInOpen: number;
  torn: number;
  unsyncedKept: number;
  syncs: number;
  multiSegment: number;
  /** multiSegment recoveries of a log whose rollovers are spread (segments may end early). */
  multiSegmentSpread: number;
  abandoned: number;
  faults: number;
  retires: number;
  /** removeRetiredFiles calls that removed files a deferred retirement left. */
  deferredRemovals: number;
  recycled: number;
}

function newTotals(): Totals {
  return {
    crashes: 0, cutsInSync: 0, cutsInOpen: 0, torn: 0, unsyncedKept: 0, syncs: 0,
    multiSegment: 0, multiSegmentSpread: 0, abandoned: 0, faults: 0, retires: 0, deferredRemovals: 0, recycled: 0,
  };
}

class PowerCut extends Error {}

/** Whether `e` is, or was caused by, a power cut (the log wraps file errors in LogError). */
function isPowerCut(e: unknown): boolean {
  for (let x = e; x instanceof Error; x = x.cause) if (x instanceof PowerCut) return true;
  return false;
}

/**
 * A FileLayer over a SimFs that loses power at a chosen operation: the `cutAfter`-th mutating
 * call throws PowerCut before it takes effect, and the caller then crashes the SimFs. So cut
 * points fall between a group's write and its fdatasync, between a new segment's creation and the
 * directory fsync, in the middle of recovery's own cut and metadata update, and so on.
 */
class CutFs implements FileLayer {
  cutAfter = Infinity;
  /** After the cut every call fails, until the test crashes the SimFs and calls revive(). */
  private dead = false;
  constructor(readonly sim: SimFs) {}
  revive(): void {
    this.dead = false;
    this.cutAfter = Infinity;
  }
  private tick(): void {
    if (this.dead || --this.cutAfter <= 0) {
      this.dead = true;
      throw new PowerCut('power cut');
    }
  }
  private alive(): void {
    if (this.dead) throw new PowerCut('power cut');
  }
  open(path: string, options: { readonly create: boolean }): number {
    this.alive();
    if (options.create && !this.sim.exists(path)) this.tick();
    return this.sim.open(path, options);
  }
  pwrite(fd: number, data: Uint8Array, position: number): void {
    this.tick();
    this.sim.pwrite(fd, data, position);
  }
  read(fd: number, into: Uint8Array, length: number, position: number): number {
    this.alive();
    return this.sim.read(fd, into, length, position);
  }
  fdatasync(fd: number): void {
    this.tick();
    this.sim.fdatasync(fd);
  }
  size(fd: number): number {
    this.alive();
    return this.sim.size(fd);
  }
  truncate(fd: number, length: number): void {
    this.tick();
    this.sim.truncate(fd, length);
  }
  close(fd: number): void {
    if (!this.dead) this.sim.close(fd);
  }
  rename(from: string, to: string): void {
    this.tick();
    this.sim.rename(from, to);
  }
  unlink(path: string): void {
    this.tick();
    this.sim.unlink(path);
  }
  fsyncDir(dir: string): void {
    this.tick();
    this.sim.fsyncDir(dir);
  }
  mkdirp(dir: string): void {
    this.alive();
    this.sim.mkdirp(dir);
  }
  readdir(dir: string): string[] {
    this.alive();
    return this.sim.readdir(dir);
  }
  exists(path: string): boolean {
    this.alive();
    return this.sim.exists(path);
  }
}

/** Opens the log, possibly losing power during recovery itself (then crashing and retrying). */
function openWithCuts(
  fs: CutFs,
  options: SegmentLogOptions,
  m: Model,
  totals: Totals,
): OpenedSegmentLog {
  for (let attempt = 0; ; attempt++) {
    fs.cutAfter = attempt < 2 && m.rng.chance(0.15) ? m.rng.range(1, 8) : Infinity;
    try {
      const opened = SegmentLog.open(fs, DIR, options);
      fs.cutAfter = Infinity;
      return opened;
    } catch (e) {
      if (!isPowerCut(e)) throw e;
      totals.cutsInOpen++;
      fs.sim.crash(m.rng);
      fs.revive();
      totals.crashes++;
    }
  }
}

function powerLossRun(seed: number, totals: Totals, faults: boolean, deferRemoval = false): void {
  const rng = new Random(seed);
  const options = randomOptions(rng);
  const fs = new CutFs(new SimFs());
  const m: Model = { rng, decree: 0, appended: [], durable: 0, retiredLow: 0, retiredHigh: 0 };
  let { log } = SegmentLog.open(fs, DIR, options);
  const rounds = rng.range(2, 4);
  for (let round = 0; round < rounds; round++) {
    const where = `seed ${seed} round ${round}`;
    const steps = rng.range(0, 40);
    fs.cutAfter = rng.chance(0.85) ? rng.range(1, 12) : Infinity;
    try {
      let open = true;
      for (let step = 0; step < steps && open; step++) {
        const roll = rng.next();
        if (roll < 0.25) {
          if (faults && rng.chance(0.3)) {
            totals.faults++;
            const op = rng.chance(0.5) ? 'pwrite' : 'fdatasync';
            fs.sim.failNext(op, rng.chance(0.5) ? 'ENOSPC' : 'EIO');
          }
          syncWithFaults(log, m, where, faults, fs.sim);
          totals.syncs++;
        } else if (roll < 0.27) {
          log.preallocate();
        } else if (deferRemoval && roll < 0.45) {
          // More retention than the other runs: retire, or remove some of what waits.
          if (log.retiredFilesPending && rng.chance(0.5)) removeSomeRetired(log, m, totals);
          else retire(log, m, totals, true);
        } else if (roll < 0.35) {
          retire(log, m, totals, deferRemoval);
        } else if (roll < 0.36 && !faults) {
          log.sync();
          m.durable = m.appended.length;
          log.close();
          open = false;
        } else {
          const r = randomRecord(m);
          log.appendRecord(r);
          m.appended.push(r);
        }
      }
    } catch (e) {
      if (!isPowerCut(e)) throw e;
      totals.cutsInSync++;
    }
    totals.recycled += log.stats.segmentsRecycled;
    fs.sim.crash(rng);
    fs.revive();
    totals.crashes++;
    const opened = openWithCuts(fs, options, m, totals);
    const kept = checkRecovery(where, m, opened);
    if (opened.report.kind === 'tornTail') totals.torn++;
    if (kept > m.durable) totals.unsyncedKept++;
    if (opened.report.segments > 1) totals.multiSegment++;
    if (opened.report.segments > 1 && (options.rolloverSpreadBytes ?? 0) > 0) totals.multiSegmentSpread++;
    if (opened.report.groupsAbandoned > 0) totals.abandoned++;
    m.appended = m.appended.slice(0, kept);
    m.durable = kept;
    log = opened.log;
  }
}

/** Retention: retires every segment below the durable one (records there may go). */
function retire(log: SegmentLog, m: Model, totals: Totals, deferRemoval: boolean): void {
  const below = log.durablePosition.segment;
  if (below <= log.firstSegment || log.damagedRanges.length > 0) return;
  m.retiredHigh = Math.max(m.retiredHigh, m.durable);
  totals.retires++;
  try {
    // deferRemoval: the files are left for later (as the log stage does) and removed a few at a
    // time by later steps — so cuts also fall between a retirement and its files' removal.
    log.retireSegmentsBelow(below, { removeFilesNow: !deferRemoval });
  } catch (e) {
    if (isPowerCut(e) || !(e instanceof LogError)) throw e;
    // Injected disk errors: retirement is retried by a later call, or by the next open.
  }
}

/** Removes a few of the files a deferred retirement left (removeRetiredFiles). */
function removeSomeRetired(log: SegmentLog, m: Model, totals: Totals): void {
  try {
    if (log.removeRetiredFiles(m.rng.range(1, 3)).length > 0) totals.deferredRemovals++;
  } catch (e) {
    if (isPowerCut(e) || !(e instanceof LogError)) throw e;
  }
}

/** sync(), handling injected faults the way a caller must; keeps the model's durable count. */
function syncWithFaults(
  log: SegmentLog,
  m: Model,
  where: string,
  faults: boolean,
  sim: SimFs,
): void {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      if (log.failed !== null) log.recoverAfterFailure();
      else log.sync();
      assert.equal(log.durableSeq, log.appendedSeq, where);
      m.durable = m.appended.length;
      return;
    } catch (e) {
      if (!faults || !(e instanceof LogError) || isPowerCut(e)) throw e;
      assert.ok(
        ['PAXLINE_DISK_FULL', 'PAXLINE_FSYNC_FAILED', 'PAXLINE_WRITE_FAILED'].includes(e.code),
        `${where}: ${e.code} ${e.message}`,
      );
      // Sometimes the disk stays sick for another attempt.
      if (m.rng.chance(0.3)) sim.failNext(m.rng.chance(0.5) ? 'pwrite' : 'fdatasync', 'EIO');
    }
  }
}

describe('SegmentLog power loss', () => {
  test('1,000 random cut points: no durable record lost, none invented, never "corrupt"', () => {
    const runs = 1_000;
    const totals = newTotals();
    for (let seed = BASE_SEED; seed < BASE_SEED + runs; seed++) powerLossRun(seed, totals, false);
    // Guard against a vacuous property: crashes must tear tails, keep unsynced data, roll over.
    const summary = JSON.stringify(totals);
    assert.ok(totals.crashes >= 2 * runs, summary);
    assert.ok(totals.cutsInSync > runs, summary);
    assert.ok(totals.cutsInOpen > runs / 10, summary);
    assert.ok(totals.torn > runs / 20, summary);
    assert.ok(totals.unsyncedKept > runs / 10, summary);
    assert.ok(totals.multiSegment > runs / 10, summary);
    assert.ok(totals.multiSegmentSpread > runs / 20, summary);
    assert.ok(totals.syncs > 5 * runs, summary);
    assert.ok(totals.retires > runs / 10, summary);
    assert.ok(totals.recycled > runs / 100, summary);
  });

  test('1,000 cut points with retired files removed later (retireSegmentsBelow removeFilesNow false)', () => {
    const runs = 1_000;
    const totals = newTotals();
    for (let seed = BASE_SEED + 50_000; seed < BASE_SEED + 50_000 + runs; seed++) powerLossRun(seed, totals, false, true);
    const summary = JSON.stringify(totals);
    assert.ok(totals.crashes >= 2 * runs, summary);
    assert.ok(totals.retires > runs / 20, summary);
    assert.ok(totals.deferredRemovals > runs / 100, summary);
  });

  test('300 cut points with injected ENOSPC / EIO on writes and fdatasync', () => {
    const runs = 300;
    const totals = newTotals();
    for (let seed = BASE_SEED + 100_000; seed < BASE_SEED + 100_000 + runs; seed++) {
      powerLossRun(seed, totals, true);
    }
    const summary = JSON.stringify(totals);
    assert.ok(totals.faults > runs, summary);
    assert.ok(totals.abandoned > 0, summary);
  });
});

// ─── corruption matrix ───────────────────────────────────────────────────────────────────────

/** The damaged range a report should hold. */
function damage(
  segment: number,
  offsetFrom: number,
  offsetTo: number,
  reason: DamageReason,
): DamagedRange {
  return { segment, fileName: segmentFileName(segment), offsetFrom, offsetTo, reason };
}

/** Enough groups of groupRecords() to fill several SMALL segments. */
const MANY = 120;

const SMALL: SegmentLogOptions = {
  segmentBytes: 8192, preallocChunkBytes: 4096, preallocAheadBytes: 4096,
};

/** Group g (0-based) holds decrees 2g+1 and 2g+2. */
function groupRecords(g: number): StoredRecord[] {
  return [makeRecord(2 * g + 1, 40 + g), makeRecord(2 * g + 2, 60 + g)];
}

function writeGroups(fs: SimFs, count: number, options: SegmentLogOptions = SMALL): SegmentLog {
  const { log } = SegmentLog.open(fs, DIR, options);
  for (let g = 0; g < count; g++) appendGroup(log, groupRecords(g));
  return log;
}

function recordsOf(groups: readonly number[]): StoredRecord[] {
  return groups.flatMap(groupRecords);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

describe('SegmentLog corruption matrix', () => {
  test('torn tail: a half-written last group is cut, earlier records kept, appends resume', () => {
    const fs = new SimFs();
    const log = writeGroups(fs, 3);
    for (const r of groupRecords(3)) log.appendRecord(r);
    fs.failNext('fdatasync', 'EIO'); // group 3 reaches the page cache only
    assert.throws(() => log.sync(), { code: 'PAXLINE_FSYNC_FAILED' });
    const path = segPath(DIR, 1);
    const g3 = groupsOf(fs.readFile(path))[3]!;
    const half = g3.position + Math.floor((g3.end - g3.position) / 2);
    poke(fs, path, half, new Uint8Array(g3.end - half)); // power loss tore it
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const { report } = opened;
    assert.equal(report.kind, 'tornTail', report.message);
    assert.ok(report.bytesCut > 0 && report.bytesCut <= half - g3.position, report.message);
    assert.match(report.message, /cut a torn tail of \d+ bytes \(never acknowledged\)/);
    assert.equal(report.error, null);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2])));
    assert.deepEqual(report.durable, { segment: 1, offset: g3.position });
    assert.ok(fs.readFile(path).subarray(g3.position).every((b) => b === 0), 'tail zeroed');
    appendGroup(opened.log, groupRecords(9));
    opened.log.close();
    const again = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(again.report.kind, 'clean');
    assert.deepEqual(plain(again.records), plain(recordsOf([0, 1, 2, 9])));
  });

  test('zeroed tail past the durable frontier: an unacknowledged group that never landed', () => {
    const fs = new SimFs();
    const log = writeGroups(fs, 3);
    for (const r of groupRecords(3)) log.appendRecord(r);
    fs.failNext('fdatasync', 'EIO');
    assert.throws(() => log.sync(), { code: 'PAXLINE_FSYNC_FAILED' });
    const path = segPath(DIR, 1);
    const g3 = groupsOf(fs.readFile(path))[3]!;
    poke(fs, path, g3.position, new Uint8Array(g3.end - g3.position));
    const opened = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.equal(opened.report.bytesCut, 0);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2])));
  });

  test('zeroed tail below the durable floor (after a clean close): corrupt, never cut', () => {
    const fs = new SimFs();
    writeGroups(fs, 5).close(); // close records the floor: everything up to group 4 is durable
    const path = segPath(DIR, 1);
    const groups = groupsOf(fs.readFile(path));
    const [g3, g4] = [groups[3]!, groups[4]!];
    poke(fs, path, g3.position, new Uint8Array(g4.end - g3.position));
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const { report } = opened;
    assert.equal(report.kind, 'corrupt', report.message);
    assert.deepEqual(report.damaged, [
      damage(1, g3.position, g4.end, 'header'),
    ]);
    assert.equal(report.repairDecreeMax, 10);
    assert.ok(report.error instanceof LogError);
    assert.equal(report.error.code, 'PAXLINE_LOG_CORRUPT');
    assert.equal(report.error.file, path);
    assert.equal(report.error.offset, g3.position);
    const listed = `seg-00000001\\.plog \\[${g3.position}, ${g4.end}\\) header`;
    assert.match(report.error.message, new RegExp(listed));
    assert.match(report.error.message, /Nothing was truncated/);
    assert.match(report.error.message, /decrees up to 10/);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2])));
    // Appends go to a fresh segment; the damaged bytes stay as they are.
    appendGroup(opened.log, groupRecords(7));
    assert.ok(fs.exists(segPath(DIR, 2)));
    const again = SegmentLog.open(fs, DIR, SMALL); // a crash-restart: no close
    assert.equal(again.report.kind, 'corrupt', 'still corrupt until repaired');
    assert.deepEqual(again.report.damaged, report.damaged);
    assert.deepEqual(plain(again.records), plain(recordsOf([0, 1, 2, 7])));
    // The caller refetches decrees <= repairDecreeMax from peers, appends them, marks repaired.
    appendGroup(again.log, recordsOf([3, 4]));
    assert.equal(again.log.markRepaired(), 1);
    assert.deepEqual(again.log.damagedRanges, []);
    again.log.close();
    const repaired = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(repaired.report.kind, 'clean', repaired.report.message);
    assert.deepEqual(plain(repaired.records), plain(recordsOf([0, 1, 2, 7, 3, 4])));
  });

  test('bit flip in a record before the durable frontier: corrupt, later records kept', () => {
    const fs = new SimFs();
    writeGroups(fs, 5); // no close: the proof comes from later groups' frontiers
    const path = segPath(DIR, 1);
    const groups = groupsOf(fs.readFile(path));
    const [g1, g2] = [groups[1]!, groups[2]!];
    flipBit(fs, path, g1.position + 56 + 25 + 10, 3); // inside the first record's payload
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const { report } = opened;
    assert.equal(report.kind, 'corrupt', report.message);
    assert.deepEqual(report.damaged, [
      damage(1, g1.position, g2.position, 'checksum'),
    ]);
    // Lost records are about decrees 3 and 4; the bound is the log's high-water mark.
    assert.equal(report.repairDecreeMax, 10);
    assert.equal(report.error?.code, 'PAXLINE_LOG_CORRUPT');
    assert.match(report.message, /CORRUPT/);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 2, 3, 4])));
    // Appending continues after the last valid group, in the same segment.
    appendGroup(opened.log, groupRecords(5));
    assert.deepEqual(groupsOf(fs.readFile(path)).at(-1)!.header.seq, 6);
    const again = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(again.report.kind, 'corrupt');
    assert.deepEqual(again.report.damaged, report.damaged);
    assert.deepEqual(plain(again.records), plain(recordsOf([0, 2, 3, 4, 5])));
    appendGroup(again.log, groupRecords(1));
    again.log.markRepaired();
    again.log.close();
    const repaired = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(repaired.report.kind, 'clean', repaired.report.message);
    assert.deepEqual(plain(repaired.records), plain(recordsOf([0, 2, 3, 4, 5, 1])));
  });

  test('bit flip in a group header before the durable frontier: corrupt, found by search', () => {
    const fs = new SimFs();
    writeGroups(fs, 5);
    const path = segPath(DIR, 1);
    const groups = groupsOf(fs.readFile(path));
    flipBit(fs, path, groups[2]!.position + 17, 1); // the group sequence number
    const opened = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(opened.report.kind, 'corrupt', opened.report.message);
    assert.deepEqual(opened.report.damaged, [
      damage(1, groups[2]!.position, groups[3]!.position, 'header'),
    ]);
    assert.equal(opened.report.repairDecreeMax, 10);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 3, 4])));
  });

  test('truncated segment in the middle: corrupt, range up to the proven end', () => {
    const fs = new SimFs();
    writeGroups(fs, MANY).close();
    const names = fs.readdir(DIR).filter((n) => n.startsWith('seg-'));
    assert.ok(names.length >= 4, names.join(' '));
    const path = segPath(DIR, 2);
    const seg2 = groupsOf(fs.readFile(path));
    const lastOf2 = seg2.at(-1)!;
    truncateFile(fs, path, lastOf2.position + 20);
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const { report } = opened;
    assert.equal(report.kind, 'corrupt', report.message);
    assert.deepEqual(report.damaged, [
      damage(2, lastOf2.position, lastOf2.end, 'truncated'),
    ]);
    assert.match(report.error!.message, /seg-00000002\.plog \[\d+, \d+\) truncated/);
    const lostGroup = (lastOf2.header.highDecree - 2) / 2;
    assert.deepEqual(
      plain(opened.records),
      plain(recordsOf(range(0, MANY).filter((g) => g !== lostGroup))),
    );
    assert.equal(report.repairDecreeMax, 2 * MANY);
    appendGroup(opened.log, groupRecords(lostGroup));
    opened.log.markRepaired();
    opened.log.close();
    assert.equal(SegmentLog.open(fs, DIR, SMALL).report.kind, 'clean');
  });

  test('truncated last segment after a clean close: corrupt (the floor proves it)', () => {
    const fs = new SimFs();
    writeGroups(fs, 6).close();
    const path = segPath(DIR, 1);
    const groups = groupsOf(fs.readFile(path));
    truncateFile(fs, path, groups[4]!.position);
    const opened = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(opened.report.kind, 'corrupt', opened.report.message);
    assert.deepEqual(opened.report.damaged, [
      damage(1, groups[4]!.position, groups[5]!.end, 'truncated'),
    ]);
    assert.equal(opened.report.repairDecreeMax, 12);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2, 3])));
  });

  test('missing segment in the middle: corrupt, later segments kept, repair recreates it', () => {
    const fs = new SimFs();
    writeGroups(fs, MANY).close();
    const seg2 = groupsOf(fs.readFile(segPath(DIR, 2)));
    const lost = seg2.map((g) => (g.header.highDecree - 2) / 2);
    fs.unlink(segPath(DIR, 2));
    fs.fsyncDir(DIR);
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const { report } = opened;
    assert.equal(report.kind, 'corrupt', report.message);
    assert.deepEqual(report.damaged, [
      damage(2, 0, seg2.at(-1)!.end, 'missing'),
    ]);
    assert.match(report.error!.message, /seg-00000002\.plog \[0, \d+\) missing/);
    const kept = range(0, MANY).filter((g) => !lost.includes(g));
    assert.deepEqual(plain(opened.records), plain(recordsOf(kept)));
    appendGroup(opened.log, recordsOf(lost));
    opened.log.markRepaired();
    assert.ok(fs.exists(segPath(DIR, 2)), 'recreated');
    opened.log.close();
    const repaired = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(repaired.report.kind, 'clean', repaired.report.message);
    assert.equal(repaired.records.length, 2 * MANY);
  });

  test('wrong magic in a segment header: corrupt (header only), every record kept', () => {
    const fs = new SimFs();
    writeGroups(fs, MANY).close();
    poke(fs, segPath(DIR, 2), 0, new TextEncoder().encode('JUNK'));
    const opened = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(opened.report.kind, 'corrupt', opened.report.message);
    assert.deepEqual(opened.report.damaged, [
      damage(2, 0, 32, 'segmentHeader'),
    ]);
    assert.deepEqual(plain(opened.records), plain(recordsOf(range(0, MANY))));
    opened.log.markRepaired();
    opened.log.close();
    const repaired = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(repaired.report.kind, 'clean', repaired.report.message);
    assert.equal(repaired.records.length, 2 * MANY);
  });

  test('unsupported format version: refuses to open, naming the file; nothing changes', () => {
    const fs = new SimFs();
    writeGroups(fs, MANY).close();
    const header = encodeSegmentHeader(2, 1, 8192);
    header[4] = FORMAT_VERSION + 1; // a later version ...
    const view = new DataView(header.buffer);
    // ... with a valid checksum, as a newer paxline would write it.
    view.setUint32(28, crc32c(header.subarray(0, 28)), true);
    poke(fs, segPath(DIR, 2), 0, header);
    const before = fs.readdir(DIR).map((n) => [n, [...fs.readFile(`${DIR}/${n}`)]]);
    assert.throws(
      () => SegmentLog.open(fs, DIR, SMALL),
      (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_LOG_VERSION' &&
        e.file === segPath(DIR, 2) &&
        e.message.includes(
          `format version ${FORMAT_VERSION + 1}; this paxline reads version ${FORMAT_VERSION}`,
        ),
    );
    assert.deepEqual(fs.readdir(DIR).map((n) => [n, [...fs.readFile(`${DIR}/${n}`)]]), before);
  });

  test('onCorruption "refuse": throws PAXLINE_LOG_CORRUPT and changes nothing', () => {
    const fs = new SimFs();
    writeGroups(fs, 5);
    const path = segPath(DIR, 1);
    flipBit(fs, path, groupsOf(fs.readFile(path))[1]!.position + 100);
    const meta = [...fs.readFile(`${DIR}/log.meta`)];
    assert.throws(
      () => SegmentLog.open(fs, DIR, { ...SMALL, onCorruption: 'refuse' }),
      (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_LOG_CORRUPT' && e.file === path,
    );
    assert.deepEqual([...fs.readFile(`${DIR}/log.meta`)], meta);
  });

  test('metadata: one damaged slot falls back to the other; both damaged refuses', () => {
    const fs = new SimFs();
    writeGroups(fs, 3).close();
    const opened = SegmentLog.open(fs, DIR, SMALL);
    const epoch = opened.log.epoch;
    opened.log.close();
    // The newest slot is damaged: the older one (same epoch, older floor) still opens the log.
    flipBit(fs, `${DIR}/log.meta`, ((epoch + 1) % 2) * 512 + 9);
    const older = SegmentLog.open(fs, DIR, SMALL);
    assert.equal(older.report.kind, 'clean');
    assert.ok(older.log.epoch >= epoch);
    older.log.close();
    poke(fs, `${DIR}/log.meta`, 0, new Uint8Array(1024));
    const lost = (e: unknown): boolean =>
      e instanceof LogError && e.code === 'PAXLINE_LOG_CORRUPT' && e.file === `${DIR}/log.meta` &&
      /both of its slots are damaged/.test(e.message);
    assert.throws(() => SegmentLog.open(fs, DIR, SMALL), lost);
    fs.unlink(`${DIR}/log.meta`);
    assert.throws(() => SegmentLog.open(fs, DIR, SMALL), lost);
    assert.ok(!fs.exists(`${DIR}/log.meta`), 'refusing creates nothing');
  });
});

interface GroupAt {
  readonly segment: number;
  readonly position: number;
  readonly end: number;
  readonly frontier: readonly [number, number];
  readonly records: StoredRecord[];
}

function after(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] !== b[0] ? a[0] > b[0] : a[1] > b[1];
}

/**
 * One random bit flip anywhere in a synced log (closed cleanly when `closed`, so the floor covers
 * its end). The verdict must be clean/tornTail with nothing lost but a torn suffix (only possible
 * without the floor), or corrupt with the flipped byte inside a reported range, exactly the records
 * of damaged groups lost, and repairDecreeMax covering them; after re-appending and markRepaired
 * the next open is clean and complete.
 */
function bitFlipRun(seed: number, closed: boolean, tally: Map<string, number>): void {
  const rng = new Random(seed);
  const where = `seed ${seed}`;
  const options = randomOptions(rng);
  const fs = new SimFs();
  const m: Model = { rng, decree: 0, appended: [], durable: 0, retiredLow: 0, retiredHigh: 0 };
  const { log } = SegmentLog.open(fs, DIR, options);
  const syncs = rng.range(1, 25);
  for (let i = 0; i < syncs; i++) {
    for (let n = rng.range(1, 6); n > 0; n--) {
      const r = randomRecord(m);
      log.appendRecord(r);
      m.appended.push(r);
    }
    log.sync();
  }
  if (closed) log.close();
  // Map every group of the intact log to its records.
  const groups: GroupAt[] = [];
  let next = 0;
  const names = fs.readdir(DIR).filter((n) => n.startsWith('seg-')).sort();
  for (const name of names) {
    const segment = Number(name.slice(4, 12));
    for (const g of groupsOf(fs.readFile(`${DIR}/${name}`))) {
      const records = m.appended.slice(next, next + g.header.recordCount);
      next += g.header.recordCount;
      const frontier = [g.header.frontierSegment, g.header.frontierEnd] as const;
      groups.push({ segment, position: g.position, end: g.end, frontier, records });
    }
  }
  assert.equal(next, m.appended.length, `${where}: group walk`);
  const name = rng.pick(names);
  const segment = Number(name.slice(4, 12));
  const size = fs.readFile(`${DIR}/${name}`).length;
  const chainEnd = Math.max(0, ...groups.filter((g) => g.segment === segment).map((g) => g.end));
  const at = rng.chance(0.9) ? rng.int(Math.max(1, chainEnd)) : rng.int(size);
  flipBit(fs, `${DIR}/${name}`, at, rng.int(8));
  const opened = SegmentLog.open(fs, DIR, options);
  const { report, records } = opened;
  tally.set(report.kind, (tally.get(report.kind) ?? 0) + 1);
  if (report.kind !== 'corrupt') {
    // Undetected flips are harmless (padding, slack); a torn "tail" may only lose groups that no
    // later header proves durable (those of the last sync).
    const lost = m.appended.length - records.length;
    if (lost > 0) {
      assert.equal(report.kind, 'tornTail', `${where}: lost records but ${report.kind}`);
      assert.ok(!closed, `${where}: the floor should have proven the damage`);
      const proven = groups.reduce<readonly [number, number]>(
        (p, g) => (after(g.frontier, p) ? g.frontier : p), [0, 0],
      );
      let index = 0;
      const cut = groups.filter((g) => (index += g.records.length) > records.length);
      assert.ok(cut.every((g) => after([g.segment, g.end], proven)), 
        `${where}: cut a proven group: flipped ${name}@${at}, proven ${String(proven)}, ` +
          `${report.message}\n${describeLog(fs, DIR)}`);
    }
    assert.deepEqual(plain(records), plain(m.appended.slice(0, records.length)), where);
    opened.log.close();
    return;
  }
  const inRange = report.damaged.some(
    (r) => r.segment === segment && r.offsetFrom <= at && at < r.offsetTo,
  );
  const ranges = JSON.stringify(report.damaged);
  assert.ok(inRange, `${where}: flipped byte ${name}@${at} not in ${ranges}`);
  const damagedGroup = (g: GroupAt): boolean =>
    report.damaged.some(
      (r) => r.segment === g.segment && r.offsetFrom < g.end && g.position < r.offsetTo,
    );
  const lost = groups.filter(damagedGroup).flatMap((g) => g.records);
  const kept = groups.filter((g) => !damagedGroup(g)).flatMap((g) => g.records);
  assert.deepEqual(plain(records), plain(kept), `${where}: records outside the damage`);
  for (const r of lost) assert.ok(r.decree <= report.repairDecreeMax, `${where}: repairDecreeMax`);
  for (const r of lost) opened.log.appendRecord(r);
  opened.log.sync();
  opened.log.markRepaired();
  opened.log.close();
  const repaired = SegmentLog.open(fs, DIR, options);
  assert.equal(
    repaired.report.kind,
    'clean',
    `${where}: after repair: ${repaired.report.message}\nflipped ${name}@${at}; before: ` +
      `${JSON.stringify(report.damaged)}\n${describeLog(fs, DIR)}`,
  );
  assert.deepEqual(plain(repaired.records), plain([...kept, ...lost]), `${where}: after repair`);
  repaired.log.close();
}

describe('SegmentLog random bit flips', () => {
  for (const closed of [true, false]) {
    const how = closed ? 'closed: floor at the end' : 'not closed';
    test(`300 random single-bit flips in a synced log (${how})`, () => {
      const tally = new Map<string, number>();
      const base = BASE_SEED + (closed ? 200_000 : 300_000);
      for (let seed = base; seed < base + 300; seed++) bitFlipRun(seed, closed, tally);
      assert.ok((tally.get('corrupt') ?? 0) > 150, JSON.stringify([...tally]));
    });
  }
});

describe('SegmentLog disk errors', () => {
  const OPTS: SegmentLogOptions = { ...SMALL, preallocOnSync: false };

  test('fsync failure: stop, then continue in a fresh segment; nothing durable lost', () => {
    let sawAbandoned = false;
    for (let seed = 1; seed <= 40; seed++) {
      const fs = new SimFs();
      const log = writeGroups(fs, 2, OPTS);
      for (const r of groupRecords(2)) log.appendRecord(r);
      fs.failNext('fdatasync', 'EIO');
      assert.throws(
        () => log.sync(),
        (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_FSYNC_FAILED' &&
          e.file === segPath(DIR, 1) && /recoverAfterFailure/.test(e.message),
      );
      assert.equal(log.durableSeq, 4);
      assert.equal(log.failed?.code, 'PAXLINE_FSYNC_FAILED');
      assert.throws(() => log.sync(), { code: 'PAXLINE_LOG_FAILED' });
      for (const r of groupRecords(3)) log.appendRecord(r); // still accepted, kept in memory
      assert.equal(log.recoverAfterFailure(), 8);
      assert.equal(log.failed, null);
      assert.ok(fs.exists(segPath(DIR, 2)), 'rewritten into a fresh segment');
      appendGroup(log, groupRecords(4));
      const crashed = fs.clone();
      crashed.crash(new Random(seed));
      for (const image of [fs, crashed]) {
        const opened = SegmentLog.open(image, DIR, OPTS);
        assert.notEqual(opened.report.kind, 'corrupt', `seed ${seed}: ${opened.report.message}`);
        assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2, 3, 4])), `seed ${seed}`);
        if (opened.report.groupsAbandoned > 0) sawAbandoned = true;
      }
    }
    assert.ok(sawAbandoned, 'the abandoned group was seen and dropped at least once');
  });

  test('ENOSPC on write: nothing acknowledged lost; the retry succeeds when space returns', () => {
    const fs = new SimFs();
    const log = writeGroups(fs, 2, OPTS);
    for (const r of groupRecords(2)) log.appendRecord(r);
    fs.failNext('pwrite', 'ENOSPC');
    assert.throws(
      () => log.sync(),
      (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_DISK_FULL' &&
        e.file === segPath(DIR, 1) && e.offset !== null && /retry sync\(\)/.test(e.message),
    );
    assert.equal(log.durableSeq, 4);
    assert.equal(log.failed, null, 'a full disk does not stop the log');
    for (const r of groupRecords(3)) log.appendRecord(r);
    assert.equal(log.sync(), 8);
    log.close();
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2, 3])));
  });

  test('ENOSPC creating the next segment: the frozen layout is retried byte for byte', () => {
    const fs = new SimFs();
    const log = writeGroups(fs, 1, OPTS);
    // Fill segment 1 to the brim, then fail the write that opens segment 2.
    let g = 1;
    while (!fs.exists(segPath(DIR, 2))) {
      for (const r of groupRecords(g)) log.appendRecord(r);
      if (g % 2 === 0) fs.failNext('pwrite', 'ENOSPC');
      try {
        log.sync();
      } catch (e) {
        assert.equal((e as LogError).code, 'PAXLINE_DISK_FULL');
      }
      g++;
    }
    log.sync();
    assert.equal(log.durableSeq, log.appendedSeq);
    log.close();
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(plain(opened.records), plain(recordsOf(range(0, g))));
  });

  test('ENOSPC from fdatasync: PAXLINE_DISK_FULL, the log stops until recoverAfterFailure', () => {
    const fs = new SimFs();
    const log = writeGroups(fs, 2, OPTS);
    for (const r of groupRecords(2)) log.appendRecord(r);
    fs.failNext('fdatasync', 'ENOSPC');
    assert.throws(() => log.sync(), { code: 'PAXLINE_DISK_FULL' });
    assert.equal(log.failed?.code, 'PAXLINE_DISK_FULL');
    assert.throws(() => log.sync(), { code: 'PAXLINE_LOG_FAILED' });
    assert.equal(log.recoverAfterFailure(), 6);
    log.close();
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.equal(opened.report.groupsAbandoned, 1);
    assert.deepEqual(plain(opened.records), plain(recordsOf([0, 1, 2])));
  });
});
