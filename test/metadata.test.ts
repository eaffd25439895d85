/**
 * Tests of the mirrored replica metadata (src/log/metadata.ts): round trip and slot alternation;
 * power loss at seeded cut points over SimFs (writes torn inside a slot, crashes during creation)
 * never loses the last durably written promise and never invents one; one damaged slot is
 * reported and repaired by the next write; both damaged → PAXLINE_PROMISE_UNKNOWN naming file and
 * offset; no files → "none" (a new replica); disk errors stop the store.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { AssertionFailure } from '../src/core/assert.js';
import type { FileLayer } from '../src/log/file-layer.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import {
  METADATA_FILE_NAMES,
  MetadataStore,
  type ReplicaMetadata,
  readMetadata,
} from '../src/log/metadata.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';
import { CutFs, PowerCut, type TearPolicy } from './support/cut-fs.js';
import { patch, storageError } from './support/storage-helpers.js';

const DIR = '/replica/meta';
const CRASH_SEEDS = 400;

const initial: ReplicaMetadata = {
  clusterId: 'cluster-Ω-7',
  replicaId: 2,
  incarnation: 1,
  promisedBallot: 0,
  logEpoch: 1,
};

function fields(m: ReplicaMetadata): ReplicaMetadata {
  const { clusterId, replicaId, incarnation, promisedBallot, logEpoch } = m;
  return { clusterId, replicaId, incarnation, promisedBallot, logEpoch };
}

function found(fs: FileLayer): Extract<ReturnType<typeof readMetadata>, { kind: 'found' }> {
  const read = readMetadata(fs, DIR);
  assert.equal(read.kind, 'found');
  return read;
}

describe('metadata basics', () => {
  test('no files is "none" (a new replica); create, write, reopen round trip', () => {
    const fs = new SimFs();
    assert.deepEqual(readMetadata(fs, DIR), { kind: 'none' });
    assert.equal(MetadataStore.open(fs, DIR), null);
    const store = MetadataStore.create(fs, DIR, initial);
    assert.deepEqual(store.current, { ...initial, generation: 1 });
    assert.deepEqual(fs.readdir(DIR), ['meta-a', 'meta-b']);
    let expected: ReplicaMetadata = initial;
    for (let i = 1; i <= 7; i++) {
      expected = { ...expected, promisedBallot: i * 1024 + 1, incarnation: 1 + (i >> 1) };
      const written = store.write(expected);
      assert.equal(written.generation, 1 + i);
      // The new generation sits in its parity's file; the other file holds the one before.
      const read = found(fs);
      assert.equal(read.file, METADATA_FILE_NAMES[written.generation % 2]);
      assert.deepEqual(read.metadata, written);
      assert.deepEqual(read.damaged, []);
    }
    const reopened = MetadataStore.open(fs, DIR);
    assert.deepEqual(reopened?.current, { ...expected, generation: 8 });
    assert.deepEqual(reopened?.damagedAtOpen, []);
  });

  test('extreme values round trip', () => {
    const fs = new SimFs();
    const big = {
      clusterId: 'x'.repeat(255),
      replicaId: 0xffffffff,
      incarnation: 2 ** 53 - 1,
      promisedBallot: 2 ** 53 - 1,
      logEpoch: 2 ** 53 - 1,
    };
    MetadataStore.create(fs, DIR, big);
    assert.deepEqual(fields(found(fs).metadata), big);
  });

  test('contract violations are assertion failures', () => {
    const fs = new SimFs();
    const store = MetadataStore.create(fs, DIR, { ...initial, promisedBallot: 5000 });
    const lower = { ...initial, promisedBallot: 4999 };
    assert.throws(() => store.write(lower), AssertionFailure);
    assert.throws(
      () => store.write({ ...initial, promisedBallot: 5000, replicaId: 3 }),
      AssertionFailure,
    );
    assert.throws(
      () => store.write({ ...initial, promisedBallot: 5000, clusterId: 'other' }),
      AssertionFailure,
    );
    assert.throws(() => MetadataStore.create(fs, DIR, initial), AssertionFailure);
    assert.throws(
      () => MetadataStore.create(new SimFs(), DIR, { ...initial, clusterId: 'é'.repeat(128) }),
      AssertionFailure,
    );
  });
});

/** A cut pwrite tears mostly inside the first 96 bytes, where the record is (the rest is padding). */
const tearRecord: TearPolicy = (rng, data) =>
  rng.chance(0.7) ? rng.range(1, Math.min(data.length - 1, rng.chance(0.8) ? 96 : 1 << 20)) : 0;

