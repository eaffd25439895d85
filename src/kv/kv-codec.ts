/**
 * Encoding of the key-value service's commands, fast-read queries and results: each is one
 * msgpack array (msgpackr, records off) whose first element is a tag. Keys and values are strings.
 *
 *   command  put:    [1, clientId, seq, ackedBelow, key, value]
 *            get:    [2, clientId, seq, ackedBelow, key]
 *            cas:    [3, clientId, seq, ackedBelow, key, expected | nil, value]
 *   query    get:    [16, key]                      (executeFastRead; no clientId, no seq)
 *            digest: [17]                           (answered by a value result: the digest)
 *   result   ok:     [0]                            (put)
 *            value:  [1, value | nil]               (get; nil when the key is absent)
 *            cas:    [2, swapped]                   (boolean)
 *            error:  [3, code, message]             (strings; the command did not run)
 *
 * Invariants of a well-formed command (checked by the decoder, so every replica rejects the same
 * bytes the same way):
 *  - clientId is an integer in [0, KV_CLIENT_ID_MAX); seq is an integer in [1, 2^53);
 *    ackedBelow is an integer in [0, seq]: "every seq of this client below ackedBelow has been
 *    answered", so the command itself (seq) is never below it.
 *  - a key is at most KV_KEY_BYTES_MAX UTF-8 bytes, a value at most KV_VALUE_BYTES_MAX.
 * Tags are the format version: a changed layout gets new tags, old ones stay readable.
 *
 * Binary layout (format 2, what the encoders write; the msgpack arrays above stay readable).
 * Commands and the common results are fixed little-endian layouts, not msgpack: decoding a
 * msgpack command cost ~1 µs per command on each replica and encoding ~1 µs in the client
 * (profiles/OPTIMIZATIONS.md). The first byte never starts a msgpack array (0x90–0x9f, 0xdc,
 * 0xdd), so the two formats cannot be confused.
 *
 *   command  0xb1 put | f64 clientId | f64 seq | f64 ackedBelow | u16 keyBytes | key
 *                     | u32 valueBytes | value
 *            0xb2 get | f64 clientId | f64 seq | f64 ackedBelow | u16 keyBytes | key
 *            0xb3 cas | f64 clientId | f64 seq | f64 ackedBelow | u16 keyBytes | key
 *                     | u8 hasExpected | u32 expectedBytes | expected | u32 valueBytes | value
 *   result   0xe0 ok · 0xe1 value absent · 0xe2 value | utf8 bytes to the end
 *            0xe3 cas not swapped · 0xe4 cas swapped · errors stay msgpack [3, code, message]
 * Strings are UTF-8; a malformed sequence decodes to U+FFFD (alike on every replica).
 *
 * Every encoder returns a fresh Uint8Array (msgpackr packs into a shared scratch buffer that the
 * next pack overwrites, so its result is copied before it leaves this module).
 */
import { Packr } from 'msgpackr';
import { KvError } from './kv-error.js';

/** Largest key, in UTF-8 bytes. */
export const KV_KEY_BYTES_MAX = 1024;
/** Largest value, in UTF-8 bytes. */
export const KV_VALUE_BYTES_MAX = 1024 * 1024;
/** Client ids are drawn uniformly from [0, KV_CLIENT_ID_MAX) (crypto.randomInt's range limit). */
export const KV_CLIENT_ID_MAX = 2 ** 48 - 1;

const TAG_PUT = 1;
const TAG_GET = 2;
const TAG_CAS = 3;
const TAG_QUERY_GET = 16;
const TAG_QUERY_DIGEST = 17;
const RESULT_OK = 0;
const RESULT_VALUE = 1;
const RESULT_CAS = 2;
const RESULT_ERROR = 3;

interface CommandHeader {
  readonly clientId: number;
  readonly seq: number;
  readonly ackedBelow: number;
  readonly key: string;
}

export type KvCommand =
  | (CommandHeader & { readonly op: 'put'; readonly value: string })
  | (CommandHeader & { readonly op: 'get' })
  | (CommandHeader & {
    readonly op: 'cas';
    readonly expected: string | null;
    readonly value: string;
  });

export type KvQuery = { readonly op: 'get'; readonly key: string } | { readonly op: 'digest' };

export type KvResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'value'; readonly value: string | null }
  | { readonly kind: 'cas'; readonly swapped: boolean }
  | { readonly kind: 'error'; readonly code: string; readonly message: string };

/**
 * One Packr per thread (module instance); packing and unpacking are synchronous. Records are off
 * (no shared structures between peers) and maps decode as Map, never as plain objects, so
 * untrusted bytes cannot reach an object's prototype; every decoder accepts arrays only.
 */
