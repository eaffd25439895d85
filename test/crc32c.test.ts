/**
 * CRC-32C: the native and table-driven implementations agree on every input and every seed, at
 * sizes on both sides of the dispatch threshold, including views at odd offsets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CRC32C_NATIVE_BYTES_MIN, crc32c, crc32cImplementation, crc32cJs } from '../src/util/crc32c.js';

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
