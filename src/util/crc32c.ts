/**
 * CRC-32C (Castagnoli; reflected polynomial 0x82F63B78), the checksum that frames every durable
 * record. `crc32cJs` is pure JavaScript; `crc32c` hands inputs of CRC32C_NATIVE_BYTES_MIN bytes
 * or more to the native @node-rs/crc32 when it loads, and falls back to `crc32cJs` otherwise.
 *
 * Method: slicing-by-8. `TABLE` holds eight 256-entry tables back to back; table k maps a byte to
 * the CRC contribution of that byte followed by k zero bytes, so eight input bytes fold into the
 * register with eight independent look-ups instead of a serial chain of eight.
 *
 * Invariants:
 *  - The result is an unsigned 32-bit integer.
 *  - Chaining: crc32c(b, crc32c(a)) === crc32c(a ‖ b) for all byte strings a and b, so callers can
 *    checksum a header and a payload without concatenating them.
 *  - The input may be any view (any byteOffset); bytes are read one at a time, never via a
 *    Uint32Array over the buffer, so alignment and platform endianness do not matter.
 */
import { createRequire } from 'node:module';

const POLY_REFLECTED = 0x82f63b78;
const TABLE_COUNT = 8;

/** TABLE[k * 256 + b]: CRC of byte b followed by k zero bytes (register pre/post-inversion off). */
const TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(TABLE_COUNT * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? (c >>> 1) ^ POLY_REFLECTED : c >>> 1;
    table[b] = c >>> 0;
  }
  for (let b = 0; b < 256; b++) {
    let c = table[b]!;
    for (let k = 1; k < TABLE_COUNT; k++) {
      c = (c >>> 8) ^ table[c & 0xff]!;
      table[k * 256 + b] = c >>> 0;
    }
  }
  // Known first entries of the Castagnoli table: a cheap guard against a mistyped polynomial.
  if (table[1] !== 0xf26b8303 || table[128] !== 0x82f63b78) {
    throw new Error('assertion failed: crc32c table does not match the Castagnoli polynomial');
  }
  return table;
}

/**
 * Returns the CRC-32C of `data`, continuing from `seed` (the CRC of the bytes before `data`;
 * 0 for a fresh checksum). The result is unsigned.
 */
export function crc32cJs(data: Uint8Array, seed = 0): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error('assertion failed: crc32c seed must be an unsigned 32-bit integer');
  }
  const t = TABLE;
  let crc = ~seed;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  while (i < end8) {
    const lo = crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    crc =
      t[0x700 + (lo & 0xff)]! ^
      t[0x600 + ((lo >>> 8) & 0xff)]! ^
      t[0x500 + ((lo >>> 16) & 0xff)]! ^
      t[0x400 + (lo >>> 24)]! ^
      t[0x300 + (hi & 0xff)]! ^
      t[0x200 + ((hi >>> 8) & 0xff)]! ^
      t[0x100 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
    i += 8;
  }
  while (i < data.length) {
    crc = (crc >>> 8) ^ t[(crc ^ data[i]!) & 0xff]!;
    i++;
  }
  return ~crc >>> 0;
}

type NativeCrc = (input: Buffer, initial?: number) => number;

/**
 * The native SIMD implementation from @node-rs/crc32, when it loads (it ships prebuilt binaries
 * in its registry packages). Measured here (docs/decisions/0003-crc32c.md): slower than the
 * table below ~300 bytes (call overhead), 2-5× faster from 512 bytes up.
 */
const native: NativeCrc | null = (() => {
  try {
    const required = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: NativeCrc };
    const probe = Buffer.from('123456789');
    return required.crc32c(probe) >>> 0 === 0xe3069283 ? required.crc32c : null;
  } catch {
    return null;
  }
})();

/** Inputs at least this long go to the native implementation. */
export const CRC32C_NATIVE_BYTES_MIN = 384;

export const crc32cImplementation: 'native+js' | 'js' = native ? 'native+js' : 'js';

/** CRC-32C of `data`, chainable through `seed`: crc32c(b, crc32c(a)) === crc32c(a ‖ b). */
export function crc32c(data: Uint8Array, seed = 0): number {
  if (native !== null && data.length >= CRC32C_NATIVE_BYTES_MIN) {
    return native(Buffer.from(data.buffer, data.byteOffset, data.byteLength), seed) >>> 0;
  }
  return crc32cJs(data, seed);
}
