/**
 * Tests of SegmentLog's normal operation over SimFs (and one real-directory smoke test): round
 * trips, options and argument validation, group commit (one write and one fdatasync per group,
 * durability published only after fdatasync), rollover across small segments, preallocation by
 * writing zeros off the sync path, the decree index and readRecords, and the LogRecord mapping.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { LogRecord } from '../src/core/types.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import {
  LogError,
  SegmentLog,
  resolveSegmentLogOptions,
  type StoredRecord,
} from '../src/log/segment-log.js';
import { logRecordToStored, storedToLogRecord } from '../src/log/stored-record.js';
import { SimFs } from '../src/sim/sim-fs.js';
import {
  RecordingFs,
  appendGroup,
  flipBit,
  groupsOf,
  makeRecord,
  plain,
  segPath,
} from './segment-log-helpers.js';

const DIR = '/data/log';

describe('SegmentLog basics', () => {
  test('append, sync, close, reopen: records come back in order; the epoch goes up', () => {
    const fs = new SimFs();
    const first = SegmentLog.open(fs, DIR);
    assert.equal(first.report.kind, 'clean');
    assert.deepEqual(first.records, []);
    assert.equal(first.log.epoch, 1);
    const records = [
      makeRecord(1, 0), makeRecord(2, 10, 3, 4), makeRecord(0, 0, 9, 1), makeRecord(3, 5000),
      { type: 3, decree: 2, ballot: 0, payload: new Uint8Array(0) },
    ];
    for (const [i, r] of records.entries()) assert.equal(first.log.appendRecord(r), i + 1);
    assert.equal(first.log.durableSeq, 0);
    assert.equal(first.log.sync(), records.length);
    assert.equal(first.log.durableSeq, records.length);
    first.log.close();
    const again = SegmentLog.open(fs, DIR);
    assert.equal(again.report.kind, 'clean', again.report.message);
    assert.equal(again.log.epoch, 2);
    assert.deepEqual(plain(again.records), plain(records));
    assert.equal(again.report.records, records.length);
    assert.equal(again.report.groups, 1);
    // Sequence numbers restart per open; durability is per incarnation.
    assert.equal(again.log.appendedSeq, 0);
    appendGroup(again.log, [makeRecord(4, 7)]);
    again.log.close();
    const third = SegmentLog.open(fs, DIR);
    assert.deepEqual(plain(third.records), plain([...records, makeRecord(4, 7)]));
    assert.equal(third.log.epoch, 3);
    third.log.close();
  });

  test('sync with nothing buffered writes nothing', () => {
    const rec = new RecordingFs(new SimFs());
    const { log } = SegmentLog.open(rec, DIR);
    const before = rec.calls.length;
    assert.equal(log.sync(), 0);
    assert.equal(rec.calls.length, before);
  });

  test('options are validated and errors name the field', () => {
    const cases: [object, string][] = [
      [{ segmentBytes: 1000 }, 'segmentBytes'],
      [{ segmentBytes: 4096 * 3 + 8 }, 'segmentBytes'],
      [{ segmentBytes: 2 ** 31 }, 'segmentBytes'],
      [{ groupBodyBytesMax: 1 }, 'groupBodyBytesMax'],
      [{ segmentBytes: 8192, groupBodyBytesMax: 9000 }, 'groupBodyBytesMax'],
      [{ preallocChunkBytes: 100 }, 'preallocChunkBytes'],
      [{ preallocAheadBytes: -1 }, 'preallocAheadBytes'],
      [{ preallocOnSync: 'yes' }, 'preallocOnSync'],
      [{ recordPayloadBytesMax: 1.5 }, 'recordPayloadBytesMax'],
      [{ onCorruption: 'ignore' }, 'onCorruption'],
    ];
    for (const [options, field] of cases) {
      assert.throws(
        () => resolveSegmentLogOptions(options),
        (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_INVALID_OPTION' &&
          e.field === field && e.message.includes(field),
        field,
      );
    }
    const resolved = resolveSegmentLogOptions({});
    assert.equal(resolved.segmentBytes, 64 * 1024 * 1024);
    assert.ok(Object.isFrozen(resolved));
    // Defaults shrink to fit small segments.
    assert.ok(resolveSegmentLogOptions({ segmentBytes: 8192 }).recordPayloadBytesMax < 8192);
  });

  test('append validates its arguments', () => {
    const { log } = SegmentLog.open(new SimFs(), DIR, { segmentBytes: 8192 });
    const bad: [() => unknown, string][] = [
      [() => log.append(0, 1, 1, new Uint8Array(0)), 'type'],
      [() => log.append(256, 1, 1, new Uint8Array(0)), 'type'],
      [() => log.append(1, -1, 1, new Uint8Array(0)), 'decree'],
      [() => log.append(1, 2 ** 53, 1, new Uint8Array(0)), 'decree'],
      [() => log.append(1, 1, 0.5, new Uint8Array(0)), 'ballot'],
      [() => log.append(1, 1, 1, new Uint8Array(9000)), 'payload'],
    ];
    for (const [fn, field] of bad) {
      assert.throws(fn, (e: unknown) => e instanceof LogError && e.field === field, field);
    }
    assert.equal(log.appendedSeq, 0);
    log.close();
    assert.throws(() => log.append(1, 1, 1, new Uint8Array(0)), { code: 'PAXLINE_LOG_CLOSED' });
  });
});

describe('SegmentLog group commit', () => {
  test('one sync = one group write and one fdatasync; durable only after fdatasync', () => {
    const sim = new SimFs();
    const rec = new RecordingFs(sim);
    const { log } = SegmentLog.open(rec, DIR, { segmentBytes: 64 * 1024, preallocOnSync: false });
    appendGroup(log, [makeRecord(1, 10)]); // creates the segment
    rec.calls.length = 0;
    for (let d = 2; d <= 50; d++) log.appendRecord(makeRecord(d, 40));
    assert.equal(log.sync(), 50);
    const ops = rec.calls.map((c) => c.op);
    assert.deepEqual(ops, ['pwrite', 'fdatasync'], JSON.stringify(rec.calls));
    // A failed fdatasync publishes nothing.
    log.appendRecord(makeRecord(51, 1));
    sim.failNext('fdatasync', 'EIO');
    assert.throws(() => log.sync(), { code: 'PAXLINE_FSYNC_FAILED' });
    assert.equal(log.durableSeq, 50);
  });

  test('group headers chain: each names the previous group as its frontier', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, { segmentBytes: 64 * 1024, preallocOnSync: false });
    for (let g = 0; g < 5; g++) {
      appendGroup(log, [makeRecord(g * 2 + 1, 30), makeRecord(g * 2 + 2, 30)]);
    }
    const groups = groupsOf(fs.readFile(segPath(DIR, 1)));
    assert.equal(groups.length, 5);
    let highDecree = 0;
    groups.forEach((g, i) => {
      assert.equal(g.header.seq, i + 1);
      assert.equal(g.header.epoch, 1);
      assert.equal(g.position % 8, 0);
      highDecree = Math.max(highDecree, 2 * i + 2);
      assert.equal(g.header.highDecree, highDecree);
      if (i === 0) assert.deepEqual([g.header.frontierSegment, g.header.frontierEnd], [0, 0]);
      else {
        const prev = groups[i - 1]!;
        assert.deepEqual(
          [g.header.frontierSegment, g.header.frontierEnd, g.header.frontierCrc],
          [1, prev.end, prev.header.headerCrc],
        );
      }
    });
  });

  test('a sync larger than groupBodyBytesMax is split into several groups', () => {
    const fs = new SimFs();
    const opts = { segmentBytes: 64 * 1024, groupBodyBytesMax: 1000 };
    const { log } = SegmentLog.open(fs, DIR, opts);
    const records = Array.from({ length: 30 }, (_, i) => makeRecord(i + 1, 100));
    appendGroup(log, records);
    assert.ok(log.stats.groupsWritten >= 4, `${log.stats.groupsWritten} groups`);
    log.close();
    const again = SegmentLog.open(fs, DIR, opts);
    assert.equal(again.report.kind, 'clean');
    assert.deepEqual(plain(again.records), plain(records));
  });

  test('rollover across several small segments keeps order; each file stays within size', () => {
    const fs = new SimFs();
    const opts = { segmentBytes: 8192, preallocChunkBytes: 4096, preallocAheadBytes: 4096 };
    const { log } = SegmentLog.open(fs, DIR, opts);
    const all: StoredRecord[] = [];
    for (let g = 0; g < 60; g++) {
      const group = Array.from(
        { length: 1 + (g % 4) },
        (_, i) => makeRecord(g * 4 + i + 1, 50 + g * 7),
      );
      appendGroup(log, group);
      all.push(...group);
    }
    const names = fs.readdir(DIR).filter((n) => n.startsWith('seg-'));
    assert.ok(names.length >= 6, names.join(' '));
    for (const name of names) assert.ok(fs.readFile(`${DIR}/${name}`).length <= 8192, name);
    assert.equal(log.stats.segmentsCreated, names.length);
    log.close();
    const again = SegmentLog.open(fs, DIR, opts);
    assert.equal(again.report.kind, 'clean', again.report.message);
    assert.equal(again.report.segments, names.length);
    assert.deepEqual(plain(again.records), plain(all));
    // Every segment after the first starts with a group naming the last group of the one before.
    for (let n = 2; n <= names.length; n++) {
      const first = groupsOf(fs.readFile(segPath(DIR, n)))[0]!;
      const prev = groupsOf(fs.readFile(segPath(DIR, n - 1))).at(-1)!;
      assert.deepEqual([first.header.frontierSegment, first.header.frontierEnd], [n - 1, prev.end]);
    }
  });

  test('a new segment is made durable with a directory fsync before durability advances', () => {
    const rec = new RecordingFs(new SimFs());
    const { log } = SegmentLog.open(rec, DIR, { segmentBytes: 8192, preallocOnSync: false });
    rec.calls.length = 0;
    appendGroup(log, [makeRecord(1, 100)]);
    const ops = rec.calls.map((c) => c.op);
    assert.deepEqual(ops, ['open', 'pwrite', 'pwrite', 'fdatasync', 'fsyncDir']);
  });
});

describe('SegmentLog preallocation', () => {
  test('zeros are written (never ftruncate-extended) ahead of the write position, synced', () => {
    const sim = new SimFs();
    const rec = new RecordingFs(sim);
    const opts = { segmentBytes: 64 * 1024, preallocChunkBytes: 8192, preallocAheadBytes: 16384 };
    const { log } = SegmentLog.open(rec, DIR, opts);
    rec.calls.length = 0;
    appendGroup(log, [makeRecord(1, 100)]);
    const path = segPath(DIR, 1);
    const calls = rec.calls.filter((c) => c.path === path);
    // The group goes out and is synced first; preallocation follows, off the critical path.
    const firstSync = calls.findIndex((c) => c.op === 'fdatasync');
    const zeroWrites = calls.filter((c) => c.op === 'pwrite' && c.zeros === true);
    assert.ok(zeroWrites.length >= 2, JSON.stringify(calls));
    assert.ok(calls.indexOf(zeroWrites[0]!) > firstSync, 'preallocation after the group sync');
    assert.equal(calls.at(-1)!.op, 'fdatasync', 'the zeroed region is synced');
    assert.equal(rec.calls.filter((c) => c.op === 'truncate').length, 0);
    const bytes = sim.readFile(path);
    const groupEnd = groupsOf(bytes)[0]!.end;
    // Chunks end on 8 KiB boundaries; at least 16 KiB of zeros lie past the group.
    assert.equal(bytes.length, 24576);
    assert.ok(bytes.subarray(groupEnd).every((b) => b === 0));
    assert.equal(log.stats.preallocBytes, bytes.length - groupEnd);
    // Later syncs land inside the zeroed region: no further growth until the margin shrinks.
    rec.calls.length = 0;
    appendGroup(log, [makeRecord(2, 100)]);
    assert.equal(sim.readFile(path).length, bytes.length);
    assert.deepEqual(rec.calls.map((c) => c.op), ['pwrite', 'fdatasync']);
  });

  test('preallocation stops at the segment size and resumes in the next segment', () => {
    const sim = new SimFs();
    const opts = { segmentBytes: 16384, preallocChunkBytes: 4096, preallocAheadBytes: 8192 };
    const { log } = SegmentLog.open(sim, DIR, opts);
    for (let d = 1; d <= 40; d++) appendGroup(log, [makeRecord(d, 600)]);
    const names = sim.readdir(DIR).filter((n) => n.startsWith('seg-'));
    assert.ok(names.length >= 2);
    for (const name of names.slice(0, -1)) {
      assert.equal(sim.readFile(`${DIR}/${name}`).length, 16384, name);
    }
  });

  test('preallocOnSync: false leaves it to preallocate()', () => {
    const sim = new SimFs();
    const opts = {
      segmentBytes: 64 * 1024,
      preallocChunkBytes: 4096,
      preallocAheadBytes: 8192,
      preallocOnSync: false,
    };
    const { log } = SegmentLog.open(sim, DIR, opts);
    appendGroup(log, [makeRecord(1, 100)]);
    const before = sim.readFile(segPath(DIR, 1)).length;
    assert.ok(before < 4096);
    assert.equal(log.preallocate(), 12288 - before);
    assert.equal(sim.readFile(segPath(DIR, 1)).length, 12288);
    assert.equal(log.preallocate(), 0);
  });
});

describe('SegmentLog index and readRecords', () => {
  test('reads committed ranges from the files, in log order, across segments and reopen', () => {
    const fs = new SimFs();
    const opts = { segmentBytes: 8192 };
    const { log } = SegmentLog.open(fs, DIR, opts);
    const all: StoredRecord[] = [];
    for (let d = 1; d <= 120; d++) {
      const group = [makeRecord(d, 30 + (d % 40)), makeRecord(d, 5, 9, 4)];
      if (d % 10 === 0) group.push({ type: 3, decree: d, ballot: 0, payload: new Uint8Array(0) });
      appendGroup(log, group);
      all.push(...group);
    }
    const expect = (from: number, to: number): StoredRecord[] =>
      all.filter((r) => r.decree >= from && r.decree <= to);
    assert.deepEqual(plain(log.readRecords(5, 9)), plain(expect(5, 9)));
    assert.deepEqual(plain(log.readRecords(1, 120)), plain(expect(1, 120)));
    assert.deepEqual(plain(log.readRecords(0, Number.MAX_SAFE_INTEGER)), plain(all));
    assert.deepEqual(log.readRecords(500, 600), []);
    const segments = new Set(log.readRecords(1, 120).map((r) => r.segment));
    assert.ok(segments.size >= 3, `${segments.size} segments`);
    // Not yet durable: not indexed.
    log.appendRecord(makeRecord(121, 1));
    assert.deepEqual(log.readRecords(121, 121), []);
    log.close();
    const again = SegmentLog.open(fs, DIR, opts);
    assert.deepEqual(plain(again.log.readRecords(40, 77)), plain(expect(40, 77)));
    assert.throws(() => again.log.readRecords(5, 4), { code: 'PAXLINE_INVALID_ARGUMENT' });
  });

  test('a record damaged after recovery fails its checksum when read: PAXLINE_LOG_CORRUPT', () => {
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR, { segmentBytes: 8192 });
    appendGroup(log, [makeRecord(1, 20), makeRecord(2, 20)]);
    const [r2] = log.readRecords(2, 2);
    flipBit(fs, segPath(DIR, 1), r2!.offset + 30);
    assert.deepEqual(plain(log.readRecords(1, 1)), plain([makeRecord(1, 20)]));
    assert.throws(
      () => log.readRecords(2, 2),
      (e: unknown) => e instanceof LogError && e.code === 'PAXLINE_LOG_CORRUPT' &&
        e.file === segPath(DIR, 1) && e.offset === r2!.offset,
    );
  });
});

describe('LogRecord mapping', () => {
  test('every core record type round-trips through the stored form', () => {
    const records: LogRecord[] = [
      { type: 'promise', ballot: 12345 },
      { type: 'commit', decree: 77 },
      { type: 'accept', decree: 3, ballot: 9, value: { kind: 'noop' } },
      { type: 'accept', decree: 4, ballot: 9, value: { kind: 'config', members: [1, 2, 3] } },
      {
        type: 'learned', decree: 5, ballot: 8,
        value: { kind: 'batch', commands: [Uint8Array.of(1, 2), new Uint8Array(0)] },
      },
    ];
    const fs = new SimFs();
    const { log } = SegmentLog.open(fs, DIR);
    for (const r of records) log.appendRecord(logRecordToStored(r));
    log.sync();
    log.close();
    const again = SegmentLog.open(fs, DIR);
    assert.deepEqual(again.records.map(storedToLogRecord), records);
    assert.deepEqual(again.records.map((r) => r.type), [1, 3, 2, 2, 4]);
  });
});

describe('SegmentLog over NodeFileLayer', () => {
  test('round trip in a real directory, with rollover and preallocated files', () => {
    const root = mkdtempSync(join(tmpdir(), 'paxline-seglog-'));
    try {
      const fs = new NodeFileLayer();
      const dir = join(root, 'log');
      const opts = { segmentBytes: 16384, preallocChunkBytes: 4096, preallocAheadBytes: 8192 };
      const { log } = SegmentLog.open(fs, dir, opts);
      const all: StoredRecord[] = [];
      for (let d = 1; d <= 50; d++) {
        const r = makeRecord(d, 500);
        all.push(r);
        appendGroup(log, [r]);
      }
      log.close();
      const again = SegmentLog.open(fs, dir, opts);
      assert.equal(again.report.kind, 'clean', again.report.message);
      assert.deepEqual(plain(again.records), plain(all));
      assert.ok(again.report.segments >= 2);
      assert.deepEqual(plain(again.log.readRecords(10, 12)), plain(all.slice(9, 12)));
      again.log.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
