/**
 * Tests of the two FileLayer implementations and the seeded generator they are exercised with:
 * Random (determinism, fork independence, ranges), SimFs (POSIX-like semantics and the crash
 * model: what fsync guarantees, what a crash may keep, lose or tear) and NodeFileLayer (the same
 * basics against a real temporary directory).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FileLayer } from '../src/log/file-layer.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { SIM_PAGE_BYTES, SIM_SECTOR_BYTES, SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

function readAt(fs: FileLayer, fd: number, position: number, length: number): Uint8Array {
  const into = new Uint8Array(length);
  const n = fs.read(fd, into, length, position);
  return into.subarray(0, n);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  assert.fail('expected an error');
}

describe('Random', () => {
  test('the same seed gives the same sequence; different seeds differ', () => {
    const draw = (seed: number): number[] => {
      const rng = new Random(seed);
      return Array.from({ length: 100 }, () => rng.nextUint32());
    };
    assert.deepEqual(draw(42), draw(42));
    assert.notDeepEqual(draw(42), draw(43));
  });

  test('fork is deterministic and independent of the parent', () => {
    const parentA = new Random(7);
    const parentB = new Random(7);
    const childA = parentA.fork();
    const childB = parentB.fork();
    const seqChild = Array.from({ length: 50 }, () => childA.nextUint32());
    assert.deepEqual(seqChild, Array.from({ length: 50 }, () => childB.nextUint32()));
    // Draws from a child do not perturb the parent: parentA (child drawn) tracks parentB.
    const seqParent = Array.from({ length: 50 }, () => parentA.nextUint32());
    assert.deepEqual(seqParent, Array.from({ length: 50 }, () => parentB.nextUint32()));
    assert.notDeepEqual(seqChild, seqParent);
    assert.notDeepEqual(parentA.fork().nextUint32(), parentA.fork().nextUint32());
  });

  test('int, range, chance, next, pick and shuffle stay in range', () => {
    const rng = new Random(1);
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) {
      const x = rng.int(7);
      assert.ok(Number.isInteger(x) && x >= 0 && x < 7);
      seen.add(x);
      const y = rng.range(-3, 3);
      assert.ok(Number.isInteger(y) && y >= -3 && y <= 3);
      const f = rng.next();
      assert.ok(f >= 0 && f < 1);
    }
    assert.equal(seen.size, 7);
    assert.equal(rng.chance(0), false);
    assert.equal(rng.chance(1), true);
    assert.equal(rng.int(1), 0);
    assert.ok(['a', 'b'].includes(rng.pick(['a', 'b'])));
    const items = Array.from({ length: 20 }, (_, i) => i);
    const shuffled = rng.shuffle([...items]);
    assert.deepEqual([...shuffled].sort((a, b) => a - b), items);
    assert.notDeepEqual(shuffled, items);
  });
});

describe('SimFs semantics', () => {
  test('write, read back, size, truncate', () => {
    const fs = new SimFs();
    fs.mkdirp('/d');
    const fd = fs.open('/d/f', { create: true });
    fs.pwrite(fd, bytes('hello'), 0);
    fs.pwrite(fd, bytes('world'), 10);
    assert.equal(fs.size(fd), 15);
    const expected = [...bytes('hello'), 0, 0, 0, 0, 0, ...bytes('world')];
    assert.deepEqual([...readAt(fs, fd, 0, 15)], expected);
    assert.equal(readAt(fs, fd, 13, 100).length, 2);
    assert.equal(readAt(fs, fd, 20, 10).length, 0);
    fs.truncate(fd, 3);
    fs.truncate(fd, 6);
    assert.deepEqual([...readAt(fs, fd, 0, 10)], [...bytes('hel'), 0, 0, 0]);
    assert.equal(fs.stats.bytesWritten, 10);
  });

  test('open without create on a missing file, and a missing directory, throw ENOENT', () => {
    const fs = new SimFs();
    assert.equal(codeOf(() => fs.open('/nope', { create: false })), 'ENOENT');
    assert.equal(codeOf(() => fs.open('/no/dir/f', { create: true })), 'ENOENT');
    assert.equal(codeOf(() => fs.unlink('/nope')), 'ENOENT');
    assert.equal(codeOf(() => fs.rename('/nope', '/x')), 'ENOENT');
  });

  test('open with create keeps an existing file', () => {
    const fs = new SimFs();
    const a = fs.open('/f', { create: true });
    fs.pwrite(a, bytes('abc'), 0);
    const b = fs.open('/f', { create: true });
    assert.equal(text(readAt(fs, b, 0, 3)), 'abc');
  });

  test('rename replaces an existing file; unlink removes; readdir sorts and lists subdirs', () => {
    const fs = new SimFs();
    fs.mkdirp('/d/sub');
    const a = fs.open('/d/a', { create: true });
    fs.pwrite(a, bytes('new'), 0);
    const b = fs.open('/d/b', { create: true });
    fs.pwrite(b, bytes('old'), 0);
    fs.close(b);
    fs.rename('/d/a', '/d/b');
    assert.equal(fs.exists('/d/a'), false);
    assert.equal(text(fs.readFile('/d/b')), 'new');
    fs.open('/d/c', { create: true });
    assert.deepEqual(fs.readdir('/d'), ['b', 'c', 'sub']);
    fs.unlink('/d/c');
    assert.deepEqual(fs.readdir('/d'), ['b', 'sub']);
    assert.deepEqual(fs.readdir('/missing'), []);
    assert.ok(fs.exists('/d') && fs.exists('/d/sub') && fs.exists('/'));
    // The open descriptor of the renamed file still reaches it.
    assert.equal(text(readAt(fs, a, 0, 3)), 'new');
    assert.equal(codeOf(() => fs.rename('/d/b', '/other')), 'EXDEV');
  });

  test('a closed descriptor throws EBADF', () => {
    const fs = new SimFs();
    const fd = fs.open('/f', { create: true });
    fs.close(fd);
    assert.equal(codeOf(() => fs.pwrite(fd, bytes('x'), 0)), 'EBADF');
    assert.equal(codeOf(() => fs.size(fd)), 'EBADF');
  });

  test('failNext makes one pwrite or fdatasync throw and changes nothing', () => {
    const fs = new SimFs();
    const fd = fs.open('/f', { create: true });
    fs.failNext('pwrite', 'ENOSPC');
    assert.equal(codeOf(() => fs.pwrite(fd, bytes('x'), 0)), 'ENOSPC');
    assert.equal(fs.size(fd), 0);
    fs.pwrite(fd, bytes('x'), 0);
    fs.failNext('fdatasync', 'EIO');
    assert.equal(codeOf(() => fs.fdatasync(fd)), 'EIO');
    assert.equal(fs.stats.fdatasyncs, 0);
    fs.fdatasync(fd);
    assert.equal(fs.stats.fdatasyncs, 1);
  });

  test('clone is a deep, independent copy', () => {
    const fs = new SimFs();
    const fd = fs.open('/f', { create: true });
    fs.pwrite(fd, bytes('one'), 0);
    const copy = fs.clone();
    fs.pwrite(fd, bytes('two'), 0);
    copy.pwrite(fd, bytes('333'), 3);
    assert.equal(text(fs.readFile('/f')), 'two');
    assert.equal(text(copy.readFile('/f')), 'one333');
  });
});

describe('SimFs crash model', () => {
  const SEEDS = 200;

  test('descriptors are invalid after a crash', () => {
    const fs = new SimFs();
    const fd = fs.open('/f', { create: true });
    fs.crash(new Random(1));
    assert.equal(codeOf(() => fs.read(fd, new Uint8Array(1), 1, 0)), 'EBADF');
    const again = fs.open('/f', { create: true });
    assert.notEqual(again, fd);
  });

  test('fsynced data and a synced directory entry always survive', () => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const fs = new SimFs();
      fs.mkdirp('/d');
      const fd = fs.open('/d/f', { create: true });
      const durable = new Uint8Array(3 * SIM_PAGE_BYTES + 100).fill(7);
      fs.pwrite(fd, durable, 0);
      fs.fdatasync(fd);
      fs.fsyncDir('/d');
      fs.pwrite(fd, new Uint8Array(2 * SIM_PAGE_BYTES).fill(9), durable.length);
      fs.crash(new Random(seed));
      const after = fs.readFile('/d/f');
      assert.ok(after.length >= durable.length, `seed ${seed}`);
      assert.deepEqual(after.subarray(0, durable.length), durable, `seed ${seed}`);
      // Anything past the durable end is a prefix-per-page of what was written, or zero.
      assert.ok(after.subarray(durable.length).every((b) => b === 9 || b === 0), `seed ${seed}`);
    }
  });

  test('an unsynced create is sometimes lost, sometimes kept; a synced one always kept', () => {
    let lost = 0;
    let kept = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const fs = new SimFs();
      fs.mkdirp('/d');
      fs.open('/d/synced', { create: true });
      fs.fsyncDir('/d');
      fs.open('/d/unsynced', { create: true });
      const report = fs.crash(new Random(seed));
      assert.ok(fs.exists('/d/synced'));
      if (fs.exists('/d/unsynced')) kept++;
      else {
        lost++;
        assert.equal(report.dirOpsLost, 1);
      }
    }
    assert.ok(lost > 0 && kept > 0, `lost ${lost} kept ${kept}`);
  });

  test('namespace operations survive as an in-order prefix', () => {
    const outcomes = new Set<string>();
    for (let seed = 0; seed < SEEDS; seed++) {
      const fs = new SimFs();
      const fd = fs.open('/tmp', { create: true });
      fs.pwrite(fd, bytes('v2'), 0);
      fs.fdatasync(fd);
      const old = fs.open('/cur', { create: true });
      fs.pwrite(old, bytes('v1'), 0);
      fs.fdatasync(old);
      fs.fsyncDir('/');
      fs.rename('/tmp', '/cur'); // op 1
      fs.unlink('/cur'); // op 2
      fs.crash(new Random(seed));
      const state = fs.readdir('/').map((n) => `${n}=${text(fs.readFile(`/${n}`))}`).join(',');
      // Prefix 0: both files; prefix 1: the rename only; prefix 2: nothing left.
      assert.ok(['cur=v1,tmp=v2', 'cur=v2', ''].includes(state), `seed ${seed}: ${state}`);
      outcomes.add(state);
    }
    assert.equal(outcomes.size, 3);
  });

  test('a torn page keeps a 512-byte-aligned prefix; every outcome occurs', () => {
    const sizes = new Set<number>();
    let torn = 0;
    for (let seed = 0; seed < SEEDS; seed++) {
      const fs = new SimFs();
      const fd = fs.open('/f', { create: true });
      fs.fsyncDir('/');
      fs.pwrite(fd, new Uint8Array(SIM_PAGE_BYTES).fill(0xab), 0);
      const report = fs.crash(new Random(seed));
      torn += report.pagesTorn;
      assert.equal(report.pagesKept + report.pagesTorn + report.pagesLost, 1);
      const after = fs.readFile('/f');
      assert.equal(after.length % SIM_SECTOR_BYTES, 0, `seed ${seed}: size ${after.length}`);
      assert.ok(after.every((b) => b === 0xab));
      const expectTorn = after.length > 0 && after.length < SIM_PAGE_BYTES;
      assert.equal(report.pagesTorn === 1, expectTorn, `seed ${seed}`);
      sizes.add(after.length);
    }
    assert.ok(torn > 0 && sizes.has(0) && sizes.has(SIM_PAGE_BYTES), [...sizes].join(' '));
    assert.ok(sizes.size >= 6, [...sizes].join(' '));
  });

  test('an overwritten durable page reverts, survives or mixes by sector', () => {
    for (let seed = 0; seed < SEEDS; seed++) {
      const fs = new SimFs();
      const fd = fs.open('/f', { create: true });
      fs.fsyncDir('/');
      fs.pwrite(fd, new Uint8Array(SIM_PAGE_BYTES).fill(1), 0);
      fs.fdatasync(fd);
      fs.pwrite(fd, new Uint8Array(SIM_PAGE_BYTES).fill(2), 0);
      fs.truncate(fd, 100); // unsynced: the crash must bring back the durable size
      fs.crash(new Random(seed));
      const after = fs.readFile('/f');
      assert.equal(after.length, SIM_PAGE_BYTES);
      const twos = after.findIndex((b) => b !== 2);
      const cut = twos === -1 ? after.length : twos;
      assert.ok(cut === 0 || cut === 100, `seed ${seed}: cut ${cut}`);
      assert.ok(after.subarray(cut).every((b) => b === 1));
    }
  });
});

describe('NodeFileLayer', () => {
  test('basics against a real temporary directory', () => {
    const root = mkdtempSync(join(tmpdir(), 'paxline-nfl-'));
    try {
      const fs = new NodeFileLayer();
      const dir = join(root, 'a', 'b');
      assert.deepEqual(fs.readdir(dir), []);
      fs.mkdirp(dir);
      fs.mkdirp(dir);
      assert.ok(fs.exists(dir));
      assert.equal(codeOf(() => fs.open(join(dir, 'f'), { create: false })), 'ENOENT');
      const fd = fs.open(join(dir, 'f'), { create: true });
      fs.pwrite(fd, bytes('hello'), 0);
      fs.pwrite(fd, bytes('!'), 7);
      fs.fdatasync(fd);
      fs.fsyncDir(dir);
      assert.equal(fs.size(fd), 8);
      assert.deepEqual([...readAt(fs, fd, 0, 8)], [...bytes('hello'), 0, 0, ...bytes('!')]);
      fs.close(fd);
      const again = fs.open(join(dir, 'f'), { create: true }); // must not truncate
      assert.equal(fs.size(again), 8);
      fs.truncate(again, 5);
      assert.equal(text(readAt(fs, again, 0, 10)), 'hello');
      fs.close(again);
      const other = fs.open(join(dir, 'g'), { create: true });
      fs.pwrite(other, bytes('replaced'), 0);
      fs.close(other);
      fs.rename(join(dir, 'g'), join(dir, 'f'));
      assert.deepEqual(fs.readdir(dir), ['f']);
      const check = fs.open(join(dir, 'f'), { create: false });
      assert.equal(text(readAt(fs, check, 0, 100)), 'replaced');
      fs.close(check);
      fs.unlink(join(dir, 'f'));
      assert.equal(fs.exists(join(dir, 'f')), false);
      assert.deepEqual(fs.readdir(join(root, 'a')), ['b']);
      assert.equal(codeOf(() => fs.unlink(join(dir, 'f'))), 'ENOENT');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
