/**
 * Tests of checkpoints (src/log/checkpoint.ts): round trips (multi-block, empty, large), power
 * loss at ≥ 300 seeded cut points over SimFs (a new checkpoint is either complete and valid or
 * absent, and the older one still loads), every single-bit flip and every truncation detected
 * with file and offset, wrong magic/version, `load` declining, damage found while loading, disk
 * errors, and one round trip on the real file system.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AssertionFailure } from '../src/core/assert.js';
import {
  CHECKPOINT_BLOCK_BYTES_DEFAULT,
  type CheckpointInfo,
  type CheckpointMeta,
  type CheckpointReader,
  type CheckpointWriter,
  checkpointFileName,
  listCheckpoints,
  openNewestValidCheckpoint,
  parseCheckpointFileName,
  verifyCheckpoint,
  writeCheckpoint,
} from '../src/log/checkpoint.js';
import type { StorageError } from '../src/log/checkpoint-support.js';
import type { FileLayer } from '../src/log/file-layer.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';
import { CutFs, PowerCut, type TearPolicy } from './support/cut-fs.js';
import { patch, storageError } from './support/storage-helpers.js';

const DIR = '/replica/ckpt';
const CRASH_SEEDS = 400;

function stateBytes(seed: number, length: number): Uint8Array {
  const rng = new Random(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.nextUint32() & 0xff;
  return out;
}

function meta(decree: number): CheckpointMeta {
  return { decree, ballot: decree * 1024 + 1, configNumber: 3, members: [0, 1, 2] };
}

/** A `save` that streams `data` in random-sized pieces (some empty, some spanning blocks). */
function saver(data: Uint8Array, rng: Random): (writer: CheckpointWriter) => void {
  return (writer) => {
    let at = 0;
    while (at < data.length) {
      const n = Math.min(data.length - at, rng.int(3) === 0 ? 0 : rng.range(1, 3000));
      writer.write(data.subarray(at, at + n));
      at += n;
    }
    assert.equal(writer.bytesWritten, data.length);
  };
}