export const kvPackr = new Packr({ useRecords: false, mapsAsObjects: false });

/** Packs `value` and returns a copy the caller owns. */
export function packOwned(value: unknown): Uint8Array {
  return new Uint8Array(kvPackr.pack(value));
}

/** Unpacks one msgpack value that must span `bytes` exactly; undefined on any malformation. */
export function unpackOrUndefined(bytes: Uint8Array): unknown {
  try {
    return kvPackr.unpack(bytes);
  } catch {
    return undefined;
  }
}

export function isKeyOk(key: unknown): key is string {
  return typeof key === 'string' && utf8BytesAtMost(key, KV_KEY_BYTES_MAX);
}

export function isValueOk(value: unknown): value is string {
  return typeof value === 'string' && utf8BytesAtMost(value, KV_VALUE_BYTES_MAX);
}

/** A UTF-8 string takes at most 3 bytes per UTF-16 unit, so short strings skip the count. */
function utf8BytesAtMost(s: string, bytesMax: number): boolean {
  return s.length * 3 <= bytesMax || Buffer.byteLength(s, 'utf8') <= bytesMax;
}

function isIntIn(x: unknown, min: number, maxExclusive: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= min && x < maxExclusive;
}

const BIN_PUT = 0xb1;
const BIN_GET = 0xb2;
const BIN_CAS = 0xb3;
const BIN_HEADER_BYTES = 1 + 24 + 2;
const RES_OK = 0xe0;
const RES_ABSENT = 0xe1;
const RES_VALUE = 0xe2;
const RES_NOT_SWAPPED = 0xe3;
const RES_SWAPPED = 0xe4;

const utf8Encoder = new TextEncoder();
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/** UTF-8 length of s (ASCII strings: their length, without a scan of the encoder). */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function putF64(out: Uint8Array, at: number, x: number): void {
  f64[0] = x;
  // Eight stores: cheaper than TypedArray.prototype.set for eight bytes.
  out[at] = f64Bytes[0]!; out[at + 1] = f64Bytes[1]!; out[at + 2] = f64Bytes[2]!; out[at + 3] = f64Bytes[3]!;
  out[at + 4] = f64Bytes[4]!; out[at + 5] = f64Bytes[5]!; out[at + 6] = f64Bytes[6]!; out[at + 7] = f64Bytes[7]!;
}

function putU32(out: Uint8Array, at: number, n: number): void {
  out[at] = n & 0xff; out[at + 1] = (n >>> 8) & 0xff; out[at + 2] = (n >>> 16) & 0xff; out[at + 3] = n >>> 24;
}

function getF64(b: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[i] = b[at + i]!;
  return f64[0]!;
}

function putString(out: Uint8Array, at: number, s: string, bytes: number): void {
  if (bytes === s.length) for (let i = 0; i < bytes; i++) out[at + i] = s.charCodeAt(i);
  else utf8Encoder.encodeInto(s, out.subarray(at, at + bytes));
}

const utf8Slice = Buffer.prototype.utf8Slice as (this: Uint8Array, start: number, end: number) => string;

/**
 * Decodes UTF-8 (Buffer's native slice, which also works on a plain Uint8Array: ~0.15 µs for a
 * short string, half of TextDecoder's). A malformed sequence decodes to U+FFFD — the same string
 * on every replica, so replicas still agree.
 */
function getString(b: Uint8Array, at: number, bytes: number): string {
  return utf8Slice.call(b, at, at + bytes);
}

export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  const out = new Uint8Array(kvCommandBytes(cmd));
  encodeKvCommandInto(cmd, out);
  return out;
}

/** Bytes of `cmd` encoded (binary format 2). */
export function kvCommandBytes(cmd: KvCommand): number {
  const keyBytes = utf8Length(cmd.key);
  if (keyBytes > 0xffff) throw new KvError('PAXLINE_BAD_ARGUMENT', 'key too long', 'key');
  let size = BIN_HEADER_BYTES + keyBytes;
  if (cmd.op !== 'get') size += 4 + utf8Length(cmd.value);
  if (cmd.op === 'cas') size += 5 + (cmd.expected === null ? 0 : utf8Length(cmd.expected));
  return size;
}

/**
 * Encodes `cmd` into `out` from offset 0 and returns the bytes written — for a caller that
 * reuses one buffer per in-flight slot (replicate() copies its argument at once), saving an
 * allocation per command. Throws PAXLINE_BAD_ARGUMENT when `out` is too small.
 */
