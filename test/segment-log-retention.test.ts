/**
 * Retiring segments of an open SegmentLog (retention), and the disk errors of open() and of a
 * preallocation: the fixes for the three problems found in review of issue 3.
 *
 *  - retireSegmentsBelow advances the first segment in log.meta durably before deleting
 *    anything, so the next open reads the kept records cleanly (the repro: 40 records of 900 B in
 *    8 KiB segments, checkpoint 30, membersLowDecree 31 → segments 1–3 deleted), frees the files
 *    and their descriptors, and survives power loss at any FileLayer call (≥ 200 seeded cuts);
 *  - open() maps its own disk errors to coded LogErrors naming file and offset;
 *  - ENOSPC from the fdatasync of preallocated zeros surfaces as PAXLINE_DISK_FULL from the
 *    next sync().
 * Seeds: SEED=n replays the power-loss property from seed n.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FileLayer } from '../src/log/file-layer.js';
import { executeRetention, planRetention } from '../src/log/retention.js';
import {
  LogError,
  SegmentLog,
  segmentFileName,
  type SegmentLogOptions,
  type StoredRecord,
} from '../src/log/segment-log.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';
import { appendGroup, makeRecord, plain, poke, segPath } from './segment-log-helpers.js';

const DIR = '/data/log';
const BASE_SEED = Number(process.env['SEED'] ?? 1);
const POWER_CUTS = 240;
const OPTS: SegmentLogOptions = Object.freeze({
  segmentBytes: 8192,
  preallocChunkBytes: 4096,
  preallocAheadBytes: 4096,
});

/** A FileLayer over `inner` that runs `before(op)` ahead of every call (to cut or fail it). */
function hookedFs(inner: FileLayer, before: (op: string, args: unknown[]) => void): FileLayer {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        before(String(prop), args);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function systemError(code: string, syscall: string): Error {
  return Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });
}

/** Paths of the files that have an open descriptor, tracked through open / close. */
function trackingFs(inner: FileLayer): { fs: FileLayer; openPaths: () => string[] } {
  const paths = new Map<number, string>();
  const fs: FileLayer = Object.assign(Object.create(null) as object, {
    ...bindAll(inner),
    open: (path: string, options: { readonly create: boolean }): number => {
      const fd = inner.open(path, options);
      paths.set(fd, path);
      return fd;
    },
    close: (fd: number): void => {
      inner.close(fd);
      paths.delete(fd);
    },
  }) as FileLayer;
  return { fs, openPaths: () => [...paths.values()].sort() };
}

function bindAll(inner: FileLayer): FileLayer {
  const ops = [
    'open', 'pwrite', 'read', 'fdatasync', 'size', 'truncate', 'close', 'rename', 'unlink',
    'fsyncDir', 'mkdirp', 'readdir', 'exists',
  ] as const;
  const out: Record<string, unknown> = {};
  for (const op of ops) out[op] = (inner[op] as (...a: unknown[]) => unknown).bind(inner);
  return out as unknown as FileLayer;
}

/** The repro's log: 40 records of 900 B, one sync each, in 8 KiB segments (5 segments). */
function writeReproLog(fs: FileLayer): { log: SegmentLog; records: StoredRecord[] } {
  const { log } = SegmentLog.open(fs, DIR, OPTS);
  const records: StoredRecord[] = [];
  for (let decree = 1; decree <= 40; decree++) {
    const r = makeRecord(decree, 900);
    records.push(r);
    appendGroup(log, [r]);
  }
  return { log, records };
}

function reproPlan(log: SegmentLog): ReturnType<typeof planRetention> {
  return planRetention({
    segments: log.segmentSummaries(),
    checkpointDecrees: [30],
    keepCheckpoints: 1,
    membersLowDecree: 31,
    maxLogBytes: 1 << 30,
  });
}

const targets = (log?: SegmentLog): Parameters<typeof executeRetention>[2] => ({
  checkpointDir: '/data/ckpt',
  segmentPath: (n: number) => segPath(DIR, n),
  ...(log === undefined ? {} : { log }),
});