describe('metadata power loss', () => {
  test(`${CRASH_SEEDS} seeds of torn writes and crashes: no durable promise lost`, (t) => {
    const seen = { tornSlots: 0, inFlightSurvived: 0, inFlightLost: 0, createCut: 0, crashes: 0 };
    for (let seed = 1; seed <= CRASH_SEEDS; seed++) {
      const rng = new Random(seed);
      const fs = new SimFs();
      /** The last state whose write returned (durable), and the one being written at the cut. */
      let durable: ReplicaMetadata | null = null;
      let inFlight: ReplicaMetadata | null = initial;
      let next = initial;
      for (let round = 0; round < 6; round++) {
        // Power fails at a random call of this round (creation: ~17 calls, then ~5 a write),
        // or not at all.
        const creating = durable === null;
        const cutAt = creating
          ? rng.chance(0.4)
            ? rng.int(20)
            : Infinity
          : rng.chance(0.15)
            ? Infinity
            : rng.int(8 + 5 * 6);
        const cutFs = new CutFs(fs, rng.fork(), cutAt, tearRecord);
        try {
          let store = durable === null ? null : MetadataStore.open(cutFs, DIR);
          if (store === null) {
            inFlight = initial;
            store = MetadataStore.create(cutFs, DIR, initial);
            durable = initial;
            inFlight = null;
          }
          for (let w = 0; w < 6; w++) {
            next = { ...next, promisedBallot: next.promisedBallot + rng.range(1, 5000) };
            if (rng.chance(0.2)) next = { ...next, logEpoch: next.logEpoch + 1 };
            inFlight = next;
            store.write(next);
            durable = next;
            inFlight = null;
          }
        } catch (error) {
          if (!(error instanceof PowerCut)) throw error;
          if (creating && durable === null) seen.createCut++;
        }
        fs.crash(rng);
        seen.crashes++;
        // After the crash: the newest durable state, or the one in flight — nothing else.
        const read = readMetadata(fs, DIR);
        if (read.kind === 'none') {
          assert.equal(durable, null, `seed ${seed}: metadata written durably vanished`);
          continue;
        }
        const got = fields(read.metadata);
        const allowed = [durable, inFlight].filter((m): m is ReplicaMetadata => m !== null);
        assert.ok(
          allowed.some((m) => JSON.stringify(m) === JSON.stringify(got)),
          `seed ${seed} round ${round}: read ${JSON.stringify(got)}, ` +
            `durable ${JSON.stringify(durable)}`,
        );
        if (inFlight !== null) {
          if (JSON.stringify(got) === JSON.stringify(inFlight)) seen.inFlightSurvived++;
          else seen.inFlightLost++;
        }
        seen.tornSlots += read.damaged.filter((p) => !p.detail.includes('missing')).length;
        // Whatever was read is now durable (it verified on the synced disk image).
        durable = got;
        next = got;
        inFlight = null;
      }
    }
    t.diagnostic(JSON.stringify(seen));
    // The seeds really exercised torn slots, lost and surviving in-flight writes, cut creation.
    assert.ok(seen.tornSlots > 25, JSON.stringify(seen));
    assert.ok(seen.inFlightLost > 50 && seen.inFlightSurvived > 50, JSON.stringify(seen));
    assert.ok(seen.createCut > 10, JSON.stringify(seen));
  });
});