/** Reads the whole stream with random `maxBytes`, checking the reader's accounting. */
function readAll(reader: CheckpointReader, rng: Random): Uint8Array {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const before = reader.bytesRemaining;
    const max = rng.pick([1, 7, 100, 4096, 1 << 20]);
    const chunk = reader.read(max);
    if (chunk === null) break;
    assert.ok(chunk.length >= 1 && chunk.length <= max);
    assert.equal(reader.bytesRemaining, before - chunk.length);
    chunks.push(chunk);
    total += chunk.length;
  }
  assert.equal(reader.bytesRemaining, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Writes `bytes` at `offset` of `path` durably (to damage a file on purpose). */
function truncateFile(fs: FileLayer, path: string, length: number): void {
  const fd = fs.open(path, { create: false });
  fs.truncate(fd, length);
  fs.fdatasync(fd);
  fs.close(fd);
}

/** Writes decree → data checkpoints and returns a map to check loads against. */
function writeAll(fs: FileLayer, entries: [number, Uint8Array][], blockBytes: number): void {
  const rng = new Random(99);
  for (const [decree, data] of entries) {
    writeCheckpoint(fs, DIR, meta(decree), saver(data, rng), { blockBytes });
  }
}

describe('checkpoint round trip', () => {
  const cases: { name: string; bytes: number; blockBytes?: number }[] = [
    { name: 'empty state', bytes: 0, blockBytes: 64 },
    { name: 'one byte', bytes: 1, blockBytes: 64 },
    { name: 'exact multiple of the block size', bytes: 640, blockBytes: 64 },
    { name: 'many blocks, last one partial', bytes: 10_007, blockBytes: 100 },
    { name: 'one-byte blocks', bytes: 300, blockBytes: 1 },
    {
      name: 'large state, default 4 MiB blocks',
      bytes: 2 * CHECKPOINT_BLOCK_BYTES_DEFAULT + 12_345,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const fs = new SimFs();
      const data = stateBytes(c.bytes, c.bytes);
      const rng = new Random(c.bytes);
      const options = c.blockBytes === undefined ? {} : { blockBytes: c.blockBytes };
      const info = writeCheckpoint(fs, DIR, meta(42), saver(data, rng), options);
      const blockBytes = c.blockBytes ?? CHECKPOINT_BLOCK_BYTES_DEFAULT;
      assert.equal(info.name, 'ckpt-0000000000000042.pcp');
      assert.equal(info.dataBytes, c.bytes);
      assert.equal(info.blockBytes, blockBytes);
      assert.equal(info.blockCount, Math.ceil(c.bytes / blockBytes));
      assert.equal(info.fileBytes, fs.readFile(info.path).length);
      assert.deepEqual(verifyCheckpoint(fs, info.path), info);
      let loaded: Uint8Array | null = null;
      const result = openNewestValidCheckpoint(fs, DIR, (reader, got) => {
        assert.deepEqual(got, info);
        loaded = readAll(reader, rng);
        assert.equal(reader.read(10), null, 'the end of the stream stays the end');
        return true;
      });
      assert.deepEqual(result.loaded, info);
      assert.deepEqual(result.skipped, []);
      assert.deepEqual(loaded, data);
      assert.deepEqual(fs.readdir(DIR), [info.name], 'no temp file is left behind');
    });
  }

  test('header fields round trip: decree, ballot, configuration, members', () => {
    const fs = new SimFs();
    const m = {
      decree: 2 ** 53 - 1,
      ballot: 2 ** 52 + 7,
      configNumber: 2 ** 40,
      members: [9, 1023, 4],
    };
    const info = writeCheckpoint(fs, DIR, m, (w) => w.write(new Uint8Array([1, 2, 3])));
    assert.equal(info.name, 'ckpt-9007199254740991.pcp');
    const back = verifyCheckpoint(fs, info.path);
    assert.deepEqual(
      {
        decree: back.decree,
        ballot: back.ballot,
        configNumber: back.configNumber,
        members: back.members,
      },
      m,
    );
  });

  test('file names: 16 digits, parsed back, unrelated names ignored by listCheckpoints', () => {
    assert.equal(checkpointFileName(7), 'ckpt-0000000000000007.pcp');
    assert.equal(parseCheckpointFileName('ckpt-0000000000000007.pcp'), 7);
    assert.equal(parseCheckpointFileName('ckpt-7.pcp'), null);
    assert.equal(parseCheckpointFileName('ckpt-0000000000000007.pcp.tmp'), null);
    const fs = new SimFs();
    writeAll(
      fs,
      [
        [30, stateBytes(1, 10)],
        [5, stateBytes(2, 10)],
        [12, stateBytes(3, 10)],
      ],
      64,
    );
    fs.mkdirp(`${DIR}/sub`);
    fs.close(fs.open(`${DIR}/notes.txt`, { create: true }));
    assert.deepEqual(
      listCheckpoints(fs, DIR).map((c) => c.decree),
      [5, 12, 30],
    );
    assert.deepEqual(listCheckpoints(fs, '/nowhere'), []);
  });

  test('writer used after save returns, or bad arguments: assertion failures', () => {
    const fs = new SimFs();
    let kept: CheckpointWriter | null = null;
    writeCheckpoint(fs, DIR, meta(1), (w) => {
      kept = w;
    });
    assert.throws(() => kept!.write(new Uint8Array(1)), AssertionFailure);
    assert.throws(() => writeCheckpoint(fs, DIR, meta(-1), () => {}), AssertionFailure);
    const dup = { ...meta(2), members: [1, 1] };
    assert.throws(() => writeCheckpoint(fs, DIR, dup, () => {}), AssertionFailure);
    assert.throws(
      () => writeCheckpoint(fs, DIR, meta(2), () => {}, { blockBytes: 0 }),
      AssertionFailure,
    );
  });
});

/** A cut pwrite writes a random prefix of its data half of the time. */
const tearHalf: TearPolicy = (rng, data) => (rng.chance(0.5) ? rng.int(data.length) : 0);

