/**
 * Tests of CRC-32C (published vectors, a bitwise reference, chaining) and of RecordLog: framing,
 * torn-tail recovery, failure handling, and a power-loss property over SimFs — whatever a crash
 * keeps, recovery returns a prefix of the appended records that contains everything appended
 * before the last completed sync, and this holds again after appending more and crashing again.
 *
 * The property runs seeds BASE..BASE+RUNS-1; BASE is 1 unless the environment sets SEED, so a
 * failure (its message names the seed) replays with `SEED=<seed>`.
 */
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { RECORD_FILE_NAME, RECORD_HEADER_BYTES, RecordLog } from '../src/sim/record-log.js';
import { SIM_PAGE_BYTES, SimFs } from '../src/sim/sim-fs.js';
import { crc32c } from '../src/util/crc32c.js';
import { Random } from '../src/util/random.js';

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

/** Bit-at-a-time CRC-32C: slow and obviously right, the reference for the sliced version. */
function crc32cReference(data: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

function randomBytes(rng: Random, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = rng.int(256);
  return out;
}

describe('crc32c', () => {
  test('published vectors (RFC 3720 B.4 and the check value)', () => {
    const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
    const cases: [Uint8Array, number][] = [
      [ascii('123456789'), 0xe3069283],
      [new Uint8Array(32), 0x8a9136aa],
      [new Uint8Array(32).fill(0xff), 0x62a8ab43],
      [ascending, 0x46dd794e],
      [ascending.slice().reverse(), 0x113fdb5c],
      [new Uint8Array(0), 0],
    ];
    for (const [data, expected] of cases) assert.equal(crc32c(data), expected);
  });

  test('matches the bitwise reference on unaligned views, and chains', () => {
    const rng = new Random(99);
    const backing = randomBytes(rng, 300);
    for (let i = 0; i < 500; i++) {
      const start = rng.int(40);
      const view = backing.subarray(start, start + rng.int(200));
      assert.equal(crc32c(view), crc32cReference(view));
      const cut = rng.int(view.length + 1);
      const chained = crc32c(view.subarray(cut), crc32c(view.subarray(0, cut)));
      assert.equal(chained, crc32c(view));
    }
  });
});

describe('RecordLog', () => {
  test('append, sync, recover: records come back in order; empty payloads work', () => {
    const fs = new SimFs();
    const { log, records, tornBytes } = RecordLog.recover(fs, '/data');
    assert.deepEqual(records, []);
    assert.equal(tornBytes, 0);
    const payloads = [ascii('a'), new Uint8Array(0), ascii('ccc'), new Uint8Array(5000).fill(3)];
    for (const p of payloads) log.append(p);
    log.sync();
    assert.equal(log.bytes, payloads.reduce((n, p) => n + RECORD_HEADER_BYTES + p.length, 0));
    log.close();
    const again = RecordLog.recover(fs, '/data');
    assert.deepEqual(again.records.map((r) => [...r]), payloads.map((p) => [...p]));
    assert.equal(again.log.bytes, log.bytes);
  });

  test('a failed append or sync stops the log; recovery keeps what was synced', () => {
    const fs = new SimFs();
    const { log } = RecordLog.recover(fs, '/data');
    log.append(ascii('kept'));
    log.sync();
    fs.failNext('pwrite', 'ENOSPC');
    assert.throws(() => log.append(ascii('x')), { code: 'ENOSPC' });
    assert.throws(() => log.append(ascii('y')), /earlier write or sync failed/);
    assert.throws(() => log.sync(), /earlier write or sync failed/);
    const second = RecordLog.recover(fs, '/data');
    assert.deepEqual(second.records.map((r) => new TextDecoder().decode(r)), ['kept']);
    fs.failNext('fdatasync', 'EIO');
    second.log.append(ascii('z'));
    assert.throws(() => second.log.sync(), { code: 'EIO' });
    assert.throws(() => second.log.append(ascii('w')), /earlier write or sync failed/);
  });

  test('power loss at random points never loses a synced record nor invents one', () => {
    const base = Number(process.env['SEED'] ?? 1);
    const runs = 1_000;
    const totals = { tornRecoveries: 0, unsyncedKept: 0, synced: 0, crashes: 0 };
    for (let seed = base; seed < base + runs; seed++) powerLossRun(seed, totals);
    // Guard against a vacuous property: crashes must really tear tails and keep unsynced data.
    assert.ok(totals.tornRecoveries > runs / 10, JSON.stringify(totals));
    assert.ok(totals.unsyncedKept > runs / 10, JSON.stringify(totals));
    assert.ok(totals.synced > runs, JSON.stringify(totals));
  });

  test('over NodeFileLayer: a garbage tail is cut and the file truncated', () => {
    const root = mkdtempSync(join(tmpdir(), 'paxline-rl-'));
    try {
      const fs = new NodeFileLayer();
      const dir = join(root, 'log');
      const first = RecordLog.recover(fs, dir);
      for (const word of ['one', 'two', 'three']) first.log.append(ascii(word));
      first.log.sync();
      const validBytes = first.log.bytes;
      first.log.close();
      appendFileSync(join(dir, RECORD_FILE_NAME), Uint8Array.of(5, 0, 0, 0, 1, 2, 3));
      const second = RecordLog.recover(fs, dir);
      const words = second.records.map((r) => new TextDecoder().decode(r));
      assert.deepEqual(words, ['one', 'two', 'three']);
      assert.equal(second.tornBytes, 7);
      assert.equal(statSync(join(dir, RECORD_FILE_NAME)).size, validBytes);
      second.log.append(ascii('four'));
      second.log.sync();
      second.log.close();
      assert.equal(RecordLog.recover(fs, dir).records.length, 4);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

interface Totals {
  tornRecoveries: number;
  unsyncedKept: number;
  synced: number;
  crashes: number;
}

/** Mostly small records, some spanning pages, a few empty or all-zero. */
function randomPayload(rng: Random): Uint8Array {
  const roll = rng.int(10);
  if (roll === 0) return new Uint8Array(rng.range(0, 64));
  const length = roll <= 6 ? rng.range(1, 200) : rng.range(200, 2 * SIM_PAGE_BYTES);
  return randomBytes(rng, length);
}

/**
 * One run: two or three rounds of (random appends and syncs, crash, recover, check). The model
 * `appended` is the sequence the file should hold; `durable` counts its records covered by the
 * last completed sync (or recovery, which syncs).
 */
function powerLossRun(seed: number, totals: Totals): void {
  const rng = new Random(seed);
  const fs = new SimFs();
  let { log } = RecordLog.recover(fs, '/data/log');
  let appended: Uint8Array[] = [];
  let durable = 0;
  const rounds = rng.range(2, 3);
  for (let round = 0; round < rounds; round++) {
    const steps = rng.range(0, 30);
    for (let step = 0; step < steps; step++) {
      if (rng.chance(0.25)) {
        log.sync();
        durable = appended.length;
        totals.synced++;
      } else {
        const payload = randomPayload(rng);
        log.append(payload);
        appended.push(payload);
      }
    }
    fs.crash(rng);
    totals.crashes++;
    const recovered = RecordLog.recover(fs, '/data/log');
    const got = recovered.records;
    const where = `seed ${seed} round ${round}`;
    assert.ok(got.length >= durable, `${where}: lost synced records (${got.length} < ${durable})`);
    assert.ok(got.length <= appended.length, `${where}: phantom records`);
    for (let i = 0; i < got.length; i++) {
      assert.deepEqual(got[i], appended[i], `${where}: record ${i} differs`);
    }
    if (recovered.tornBytes > 0) totals.tornRecoveries++;
    if (got.length > durable) totals.unsyncedKept++;
    log = recovered.log;
    appended = appended.slice(0, got.length);
    durable = got.length;
  }
}