describe('metadata damage', () => {
  function written(): { fs: SimFs; store: MetadataStore } {
    const fs = new SimFs();
    const store = MetadataStore.create(fs, DIR, initial);
    store.write({ ...initial, promisedBallot: 2048 }); // generation 2, meta-a
    store.write({ ...initial, promisedBallot: 3072 }); // generation 3, meta-b
    return { fs, store };
  }
  const crcAt = 60 + new TextEncoder().encode(initial.clusterId).length - 4;

  test('both slots damaged: PAXLINE_PROMISE_UNKNOWN naming each file and offset', () => {
    const { fs } = written();
    patch(fs, `${DIR}/meta-a`, 30, new Uint8Array([0x55]));
    patch(fs, `${DIR}/meta-b`, 0, new Uint8Array([0]));
    const error = storageError(() => readMetadata(fs, DIR));
    assert.equal(error.code, 'PAXLINE_PROMISE_UNKNOWN');
    assert.equal(error.file, 'meta-a');
    assert.equal(error.offset, crcAt);
    assert.deepEqual(
      error.problems.map((p) => [p.file, p.offset]),
      [
        ['meta-a', crcAt],
        ['meta-b', 0],
      ],
    );
    assert.match(error.message, new RegExp(`meta-a at offset ${crcAt}: CRC mismatch`));
    assert.match(error.message, /meta-b at offset 0: bad magic/);
    assert.throws(() => MetadataStore.open(fs, DIR), { code: 'PAXLINE_PROMISE_UNKNOWN' });
  });

  test('one file missing and the other damaged, or both empty, is PAXLINE_PROMISE_UNKNOWN', () => {
    const { fs } = written();
    fs.unlink(`${DIR}/meta-b`);
    patch(fs, `${DIR}/meta-a`, 8, new Uint8Array([9]));
    const error = storageError(() => readMetadata(fs, DIR));
    assert.deepEqual(
      error.problems.map((p) => [p.file, p.offset, p.detail]),
      [
        ['meta-a', 8, 'unsupported version 9'],
        ['meta-b', 0, 'file missing'],
      ],
    );
    const empty = new SimFs();
    empty.mkdirp(DIR);
    for (const name of METADATA_FILE_NAMES)
      empty.close(empty.open(`${DIR}/${name}`, { create: true }));
    assert.equal(storageError(() => readMetadata(empty, DIR)).code, 'PAXLINE_PROMISE_UNKNOWN');
  });

  test('newest slot damaged: previous state read and reported; next write repairs', () => {
    const { fs } = written();
    patch(fs, `${DIR}/meta-b`, crcAt, new Uint8Array([0, 0, 0, 0]));
    const store = MetadataStore.open(fs, DIR)!;
    assert.equal(store.current.promisedBallot, 2048);
    assert.equal(store.current.generation, 2);
    assert.deepEqual(store.damagedAtOpen, [
      { file: 'meta-b', offset: crcAt, detail: 'CRC mismatch' },
    ]);
    store.write({ ...initial, promisedBallot: 4096 }); // generation 3 overwrites meta-b
    assert.deepEqual(found(fs).damaged, []);
    assert.equal(found(fs).metadata.promisedBallot, 4096);
  });

  test('a missing slot (crash during creation) is recreated by the next write', () => {
    const { fs } = written();
    fs.unlink(`${DIR}/meta-a`);
    fs.fsyncDir(DIR);
    const store = MetadataStore.open(fs, DIR)!;
    assert.equal(store.current.generation, 3);
    store.write({ ...initial, promisedBallot: 5000 });
    const read = found(fs);
    assert.equal(read.file, 'meta-a');
    assert.deepEqual(read.damaged, []);
  });

  test('a slot copied over the other file is refused by the parity check', () => {
    const { fs } = written();
    patch(fs, `${DIR}/meta-a`, 0, fs.readFile(`${DIR}/meta-b`));
    const read = found(fs);
    assert.equal(read.metadata.generation, 3);
    assert.deepEqual(read.damaged, [
      { file: 'meta-a', offset: 16, detail: 'generation 3 in the wrong slot' },
    ]);
  });

  test('slots that disagree on identity: PAXLINE_PROMISE_UNKNOWN', () => {
    const { fs } = written();
    const other = new SimFs();
    const store = MetadataStore.create(other, DIR, { ...initial, replicaId: 4 });
    store.write({ ...initial, replicaId: 4 });
    patch(fs, `${DIR}/meta-a`, 0, other.readFile(`${DIR}/meta-a`));
    const error = storageError(() => readMetadata(fs, DIR));
    assert.equal(error.code, 'PAXLINE_PROMISE_UNKNOWN');
    assert.match(error.message, /disagree on identity/);
  });
});

describe('metadata disk errors', () => {
  test('failed fdatasync: PAXLINE_FSYNC_FAILED, store stops, durable state survives', () => {
    const fs = new SimFs();
    const store = MetadataStore.create(fs, DIR, initial);
    store.write({ ...initial, promisedBallot: 2048 });
    fs.failNext('fdatasync', 'EIO');
    const error = storageError(() => store.write({ ...initial, promisedBallot: 3072 }));
    assert.equal(error.code, 'PAXLINE_FSYNC_FAILED');
    assert.equal(error.file, `${DIR}/meta-b`);
    assert.equal(
      storageError(() => store.write({ ...initial, promisedBallot: 4096 })),
      error,
    );
    fs.crash(new Random(1));
    assert.ok([2048, 3072].includes(found(fs).metadata.promisedBallot));
  });

  test('ENOSPC: PAXLINE_DISK_FULL', () => {
    const fs = new SimFs();
    const store = MetadataStore.create(fs, DIR, initial);
    fs.failNext('pwrite', 'ENOSPC');
    assert.equal(storageError(() => store.write(initial)).code, 'PAXLINE_DISK_FULL');
  });
});

test('round trip on the real file system (NodeFileLayer)', () => {
  const root = mkdtempSync(join(tmpdir(), 'paxline-meta-'));
  try {
    const fs = new NodeFileLayer();
    const dir = join(root, 'meta');
    assert.deepEqual(readMetadata(fs, dir), { kind: 'none' });
    const store = MetadataStore.create(fs, dir, initial);
    store.write({ ...initial, promisedBallot: 7 * 1024 + 2 });
    const reopened = MetadataStore.open(fs, dir);
    assert.deepEqual(reopened?.current, { ...initial, promisedBallot: 7 * 1024 + 2, generation: 2 });
    assert.deepEqual(fs.readdir(dir), ['meta-a', 'meta-b']);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