export function encodeKvCommandInto(cmd: KvCommand, out: Uint8Array): number {
  const keyBytes = utf8Length(cmd.key);
  if (keyBytes > 0xffff) throw new KvError('PAXLINE_BAD_ARGUMENT', 'key too long', 'key');
  const valueBytes = cmd.op === 'get' ? 0 : utf8Length(cmd.value);
  const expectedBytes = cmd.op === 'cas' && cmd.expected !== null ? utf8Length(cmd.expected) : 0;
  const size = BIN_HEADER_BYTES + keyBytes + (cmd.op === 'get' ? 0 : 4 + valueBytes) + (cmd.op === 'cas' ? 5 + expectedBytes : 0);
  if (out.length < size) throw new KvError('PAXLINE_BAD_ARGUMENT', `the command needs ${size} bytes, the buffer has ${out.length}`, 'out');
  out[0] = cmd.op === 'put' ? BIN_PUT : cmd.op === 'get' ? BIN_GET : BIN_CAS;
  putF64(out, 1, cmd.clientId);
  putF64(out, 9, cmd.seq);
  putF64(out, 17, cmd.ackedBelow);
  out[25] = keyBytes & 0xff;
  out[26] = keyBytes >>> 8;
  putString(out, BIN_HEADER_BYTES, cmd.key, keyBytes);
  let at = BIN_HEADER_BYTES + keyBytes;
  if (cmd.op === 'cas') {
    out[at++] = cmd.expected === null ? 0 : 1;
    putU32(out, at, expectedBytes);
    at += 4;
    if (cmd.expected !== null) putString(out, at, cmd.expected, expectedBytes);
    at += expectedBytes;
  }
  if (cmd.op !== 'get') {
    putU32(out, at, valueBytes);
    at += 4;
    putString(out, at, cmd.value, valueBytes);
    at += valueBytes;
  }
  return at;
}

function getU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000;
}

/** The binary (format 2) decoder; see the file comment for the layout. */
function tryDecodeBinaryCommand(b: Uint8Array): KvCommand | string {
  const tag = b[0];
  if (b.length < BIN_HEADER_BYTES) return 'command too short';
  const clientId = getF64(b, 1);
  const seq = getF64(b, 9);
  const ackedBelow = getF64(b, 17);
  if (!isIntIn(clientId, 0, KV_CLIENT_ID_MAX)) return 'clientId out of range';
  if (!isIntIn(seq, 1, Number.MAX_SAFE_INTEGER)) return 'seq out of range';
  if (!isIntIn(ackedBelow, 0, seq + 1)) return 'ackedBelow out of range';
  const keyBytes = b[25]! | (b[26]! << 8);
  if (keyBytes > KV_KEY_BYTES_MAX || BIN_HEADER_BYTES + keyBytes > b.length) return 'key is not a string of at most KV_KEY_BYTES_MAX bytes';
  const key = getString(b, BIN_HEADER_BYTES, keyBytes);
  let at = BIN_HEADER_BYTES + keyBytes;
  // Object literals written out whole (no shared header object spread into each): one
  // allocation per command, and every command object has one of three shapes.
  if (tag === BIN_GET) return at === b.length ? { op: 'get', clientId, seq, ackedBelow, key } : 'trailing bytes after a get';
  let expected: string | null = null;
  if (tag === BIN_CAS) {
    if (at + 5 > b.length || b[at]! > 1) return 'cas expected is not a string or nil';
    const has = b[at] === 1;
    const n = getU32(b, at + 1);
    at += 5;
    if (n > KV_VALUE_BYTES_MAX || at + n > b.length || (!has && n !== 0)) return 'cas expected is not a string or nil';
    if (has) expected = getString(b, at, n);
    at += n;
  }
  if (at + 4 > b.length) return 'value is not a string of at most KV_VALUE_BYTES_MAX bytes';
  const n = getU32(b, at);
  at += 4;
  if (n > KV_VALUE_BYTES_MAX || at + n !== b.length) return 'value is not a string of at most KV_VALUE_BYTES_MAX bytes';
  const value = getString(b, at, n);
  return tag === BIN_PUT ? { op: 'put', clientId, seq, ackedBelow, key, value }
    : { op: 'cas', clientId, seq, ackedBelow, key, expected, value };
}

/**
 * Decodes a command, or returns a constant reason string when the bytes are not a well-formed
 * command (deterministic: the same bytes give the same reason on every replica).
 */