describe('checkpoint power loss', () => {
  test(`${CRASH_SEEDS} cut points: new checkpoint complete or absent, old one loads`, (t) => {
    const outcomes = { newLoaded: 0, oldLoaded: 0, tempRemoved: 0, cutInsideWrite: 0 };
    for (let seed = 1; seed <= CRASH_SEEDS; seed++) {
      const rng = new Random(seed);
      const oldData = stateBytes(seed, rng.int(5000));
      const newData = stateBytes(seed + 1_000_000, rng.int(9000));
      const blockBytes = rng.pick([256, 1000, 4096, 5000]);
      const fs = new SimFs();
      writeCheckpoint(fs, DIR, meta(100), saver(oldData, rng), { blockBytes });
      if (rng.chance(0.3)) {
        // Debris of an earlier interrupted attempt at the same decree.
        const fd = fs.open(`${DIR}/${checkpointFileName(200)}.tmp`, { create: true });
        fs.pwrite(fd, stateBytes(seed, 777), 0);
        fs.close(fd);
      }
      // A dry run on a copy counts the calls a complete write makes; the cut falls among them
      // (cutAt = total means no cut: the write completes, then power fails). Half the cuts land
      // in the last few calls (close, rename, directory sync), where the protocol is subtlest.
      const dry = new CutFs(fs.clone(), new Random(0), Number.POSITIVE_INFINITY, tearHalf);
      writeCheckpoint(dry, DIR, meta(200), saver(newData, new Random(seed)), { blockBytes });
      const cutAt = rng.chance(0.5) ? rng.int(dry.ops + 1) : dry.ops - rng.int(5);
      const cutFs = new CutFs(fs, rng.fork(), cutAt, tearHalf);
      let completed = false;
      try {
        writeCheckpoint(cutFs, DIR, meta(200), saver(newData, new Random(seed)), { blockBytes });
        completed = true;
      } catch (error) {
        if (!(error instanceof PowerCut)) throw error;
        outcomes.cutInsideWrite++;
      }
      assert.equal(completed, cutAt === dry.ops, `seed ${seed}: completion matches the cut`);
      fs.crash(rng);

      const present = listCheckpoints(fs, DIR).map((c) => c.decree);
      assert.ok(present.includes(100), `seed ${seed}: the old checkpoint survives`);
      if (completed) assert.ok(present.includes(200), `seed ${seed}: a completed write is durable`);
      for (const c of listCheckpoints(fs, DIR)) verifyCheckpoint(fs, c.path); // complete or absent
      const result = openNewestValidCheckpoint(fs, DIR, (reader, info) => {
        assert.deepEqual(readAll(reader, rng), info.decree === 200 ? newData : oldData);
        return true;
      });
      assert.deepEqual(result.skipped, [], `seed ${seed}: nothing present is damaged`);
      assert.equal(result.loaded?.decree, present.includes(200) ? 200 : 100);
      if (result.loaded?.decree === 200) outcomes.newLoaded++;
      else outcomes.oldLoaded++;
      outcomes.tempRemoved += result.removedTempFiles.length;
      assert.ok(!fs.readdir(DIR).some((n) => n.endsWith('.tmp')), `seed ${seed}: temp removed`);
      // The older checkpoint still loads on its own.
      assert.equal(verifyCheckpoint(fs, `${DIR}/${checkpointFileName(100)}`).decree, 100);
    }
    t.diagnostic(JSON.stringify(outcomes));
    // Every kind of outcome happened, so the seeds covered the interesting cut points.
    assert.ok(outcomes.newLoaded > 20 && outcomes.oldLoaded > 20, JSON.stringify(outcomes));
    assert.ok(outcomes.tempRemoved > 20 && outcomes.cutInsideWrite > 100, JSON.stringify(outcomes));
  });
});