describe('retiring segments of an open log', () => {
  test('repro: after retention through the log, the next open is clean with the kept records', () => {
    const sim = new SimFs();
    const { fs, openPaths } = trackingFs(sim);
    const { log, records } = writeReproLog(fs);
    const plan = reproPlan(log);
    assert.deepEqual(plan.deleteSegments, [1, 2, 3]);
    assert.deepEqual(plan.keepSegments, [4, 5]);
    const result = executeRetention(fs, plan, targets(log));
    assert.deepEqual(result.deletedSegments, [1, 2, 3]);
    assert.deepEqual(result.alreadyGone, []);
    // The files are gone and no descriptor holds them: the space is free.
    for (const n of [1, 2, 3]) assert.equal(sim.exists(segPath(DIR, n)), false, `segment ${n}`);
    assert.ok(openPaths().every((p) => !/seg-0000000[123]/.test(p)), openPaths().join(', '));
    assert.equal(log.firstSegment, 4);
    const kept = records.filter((r) => r.decree >= 25); // segment 4 starts at decree 25
    assert.deepEqual(plain(log.readRecords(0, 100)), plain(kept), 'index dropped retired ones');
    log.close();
    const opened = SegmentLog.open(sim, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(opened.report.segmentsRetired, []);
    assert.deepEqual(plain(opened.records), plain(kept));
    // The log goes on, and a later open still reads it from the first segment.
    appendGroup(opened.log, [makeRecord(41, 900)]);
    opened.log.close();
    const again = SegmentLog.open(sim, DIR, OPTS);
    assert.equal(again.report.kind, 'clean', again.report.message);
    assert.deepEqual(plain(again.records), plain([...kept, makeRecord(41, 900)]));
    again.log.close();
  });

  test('segmentSummaries: decree ranges per segment, kept across appends, reopen and retirement', () => {
    const sim = new SimFs();
    const { log } = writeReproLog(sim); // 8 records of 900 B per 8 KiB segment: 1–8, 9–16, …, 33–40
    appendGroup(log, [makeRecord(3, 900)]); // decree 3 again (a re-accept), in a later segment
    const ranges = (l: SegmentLog): number[][] => l.segmentSummaries().map((x) => [x.segment, x.firstDecree, x.lastDecree]);
    const expected = [[1, 1, 8], [2, 9, 16], [3, 17, 24], [4, 25, 32], [5, 33, 40], [6, 3, 3]];
    assert.deepEqual(ranges(log), expected);
    log.close();
    const opened = SegmentLog.open(sim, DIR, OPTS); // the index rebuilt from the files
    assert.deepEqual(ranges(opened.log), expected);
    opened.log.retireSegmentsBelow(4);
    assert.deepEqual(ranges(opened.log), expected.slice(3), 'retired segments leave no range behind');
    appendGroup(opened.log, [makeRecord(41, 900)]);
    assert.deepEqual(ranges(opened.log), [[4, 25, 32], [5, 33, 40], [6, 3, 41]]);
    opened.log.close();
  });

  test('retirement drops exactly the retired locations from the index: by the retired ranges, or by the index when they are sparse', () => {
    // Ranges walked: segments 1–5 hold 1–8, …, 33–40; decree 3 again in segment 6, which stays.
    {
      const sim = new SimFs();
      const { log } = writeReproLog(sim);
      const again = makeRecord(3, 900);
      appendGroup(log, [again]);
      log.retireSegmentsBelow(6);
      assert.deepEqual(plain(log.readRecords(0, 100)), plain([again]), 'only the re-accepted decree 3 is left');
      log.close();
    }
    // The index walked: segment 1's range is 1 … 1,000,000, far more decrees than the index holds.
    {
      const sim = new SimFs();
      const { log } = SegmentLog.open(sim, DIR, OPTS);
      appendGroup(log, [makeRecord(1, 900), makeRecord(1_000_000, 900)]);
      for (let decree = 2; decree <= 20; decree++) appendGroup(log, [makeRecord(decree, 900)]);
      const [first, second] = log.segmentSummaries();
      assert.deepEqual([first!.firstDecree, first!.lastDecree], [1, 1_000_000]);
      const expected = log.readRecords(second!.firstDecree, 20);
      log.retireSegmentsBelow(second!.segment);
      assert.deepEqual(plain(log.readRecords(0, 2_000_000)), plain(expected));
      log.close();
    }
  });

  test('unlinking behind the log (executeRetention without the log) is what reads as damage', () => {
    const fs = new SimFs();
    const { log } = writeReproLog(fs);
    executeRetention(fs, reproPlan(log), targets());
    log.close();
    const opened = SegmentLog.open(fs, DIR, OPTS);
    assert.equal(opened.report.kind, 'corrupt');
    assert.match(opened.report.message, /seg-00000001\.plog \[0, \d+\) missing/);
    opened.log.close();
  });

  test('refuses the write segment, anything not durable, and bad arguments', () => {
    const fs = new SimFs();
    const { log } = writeReproLog(fs);
    const refused = (segment: number): void =>
      assert.throws(
        () => log.retireSegmentsBelow(segment),
        (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_INVALID_ARGUMENT' &&
          e.field === 'segment',
        `segment ${segment}`,
      );
    refused(6); // would retire segment 5, being written
    refused(0);
    refused(2.5);
    assert.equal(log.durablePosition.segment, 5);
    assert.deepEqual(log.retireSegmentsBelow(5), [1, 2, 3, 4].map(segmentFileName));
    assert.deepEqual(log.retireSegmentsBelow(3), [], 'retiring below the first segment: no-op');
    assert.equal(log.firstSegment, 5);
    log.close();
  });

  test('removeFilesNow false: retired files go later, a few at a time; a crash before loses nothing', () => {
    const sim = new SimFs();
    const { log, records } = writeReproLog(sim);
    const kept = records.filter((r) => r.decree >= 25);
    assert.deepEqual(log.retireSegmentsBelow(4, { removeFilesNow: false }), []);
    assert.equal(log.firstSegment, 4);
    assert.equal(log.retiredFilesPending, true);
    assert.deepEqual(plain(log.readRecords(0, 100)), plain(kept), 'the index already dropped them');
    for (const n of [1, 2, 3]) assert.ok(sim.exists(segPath(DIR, n)), `segment ${n} still on disk`);
    // One file per call, lowest first, until none is left.
    assert.deepEqual(log.removeRetiredFiles(1), [segmentFileName(1)]);
    assert.equal(log.retiredFilesPending, true);
    assert.deepEqual(log.removeRetiredFiles(5), [2, 3].map(segmentFileName));
    assert.equal(log.retiredFilesPending, false);
    assert.deepEqual(log.removeRetiredFiles(1), [], 'nothing left');
    for (const n of [1, 2, 3]) assert.equal(sim.exists(segPath(DIR, n)), false, `segment ${n}`);
    assert.throws(() => log.removeRetiredFiles(0), { code: 'PAXLINE_INVALID_ARGUMENT' });
    log.close();
    const opened = SegmentLog.open(sim, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(plain(opened.records), plain(kept));
    opened.log.close();
    // Power lost before the files went (any crash image): open removes them as garbage.
    for (let seed = 1; seed <= 20; seed++) {
      const cut = new SimFs();
      const w = writeReproLog(cut);
      w.log.retireSegmentsBelow(4, { removeFilesNow: false });
      w.log.removeRetiredFiles(1);
      cut.crash(new Random(seed));
      const after = SegmentLog.open(cut, DIR, OPTS);
      assert.equal(after.report.kind, 'clean', `seed ${seed}: ${after.report.message}`);
      assert.deepEqual(plain(after.records), plain(kept), `seed ${seed}`);
      for (const n of [1, 2, 3]) assert.equal(cut.exists(segPath(DIR, n)), false, `seed ${seed}: segment ${n} gone after open`);
      after.log.close();
    }
  });

  test('a disk error while advancing log.meta retires nothing; a retry completes', () => {
    const sim = new SimFs();
    const { log, records } = writeReproLog(sim);
    sim.failNext('fdatasync', 'ENOSPC');
    assert.throws(() => log.retireSegmentsBelow(4), { code: 'PAXLINE_DISK_FULL' });
    assert.equal(log.firstSegment, 1);
    assert.ok(sim.exists(segPath(DIR, 1)));
    assert.equal(log.readRecords(1, 1).length, 1);
    assert.deepEqual(log.retireSegmentsBelow(4), [1, 2, 3].map(segmentFileName));
    log.close();
    const opened = SegmentLog.open(sim, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(plain(opened.records), plain(records.filter((r) => r.decree >= 25)));
    opened.log.close();
  });

  test('garbage left below the first segment is deleted at open, not reported as damage', () => {
    const sim = new SimFs();
    const { log, records } = writeReproLog(sim);
    let cut = false;
    const fs = hookedFs(sim, (op) => {
      if (op === 'unlink' && !cut) {
        cut = true;
        throw new Error('power cut');
      }
    });
    // Reopen over the hooked layer so the log's own calls go through it.
    log.close();
    const { log: hooked } = SegmentLog.open(fs, DIR, OPTS);
    assert.throws(() => hooked.retireSegmentsBelow(4), /power cut/);
    sim.crash(new Random(7));
    const opened = SegmentLog.open(sim, DIR, OPTS);
    assert.equal(opened.report.kind, 'clean', opened.report.message);
    assert.deepEqual(opened.report.segmentsRetired, [1, 2, 3].map(segmentFileName));
    assert.deepEqual(plain(opened.records), plain(records.filter((r) => r.decree >= 25)));
    for (const n of [1, 2, 3]) assert.equal(sim.exists(segPath(DIR, n)), false);
    opened.log.close();
  });

  test('the first kept segment may be one abandoned after a failed fdatasync', () => {
    for (const below of [3, 4]) {
      const fs = new SimFs();
      const options = { ...OPTS, preallocOnSync: false };
      const { log } = SegmentLog.open(fs, DIR, options);
      for (let decree = 1; decree <= 16; decree++) appendGroup(log, [makeRecord(decree, 900)]);
      assert.equal(log.durablePosition.segment, 2);
      log.appendRecord(makeRecord(17, 900)); // opens segment 3 ...
      fs.failNext('fdatasync', 'EIO'); // ... whose fdatasync fails
      assert.throws(() => log.sync(), { code: 'PAXLINE_FSYNC_FAILED' });
      assert.equal(log.recoverAfterFailure(), 17); // rewritten into segment 4
      assert.equal(log.durablePosition.segment, 4);
      log.retireSegmentsBelow(below);
      log.close();
      const opened = SegmentLog.open(fs, DIR, options);
      assert.equal(opened.report.kind, 'clean', `below ${below}: ${opened.report.message}`);
      assert.deepEqual(plain(opened.records), plain([makeRecord(17, 900)]), `below ${below}`);
      appendGroup(opened.log, [makeRecord(18, 900)]);
      opened.log.close();
      const again = SegmentLog.open(fs, DIR, options);
      assert.equal(again.report.kind, 'clean', again.report.message);
      assert.equal(again.records.length, 2);
      again.log.close();
    }
  });

  test(`power loss at any FileLayer call during retirement (${POWER_CUTS} seeds)`, () => {
    console.log(`segment-log-retention power cuts: SEED=${BASE_SEED}`);
    const outcomes = { retired: 0, notRetired: 0, garbage: 0 };
    for (let seed = BASE_SEED; seed < BASE_SEED + POWER_CUTS; seed++) {
      const outcome = powerCutRun(seed);
      outcomes[outcome.retired ? 'retired' : 'notRetired']++;
      if (outcome.garbage) outcomes.garbage++;
    }
    // Both sides of the log.meta write, and leftovers below it, were exercised.
    assert.ok(outcomes.retired > 0 && outcomes.notRetired > 0, JSON.stringify(outcomes));
    assert.ok(outcomes.garbage > 0, JSON.stringify(outcomes));
  });
});

/** One seeded run: a random log, retirement cut at a random call, crash, recover, go on. */
function powerCutRun(seed: number): { retired: boolean; garbage: boolean } {
  const rng = new Random(seed);
  const where = `seed ${seed}`;
  const sim = new SimFs();
  let budget = Infinity;
  const fs = hookedFs(sim, () => {
    if (budget-- <= 0) throw new Error('power cut');
  });
  const options = { ...OPTS, preallocOnSync: rng.chance(0.5) };
  const { log } = SegmentLog.open(fs, DIR, options);
  const count = rng.range(20, 60);
  for (let decree = 1; decree <= count;) {
    const group: StoredRecord[] = [];
    for (let k = rng.range(1, 3); k > 0 && decree <= count; k--) {
      group.push(makeRecord(decree++, rng.range(50, 1800)));
    }
    appendGroup(log, group);
  }
  const all = log.readRecords(0, count);
  assert.equal(all.length, count, where);
  const top = log.durablePosition.segment;
  assert.ok(top >= 2, `${where}: the log has ${top} segments`);
  const below = rng.range(2, top);
  budget = rng.int(16);
  let finished = true;
  try {
    log.retireSegmentsBelow(below);
  } catch (e) {
    assert.match(String(e), /power cut/, where);
    finished = false;
  }
  sim.crash(rng);
  const opened = SegmentLog.open(sim, DIR, options);
  const { kind, message, segmentsRetired } = opened.report;
  assert.ok(kind === 'clean' || kind === 'tornTail', `${where}: ${message}`);
  const kept = all.filter((r) => r.segment >= below);
  const got = plain(opened.records);
  const retired = got.length === kept.length;
  assert.deepEqual(got, plain(retired ? kept : all), `${where}: records`);
  if (finished) assert.ok(retired, `${where}: a finished retirement was undone`);
  const left = sim.readdir(DIR).filter((n) => n.startsWith('seg-'));
  const expectedFirst = retired ? below : 1;
  assert.equal(left[0], segmentFileName(expectedFirst), `${where}: ${left.join(' ')}`);
  // The log goes on after the retired prefix.
  appendGroup(opened.log, [makeRecord(count + 1, 300)]);
  opened.log.close();
  const again = SegmentLog.open(sim, DIR, options);
  assert.equal(again.report.kind, 'clean', `${where}: ${again.report.message}`);
  assert.deepEqual(plain(again.records), [...got, ...plain([makeRecord(count + 1, 300)])]);
  again.log.close();
  return { retired, garbage: segmentsRetired.length > 0 };
}

describe('open() maps its own disk errors to coded LogErrors', () => {
  /** A closed log of 3 groups; with `torn`, non-zero bytes after its end (a torn tail). */
  function closedLog(torn: boolean): { fs: SimFs; tailAt: number } {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, { ...OPTS, preallocOnSync: false });
    for (let decree = 1; decree <= 3; decree++) appendGroup(log, [makeRecord(decree, 500)]);
    const tailAt = log.durablePosition.offset;
    log.close();
    if (torn) poke(fs, segPath(DIR, 1), tailAt + 8, new Uint8Array(100).fill(0x5a));
    return { fs, tailAt };
  }

  const cases = [
    { name: 'fdatasync EIO', op: 'fdatasync', errno: 'EIO', torn: false,
      code: 'PAXLINE_FSYNC_FAILED', file: 'segment', offset: 0 },
    { name: 'fdatasync ENOSPC', op: 'fdatasync', errno: 'ENOSPC', torn: false,
      code: 'PAXLINE_DISK_FULL', file: 'segment', offset: 0 },
    { name: 'fdatasync EIO after cutting a torn tail', op: 'fdatasync', errno: 'EIO', torn: true,
      code: 'PAXLINE_FSYNC_FAILED', file: 'segment', offset: 'tail' },
    { name: 'torn-tail write EIO', op: 'pwrite', errno: 'EIO', torn: true,
      code: 'PAXLINE_WRITE_FAILED', file: 'segment', offset: 'tail' },
    { name: 'torn-tail write ENOSPC', op: 'pwrite', errno: 'ENOSPC', torn: true,
      code: 'PAXLINE_DISK_FULL', file: 'segment', offset: 'tail' },
    { name: 'directory fsync EIO', op: 'fsyncDir', errno: 'EIO', torn: false,
      code: 'PAXLINE_FSYNC_FAILED', file: 'dir', offset: null },
  ] as const;

  for (const c of cases) {
    test(c.name, () => {
      const { fs: sim, tailAt } = closedLog(c.torn);
      let armed = true;
      const fs = hookedFs(sim, (op) => {
        if (armed && op === c.op) {
          armed = false;
          throw systemError(c.errno, c.op === 'fsyncDir' ? 'fsync' : c.op);
        }
      });
      const file = c.file === 'dir' ? DIR : segPath(DIR, 1);
      const offset = c.offset === 'tail' ? tailAt : c.offset;
      assert.throws(
        () => SegmentLog.open(fs, DIR, OPTS),
        (e: unknown) => {
          assert.ok(e instanceof LogError, String(e));
          assert.equal(e.code, c.code, e.message);
          assert.equal(e.file, file);
          assert.equal(e.offset, offset);
          assert.ok(e.message.includes(file), e.message);
          assert.equal((e.cause as { code?: unknown }).code, c.errno);
          return true;
        },
      );
      // Nothing was lost: a later open (the fault gone) recovers every record.
      const opened = SegmentLog.open(sim, DIR, OPTS);
      assert.notEqual(opened.report.kind, 'corrupt', opened.report.message);
      assert.deepEqual(plain(opened.records), plain([1, 2, 3].map((d) => makeRecord(d, 500))));
      opened.log.close();
    });
  }
});

describe('a failed fdatasync of preallocated zeros', () => {
  for (const errno of ['ENOSPC', 'EIO'] as const) {
    const code = errno === 'ENOSPC' ? 'PAXLINE_DISK_FULL' : 'PAXLINE_FSYNC_FAILED';
    test(`${errno}: the next sync() throws ${code} itself, then PAXLINE_LOG_FAILED`, () => {
      const sim = new SimFs();
      let failAt = Infinity; // fail the n-th fdatasync from now
      const fs = hookedFs(sim, (op) => {
        if (op === 'fdatasync' && --failAt === 0) throw systemError(errno, 'fdatasync');
      });
      const options = { segmentBytes: 65536, preallocChunkBytes: 4096, preallocAheadBytes: 16384 };
      const { log } = SegmentLog.open(fs, DIR, options);
      log.appendRecord(makeRecord(1, 300));
      failAt = 2; // the group's fdatasync succeeds; the preallocation's fails
      assert.equal(log.sync(), 1, 'the sync itself succeeded');
      assert.equal(log.failed?.code, code);
      log.appendRecord(makeRecord(2, 300));
      const seg = segPath(DIR, 1);
      assert.throws(
        () => log.sync(),
        (e: unknown) => e instanceof LogError && e.code === code && e.file === seg &&
          e.offset !== null && e.message.includes(seg) &&
          /recoverAfterFailure\(\)/.test(e.message) &&
          (e.cause as { code?: unknown }).code === errno,
      );
      assert.throws(() => log.sync(), { code: 'PAXLINE_LOG_FAILED' });
      // What a caller waiting on PAXLINE_DISK_FULL does once space returns.
      assert.equal(log.failed === null ? log.sync() : log.recoverAfterFailure(), 2);
      assert.equal(log.failed, null);
      log.close();
      const opened = SegmentLog.open(sim, DIR, options);
      assert.equal(opened.report.kind, 'clean', opened.report.message);
      assert.deepEqual(plain(opened.records), plain([makeRecord(1, 300), makeRecord(2, 300)]));
      opened.log.close();
    });
  }
});
