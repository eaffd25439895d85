/**
 * The KV checkpoint's hand-written MessagePack frames (src/kv/state-frames.ts): every frame reads
 * back through msgpackr — the reader checkpoints have always used — to exactly the items written;
 * a stream written the old way (msgpackr's pack) still loads; and a state with multi-byte strings,
 * long strings and decrees beyond 2^32 survives save → load.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodeKvCommand, kvPackr } from '../src/kv/kv-codec.js';
import { KV_STATE_MAGIC, KV_STATE_VERSION, KvMachine } from '../src/kv/kv-machine.js';
import { FrameWriter } from '../src/kv/state-frames.js';
import type { StateReader } from '../src/runtime/state-machine.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

type Item = { u: number } | { s: string } | { p: [number, Uint8Array][] };

/** Splits a stream into frame bodies (u32 LE length | body). */
function frames(stream: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  for (let at = 0; at < stream.length;) {
    const n = dv.getUint32(at, true);
    out.push(stream.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}

function readerOf(bytes: Uint8Array): StateReader {
  let at = 0;
  return { read: (max) => (at >= bytes.length ? null : bytes.slice(at, (at = Math.min(bytes.length, at + max)))) };
}

const uintArb = fc.oneof(
  fc.nat(300),
  fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 2 ** 32 - 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);
const strArb = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom('x'.repeat(31), 'x'.repeat(32), 'é'.repeat(16), 'é'.repeat(128), 'y'.repeat(255), 'y'.repeat(256),
    '€'.repeat(22_000), 'z'.repeat(70_000)),
);
const itemArb: fc.Arbitrary<Item> = fc.oneof(
  uintArb.map((u) => ({ u })),
  strArb.map((s) => ({ s })),
  fc.array(fc.tuple(uintArb, fc.uint8Array({ maxLength: 300 })), { maxLength: 9 }).map((p) => ({ p })),
);

test('state frames: every frame reads back through msgpackr to the items written (property)', () => {
  fc.assert(fc.property(fc.array(fc.array(itemArb, { minLength: 1, maxLength: 12 }), { maxLength: 4 }), (framesIn) => {
    const parts: Uint8Array[] = [];
    const w = new FrameWriter({ write: (b) => parts.push(b.slice()) }, 4 * 1024 * 1024);
    for (const items of framesIn) {
      for (const it of items) {
        if ('u' in it) w.uint(it.u);
        else if ('s' in it) w.str(it.s);
        else w.pairs(it.p.map(([seq]) => seq), it.p.map(([, r]) => r));
      }
      assert.equal(w.itemCount, items.length);
      w.flush();
    }
    assert.equal(parts.length, framesIn.length, 'one write per frame');
    const bodies = frames(Buffer.concat(parts));
    assert.equal(bodies.length, framesIn.length);
    bodies.forEach((body, i) => {
      // What msgpackr reads (strings as the UTF-8 encoder writes them: lone surrogates → U+FFFD).
      const expected = framesIn[i]!.map((it) =>
        'u' in it ? it.u : 's' in it ? Buffer.from(it.s, 'utf8').toString('utf8') : it.p.flatMap(([seq, r]) => [seq, r]));
      const got = (kvPackr.unpack(body) as unknown[]).map((x) =>
        Array.isArray(x) ? x.map((y: unknown) => (y instanceof Uint8Array ? new Uint8Array(y) : y)) : x);
      assert.deepStrictEqual(got, expected);
    });
  }), { numRuns: 300 });
});

test('state frames: an empty frame is not written; discard drops a started one; a frame too large throws', () => {
  const parts: Uint8Array[] = [];
  const w = new FrameWriter({ write: (b) => parts.push(b.slice()) }, 100);
  w.flush();
  w.uint(1);
  w.discard();
  w.flush();
  assert.equal(parts.length, 0);
  w.str('a'.repeat(200));
  assert.throws(() => w.flush(), /too large/);
});

function filled(): KvMachine {
  const m = new KvMachine();
  let decree = 2 ** 32 - 3; // lastDecree values cross 2^32
  const keys = ['plain', 'ünïcödé-ключ', '€'.repeat(40), 'k'.repeat(300), '🙂 emoji'];
  for (let i = 0; i < 3000; i++) {
    const key = keys[i % keys.length]! + String(i % 700);
    const cmd = { op: 'put' as const, clientId: 1 + (i % 37), seq: 1 + Math.floor(i / 37), ackedBelow: Math.floor(i / 37) - 2 > 0 ? Math.floor(i / 37) - 2 : 0, key, value: 'värde-' + '∑'.repeat(i % 50) };
    m.execute(encodeKvCommand(cmd), { decree: ++decree });
  }
  return m;
}

test('kv machine: multi-byte strings, long strings and decrees past 2^32 survive save → load', () => {
  const m = filled();
  const parts: Uint8Array[] = [];
  m.saveState({ write: (b) => parts.push(b.slice()) });
  const loaded = new KvMachine();
  loaded.loadState(readerOf(Buffer.concat(parts)));
  assert.equal(loaded.digest(), m.digest());
  assert.equal(loaded.clientTableDigest(), m.clientTableDigest());
});

test('kv machine: a stream written by msgpackr (checkpoints from before the hand-written frames) still loads', () => {
  const m = filled();
  // Re-encode every frame of today's stream the old way: msgpackr's pack of the same items.
  const parts: Uint8Array[] = [];
  m.saveState({ write: (b) => parts.push(b.slice()) });
  const old = frames(Buffer.concat(parts)).map((body) => {
    const packed = kvPackr.pack(kvPackr.unpack(body));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(packed.length);
    return Buffer.concat([len, packed]);
  });
  const first = kvPackr.unpack(frames(old[0]!)[0]!) as unknown[];
  assert.deepEqual(first.slice(0, 2), [KV_STATE_MAGIC, KV_STATE_VERSION]);
  assert.notDeepEqual(Buffer.concat(old), Buffer.concat(parts), 'msgpackr writes the array headers differently');
  const loaded = new KvMachine();
  loaded.loadState(readerOf(Buffer.concat(old)));
  assert.equal(loaded.digest(), m.digest());
  assert.equal(loaded.clientTableDigest(), m.clientTableDigest());
});

/**
 * The same commands as the generator of test/data/kv-state-msgpackr-ed825c4.bin: a checkpoint
 * stream written at ed825c4 by msgpackr's pack (the writer before state-frames.ts).
 */
function small(): KvMachine {
  const m = new KvMachine();
  let decree = 2 ** 32 - 3;
  const keys = ['plain', 'ünïcödé-ключ', '€'.repeat(12), 'k'.repeat(40), '🙂 emoji'];
  for (let i = 0; i < 300; i++) {
    const seq = 1 + Math.floor(i / 7);
    m.execute(encodeKvCommand({ op: 'put', clientId: 1 + (i % 7), seq, ackedBelow: Math.max(0, seq - 2),
      key: keys[i % 5]! + String(i % 40), value: 'värde-' + '∑'.repeat(i % 9) }), { decree: ++decree });
  }
  return m;
}

test('kv machine: a checkpoint stream written by the old writer (ed825c4, msgpackr) loads to the same state', () => {
  const file = fileURLToPath(new URL('../../test/data/kv-state-msgpackr-ed825c4.bin', import.meta.url));
  const old = readFileSync(file);
  const m = small();
  const parts: Uint8Array[] = [];
  m.saveState({ write: (b) => parts.push(b.slice()) });
  assert.notDeepEqual(new Uint8Array(old), new Uint8Array(Buffer.concat(parts)), 'the two writers differ in bytes');
  const loaded = new KvMachine();
  loaded.loadState(readerOf(new Uint8Array(old)));
  assert.equal(loaded.digest(), m.digest());
  assert.equal(loaded.clientTableDigest(), m.clientTableDigest());
});