describe('checkpoint damage', () => {
  /** Two checkpoints: decree 10 (old, intact) and decree 20 (the one damaged by each test). */
  function twoCheckpoints(blockBytes = 64): {
    fs: SimFs;
    newer: CheckpointInfo;
    data: Uint8Array[];
  } {
    const fs = new SimFs();
    const data = [stateBytes(10, 300), stateBytes(20, 300)];
    const rng = new Random(5);
    writeCheckpoint(fs, DIR, meta(10), saver(data[0]!, rng), { blockBytes });
    const newer = writeCheckpoint(fs, DIR, meta(20), saver(data[1]!, rng), { blockBytes });
    return { fs, newer, data };
  }

  function loadFallsBackToOld(
    fs: SimFs,
    data: Uint8Array[],
    reason: string,
    skippedDecree = 20,
  ): StorageError {
    const result = openNewestValidCheckpoint(fs, DIR, (reader) => {
      assert.deepEqual(readAll(reader, new Random(1)), data[0]);
      return true;
    });
    assert.equal(result.loaded?.decree, 10);
    assert.equal(result.skipped.length, 1);
    const skip = result.skipped[0]!;
    assert.equal(skip.decree, skippedDecree);
    assert.equal(skip.reason, reason);
    assert.ok(skip.error !== null);
    return skip.error;
  }

  test('a bit flip in a block: detected with file and offset; the older one loads', () => {
    const { fs, newer, data } = twoCheckpoints();
    const headerBytes = 64 + 4 * 3;
    const block2 = headerBytes + 2 * (8 + 64);
    const original = fs.readFile(newer.path);
    patch(fs, newer.path, block2 + 8 + 5, new Uint8Array([original[block2 + 8 + 5]! ^ 0x10]));
    const error = storageError(() => verifyCheckpoint(fs, newer.path));
    assert.equal(error.code, 'PAXLINE_CHECKPOINT_CORRUPT');
    assert.equal(error.file, newer.name);
    assert.equal(error.offset, block2);
    assert.ok(error.message.includes(`ckpt-0000000000000020.pcp at offset ${block2}: block 2 CRC`));
    assert.deepEqual(loadFallsBackToOld(fs, data, 'corrupt').offset, block2);
  });

  test('every single-bit flip anywhere in a checkpoint file is detected', () => {
    const { fs, newer } = twoCheckpoints(100);
    const original = fs.readFile(newer.path);
    const codes = new Map<string, number>();
    for (let byte = 0; byte < original.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        patch(fs, newer.path, byte, new Uint8Array([original[byte]! ^ (1 << bit)]));
        const error = storageError(() => verifyCheckpoint(fs, newer.path));
        assert.ok(error.offset !== null && error.file === newer.name);
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
        patch(fs, newer.path, byte, original.subarray(byte, byte + 1));
      }
    }
    assert.deepEqual([...codes.keys()].sort(), [
      'PAXLINE_CHECKPOINT_CORRUPT',
      'PAXLINE_CHECKPOINT_VERSION',
    ]);
    verifyCheckpoint(fs, newer.path); // restored intact
  });

  test('every truncation, and bytes appended after the trailer, are detected', () => {
    const { fs, newer, data } = twoCheckpoints();
    const original = fs.readFile(newer.path);
    for (let length = 0; length < original.length; length++) {
      truncateFile(fs, newer.path, length);
      const error = storageError(() => verifyCheckpoint(fs, newer.path));
      assert.equal(error.code, 'PAXLINE_CHECKPOINT_CORRUPT', `length ${length}`);
      patch(fs, newer.path, 0, original);
    }
    truncateFile(fs, newer.path, original.length - 1);
    assert.match(loadFallsBackToOld(fs, data, 'corrupt').message, /truncated/);
    patch(fs, newer.path, 0, original);
    patch(fs, newer.path, original.length, new Uint8Array(3));
    const error = storageError(() => verifyCheckpoint(fs, newer.path));
    assert.equal(error.offset, original.length);
    assert.match(error.message, /3 unexpected bytes after the trailer/);
  });

  test('wrong magic: corrupt at offset 0; unknown version: PAXLINE_CHECKPOINT_VERSION', () => {
    const { fs, newer, data } = twoCheckpoints();
    const original = fs.readFile(newer.path);
    patch(fs, newer.path, 0, new TextEncoder().encode('NOTACKPT'));
    const magic = loadFallsBackToOld(fs, data, 'corrupt');
    assert.equal(magic.code, 'PAXLINE_CHECKPOINT_CORRUPT');
    assert.equal(magic.offset, 0);
    assert.match(magic.message, /bad magic/);
    patch(fs, newer.path, 0, original);
    patch(fs, newer.path, 8, new Uint8Array([2, 0, 0, 0]));
    const version = loadFallsBackToOld(fs, data, 'version');
    assert.equal(version.code, 'PAXLINE_CHECKPOINT_VERSION');
    assert.equal(version.offset, 8);
    assert.match(version.message, /version 2, this build reads 1/);
  });

  test('a file renamed to another decree is caught by the name check', () => {
    const { fs, newer, data } = twoCheckpoints();
    fs.rename(newer.path, `${DIR}/${checkpointFileName(30)}`);
    const error = loadFallsBackToOld(fs, data, 'corrupt', 30);
    assert.equal(error.offset, 16);
    assert.match(error.message, /header decree 20 does not match the file name/);
  });

  test('load returning false falls back to the older checkpoint (RSL semantics)', () => {
    const { fs, data } = twoCheckpoints();
    const offered: number[] = [];
    const result = openNewestValidCheckpoint(fs, DIR, (reader, info) => {
      offered.push(info.decree);
      if (info.decree === 20) return false;
      assert.deepEqual(readAll(reader, new Random(2)), data[0]);
      return true;
    });
    assert.deepEqual(offered, [20, 10]);
    assert.equal(result.loaded?.decree, 10);
    assert.deepEqual(result.skipped, [
      { name: checkpointFileName(20), decree: 20, reason: 'declined', error: null },
    ]);
  });

  test('every checkpoint declined or damaged: loaded is null and each skip is reported', () => {
    const { fs, newer } = twoCheckpoints();
    patch(fs, newer.path, 100, new Uint8Array([0xff, 0xff]));
    const result = openNewestValidCheckpoint(fs, DIR, () => false);
    assert.equal(result.loaded, null);
    assert.deepEqual(
      result.skipped.map((s) => [s.decree, s.reason]),
      [
        [20, 'corrupt'],
        [10, 'declined'],
      ],
    );
    assert.deepEqual(openNewestValidCheckpoint(new SimFs(), DIR, () => true).loaded, null);
  });

  test('damage that appears while load streams is caught, even if load swallows the error', () => {
    for (const swallow of [false, true]) {
      const { fs, newer, data } = twoCheckpoints();
      const result = openNewestValidCheckpoint(fs, DIR, (reader, info) => {
        if (info.decree === 20) {
          patch(fs, newer.path, 64 + 12 + 3 * 72 + 8, new Uint8Array([0xee])); // block 3's data
          try {
            readAll(reader, new Random(3));
          } catch (error) {
            if (!swallow) throw error;
          }
          return true;
        }
        assert.deepEqual(readAll(reader, new Random(3)), data[0]);
        return true;
      });
      assert.equal(result.loaded?.decree, 10, `swallow=${swallow}`);
      assert.equal(result.skipped[0]?.reason, 'corrupt');
      assert.match(result.skipped[0]!.error!.message, /block 3 CRC mismatch/);
    }
  });

  test('an error thrown by load itself propagates', () => {
    const { fs } = twoCheckpoints();
    assert.throws(
      () =>
        openNewestValidCheckpoint(fs, DIR, () => {
          throw new Error('state machine bug');
        }),
      /state machine bug/,
    );
  });
});

