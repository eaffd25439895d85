/**
 * CRC-32C: the native and table-driven implementations agree on every input and every seed, at
 * sizes on both sides of the dispatch threshold, including views at odd offsets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CRC32C_NATIVE_BYTES_MIN, crc32c, crc32cImplementation, crc32cJs } from '../src/util/crc32c.js';

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

test('crc32c: published vectors (RFC 3720 B.4 and the check value)', () => {
  const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
  const cases: [Uint8Array, number][] = [
    [ascii('123456789'), 0xe3069283],
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [ascending, 0x46dd794e],
    [ascending.slice().reverse(), 0x113fdb5c],
    [new Uint8Array(0), 0],
  ];
  for (const [data, expected] of cases) {
    assert.equal(crc32c(data), expected);
    assert.equal(crc32cJs(data), expected);
  }
});

test('crc32c: the table matches the bitwise reference on unaligned views', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 40 }), (bytes, skip) => {
    const view = bytes.subarray(Math.min(skip, bytes.length));
    assert.equal(crc32cJs(view), crc32cReference(view));
  }), { numRuns: 500, seed: 99 });
});

test('crc32c: dispatching implementation agrees with the table on random inputs', () => {
  assert.equal(crc32cImplementation, 'native+js', 'the native package loads on this machine');
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 0, maxLength: 3 * CRC32C_NATIVE_BYTES_MIN }),
    fc.nat({ max: 7 }), fc.nat({ max: 0xffffffff }),
    (bytes, skip, seed) => {
      const view = bytes.subarray(Math.min(skip, bytes.length));
      assert.equal(crc32c(view, seed), crc32cJs(view, seed));
    }), { numRuns: 2000, seed: 9 });
});

test('crc32c: chaining across the threshold equals one pass', () => {
  const data = new Uint8Array(5000).map((_, i) => (i * 131) & 0xff);
  for (const cut of [1, 100, CRC32C_NATIVE_BYTES_MIN - 1, CRC32C_NATIVE_BYTES_MIN, 4000]) {
    assert.equal(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut))), crc32c(data));
  }
  assert.equal(crc32c(new TextEncoder().encode('123456789')), 0xe3069283);
});