export function tryDecodeKvCommand(bytes: Uint8Array): KvCommand | string {
  const t = bytes[0];
  if (t === BIN_PUT || t === BIN_GET || t === BIN_CAS) return tryDecodeBinaryCommand(bytes);
  const a = unpackOrUndefined(bytes);
  if (!Array.isArray(a)) return 'command is not a msgpack array';
  const [tag, clientId, seq, ackedBelow, key] = a as unknown[];
  if (!isIntIn(clientId, 0, KV_CLIENT_ID_MAX)) return 'clientId out of range';
  if (!isIntIn(seq, 1, Number.MAX_SAFE_INTEGER)) return 'seq out of range';
  if (!isIntIn(ackedBelow, 0, seq + 1)) return 'ackedBelow out of range';
  if (!isKeyOk(key)) return 'key is not a string of at most KV_KEY_BYTES_MAX bytes';
  const h = { clientId, seq, ackedBelow, key };
  if (tag === TAG_GET && a.length === 5) return { op: 'get', ...h };
  if (tag === TAG_PUT && a.length === 6) {
    const value: unknown = a[5];
    if (!isValueOk(value)) return 'value is not a string of at most KV_VALUE_BYTES_MAX bytes';
    return { op: 'put', ...h, value };
  }
  if (tag === TAG_CAS && a.length === 7) {
    const expected: unknown = a[5];
    const value: unknown = a[6];
    if (expected !== null && !isValueOk(expected)) return 'cas expected is not a string or nil';
    if (!isValueOk(value)) return 'value is not a string of at most KV_VALUE_BYTES_MAX bytes';
    return { op: 'cas', ...h, expected, value };
  }
  return 'unknown command tag or wrong arity';
}

export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  const r = tryDecodeKvCommand(bytes);
  if (typeof r === 'string') throw new KvError('PAXLINE_KV_BAD_COMMAND', `bad KV command: ${r}`);
  return r;
}

export function encodeKvQuery(q: KvQuery): Uint8Array {
  return q.op === 'get' ? packOwned([TAG_QUERY_GET, q.key]) : packOwned([TAG_QUERY_DIGEST]);
}

export function tryDecodeKvQuery(bytes: Uint8Array): KvQuery | string {
  const a = unpackOrUndefined(bytes);
  if (!Array.isArray(a)) return 'query is not a msgpack array';
  if (a[0] === TAG_QUERY_GET && a.length === 2) {
    const key: unknown = a[1];
    if (!isKeyOk(key)) return 'key is not a string of at most KV_KEY_BYTES_MAX bytes';
    return { op: 'get', key };
  }
  if (a[0] === TAG_QUERY_DIGEST && a.length === 1) return { op: 'digest' };
  return 'unknown query tag or wrong arity';
}

export function encodeKvResult(r: KvResult): Uint8Array {
  if (r.kind === 'ok') return Uint8Array.of(RES_OK);
  if (r.kind === 'cas') return Uint8Array.of(r.swapped ? RES_SWAPPED : RES_NOT_SWAPPED);
  if (r.kind === 'value') {
    if (r.value === null) return Uint8Array.of(RES_ABSENT);
    const n = utf8Length(r.value);
    const out = new Uint8Array(1 + n);
    out[0] = RES_VALUE;
    putString(out, 1, r.value, n);
    return out;
  }
  return packOwned([RESULT_ERROR, r.code, r.message]);
}

/** Decodes a result; throws KvError PAXLINE_PROTOCOL when the bytes are not one. */
export function decodeKvResult(bytes: Uint8Array): KvResult {
  const t = bytes[0];
  if (bytes.length === 1 && t === RES_OK) return { kind: 'ok' };
  if (bytes.length === 1 && t === RES_ABSENT) return { kind: 'value', value: null };
  if (bytes.length === 1 && (t === RES_SWAPPED || t === RES_NOT_SWAPPED)) return { kind: 'cas', swapped: t === RES_SWAPPED };
  if (t === RES_VALUE) return { kind: 'value', value: getString(bytes, 1, bytes.length - 1) };
  const a = unpackOrUndefined(bytes);
  if (Array.isArray(a)) {
    const x: unknown = a[1];
    if (a[0] === RESULT_OK && a.length === 1) return { kind: 'ok' };
    if (a[0] === RESULT_VALUE && a.length === 2 && (x === null || typeof x === 'string')) {
      return { kind: 'value', value: x };
    }
    if (a[0] === RESULT_CAS && a.length === 2 && typeof x === 'boolean') {
      return { kind: 'cas', swapped: x };
    }
    const m: unknown = a[2];
    if (a[0] === RESULT_ERROR && a.length === 3 && typeof x === 'string' && typeof m === 'string') {
      return { kind: 'error', code: x, message: m };
    }
  }
  throw new KvError('PAXLINE_PROTOCOL', 'bytes are not a KV result');
}