describe('checkpoint write failures', () => {
  test('ENOSPC while writing: PAXLINE_DISK_FULL, temp removed, older checkpoint intact', () => {
    const fs = new SimFs();
    writeAll(fs, [[10, stateBytes(1, 500)]], 64);
    fs.failNext('pwrite', 'ENOSPC');
    const error = storageError(() =>
      writeCheckpoint(fs, DIR, meta(20), saver(stateBytes(2, 500), new Random(1)), {
        blockBytes: 64,
      }),
    );
    assert.equal(error.code, 'PAXLINE_DISK_FULL');
    assert.match(error.message, /ckpt-0000000000000020\.pcp\.tmp/);
    assert.deepEqual(fs.readdir(DIR), [checkpointFileName(10)]);
  });

  test('failed fdatasync: PAXLINE_FSYNC_FAILED, nothing renamed', () => {
    const fs = new SimFs();
    fs.failNext('fdatasync', 'EIO');
    const error = storageError(() =>
      writeCheckpoint(fs, DIR, meta(20), (w) => w.write(new Uint8Array(9))),
    );
    assert.equal(error.code, 'PAXLINE_FSYNC_FAILED');
    assert.deepEqual(fs.readdir(DIR), []);
  });

  test('save throwing, or swallowing a write failure, leaves no file behind', () => {
    const fs = new SimFs();
    assert.throws(
      () =>
        writeCheckpoint(fs, DIR, meta(20), () => {
          throw new Error('cannot save');
        }),
      /cannot save/,
    );
    fs.failNext('pwrite', 'EIO');
    const error = storageError(() =>
      writeCheckpoint(
        fs,
        DIR,
        meta(21),
        (w) => {
          try {
            w.write(new Uint8Array(200));
          } catch {
            // A state machine that ignores the failure must not produce a checkpoint.
          }
        },
        { blockBytes: 64 },
      ),
    );
    assert.equal(error.code, 'PAXLINE_WRITE_FAILED');
    assert.deepEqual(fs.readdir(DIR), []);
  });
});

test('round trip on the real file system (NodeFileLayer)', () => {
  const root = mkdtempSync(join(tmpdir(), 'paxline-ckpt-'));
  try {
    const fs = new NodeFileLayer();
    const dir = join(root, 'ckpt');
    const data = stateBytes(3, 50_000);
    writeCheckpoint(fs, dir, meta(1), saver(stateBytes(4, 10), new Random(1)), {
      blockBytes: 4096,
    });
    const info = writeCheckpoint(fs, dir, meta(2), saver(data, new Random(2)), {
      blockBytes: 4096,
    });
    const fd = fs.open(`${info.path}.tmp`, { create: true }); // debris of a crash
    fs.close(fd);
    let loaded: Uint8Array | null = null;
    const result = openNewestValidCheckpoint(fs, dir, (reader) => {
      loaded = readAll(reader, new Random(3));
      return true;
    });
    assert.equal(result.loaded?.decree, 2);
    assert.deepEqual(result.removedTempFiles, [`${info.name}.tmp`]);
    assert.deepEqual(loaded, data);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
