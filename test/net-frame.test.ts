/**
 * Framing (src/net/frame.ts): the streaming FrameDecoder yields exactly the frames written, however
 * the stream is cut (byte by byte, random splits, many frames per chunk); oversized, undersized
 * and corrupted frames throw PAXLINE_BAD_FRAME and poison the decoder; hellos round-trip and
 * malformed ones are rejected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  FRAME_HEADER_BYTES,
  FrameDecoder,
  PROTOCOL_VERSION,
  clusterTag,
  decodeHello,
  encodeFrame,
  encodeHello,
  type Frame,
  type FrameHeader,
} from '../src/net/frame.js';
import { NetError } from '../src/net/net-error.js';
import { crc32c } from '../src/util/crc32c.js';

const isBadFrame = (e: unknown): boolean => e instanceof NetError && e.code === 'PAXLINE_BAD_FRAME';

const headerArb: fc.Arbitrary<FrameHeader> = fc.record(
  {
    version: fc.nat(255),
    clusterTag: fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([a, b]) => a * 0x10000 + b),
    config: fc.nat(),
  },
  { noNullPrototype: true },
);
const frameArb = fc.tuple(headerArb, fc.uint8Array({ maxLength: 600 }));

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the given cut points (sorted, deduplicated, in range). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let last = 0;
  for (const p of [...points, bytes.length]) {
    chunks.push(bytes.slice(last, p));
    last = p;
  }
  return chunks;
}

function plain(f: Frame): { header: FrameHeader; payload: Uint8Array } {
  return {
    header: { version: f.version, clusterTag: f.clusterTag, config: f.config },
    payload: Uint8Array.from(f.payload),
  };
}

test('frame: layout is [len][crc][version][tag][config][payload] with crc over the rest', () => {
  const payload = Uint8Array.of(7, 8, 9);
  const frame = encodeFrame({ version: 1, clusterTag: 0x01020304, config: 5 }, payload);
  const dv = new DataView(frame.buffer);
  assert.equal(frame.length, FRAME_HEADER_BYTES + 3);
  assert.equal(dv.getUint32(0, true), frame.length - 4);
  assert.equal(dv.getUint32(4, true), crc32c(frame.subarray(8)));
  assert.equal(frame[8], 1);
  assert.equal(dv.getUint32(9, true), 0x01020304);
  assert.equal(dv.getUint32(13, true), 5);
  assert.deepEqual(frame.subarray(17), payload);
  assert.equal(clusterTag('alpha'), crc32c(new TextEncoder().encode('alpha')));
});

test('frame: decoder yields the frames written, fed byte by byte', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 5 }), (frames) => {
      const stream = concat(frames.map(([h, p]) => encodeFrame(h, p)));
      const decoder = new FrameDecoder();
      const out: Frame[] = [];
      for (let i = 0; i < stream.length; i++) out.push(...decoder.push(stream.subarray(i, i + 1)));
      assert.deepStrictEqual(out.map(plain), frames.map(([header, payload]) => ({ header, payload })));
      assert.equal(decoder.bufferedBytes(), 0);
    }),
    { numRuns: 60 },
  );
});

test('frame: decoder yields the frames written, in random splits and many per chunk', () => {
  fc.assert(
    fc.property(fc.array(frameArb, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (frames, cuts) => {
      const stream = concat(frames.map(([h, p]) => encodeFrame(h, p)));
      const decoder = new FrameDecoder();
      const out: Frame[] = [];
      for (const chunk of split(stream, cuts)) out.push(...decoder.push(chunk));
      assert.deepStrictEqual(out.map(plain), frames.map(([header, payload]) => ({ header, payload })));
      assert.equal(decoder.bufferedBytes(), 0);
    }),
    { numRuns: 500 },
  );
});

test('frame: a frame wholly inside one chunk is a view of that chunk (no copy)', () => {
  const frame = encodeFrame({ version: 1, clusterTag: 1, config: 1 }, Uint8Array.of(1, 2, 3));
  const [out] = new FrameDecoder().push(frame);
  assert.ok(out !== undefined);
  assert.equal(out.payload.buffer, frame.buffer);
  assert.equal(out.frameBytes, frame.length);
});

test('frame: oversized and undersized lengths are rejected as soon as the length is read', () => {
  const decoder = new FrameDecoder(1000);
  const ok = encodeFrame({ version: 1, clusterTag: 1, config: 1 }, new Uint8Array(1000 - FRAME_HEADER_BYTES));
  assert.equal(decoder.push(ok).length, 1);
  const big = encodeFrame({ version: 1, clusterTag: 1, config: 1 }, new Uint8Array(1001 - FRAME_HEADER_BYTES));
  // Only the 4 length bytes: rejected before the body arrives.
  assert.throws(() => decoder.push(big.subarray(0, 4)), isBadFrame);
  // The decoder is poisoned afterwards: the stream has lost its boundaries.
  assert.throws(() => decoder.push(ok), isBadFrame);

  for (const length of [0, 1, FRAME_HEADER_BYTES - 5, 0xffffffff]) {
    const d = new FrameDecoder();
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, length, true);
    assert.throws(() => d.push(prefix), isBadFrame, `length ${length}`);
  }
});

test('frame: any single bit flip is rejected or leaves the frame incomplete (property)', () => {
  fc.assert(
    fc.property(frameArb, fc.nat(), fc.nat(7), ([h, p], pos, bit) => {
      const frame = encodeFrame(h, p);
      frame[pos % frame.length]! ^= 1 << bit;
      const decoder = new FrameDecoder();
      let out: Frame[] = [];
      try {
        out = decoder.push(frame);
      } catch (error) {
        assert.ok(isBadFrame(error), String(error));
        return;
      }
      // A flip that shortens the length fails the checksum (thrown above); one that lengthens it
      // leaves the decoder waiting for bytes that never come. It never yields a wrong frame.
      assert.equal(out.length, 0);
      assert.ok(decoder.bufferedBytes() > 0);
    }),
    { numRuns: 2000 },
  );
});

test('frame: hello round-trips; malformed hellos are rejected', () => {
  const hello = { replicaId: 3, incarnation: 2 ** 40, clusterId: 'prod-east-ü' };
  assert.deepStrictEqual(decodeHello(encodeHello(hello)), hello);
  const bytes = encodeHello(hello);
  const cases: [string, (b: Uint8Array, dv: DataView) => Uint8Array][] = [
    ['wrong tag', (b) => ((b[0] = 1), b)],
    ['truncated', (b) => b.subarray(0, b.length - 1)],
    ['too short', (b) => b.subarray(0, 10)],
    ['extended', (b) => concat([b, Uint8Array.of(0)])],
    ['fractional incarnation', (b, dv) => (dv.setFloat64(5, 0.5, true), b)],
    ['bad UTF-8', (b) => ((b[b.length - 1] = 0xff), b)],
  ];
  for (const [name, patch] of cases) {
    const copy = bytes.slice();
    assert.throws(() => decodeHello(patch(copy, new DataView(copy.buffer))), isBadFrame, name);
  }
  assert.equal(PROTOCOL_VERSION, 1);
});
