/**
 * Binary layout of the core's durable records (LogRecord). Numbers are safe integers stored as
 * float64 (exact below 2^53), so no BigInt is needed. Layout, little-endian:
 *
 *   promise: u8 1 | f64 ballot
 *   commit:  u8 3 | f64 decree
 *   accept:  u8 2 | f64 decree | f64 ballot | u8 kind (0 noop, 1 batch, 2 config) | body
 *   learned: u8 4 | the same as accept
 *            batch body:  u32 count | count × (u32 length | bytes)
 *            config body: u32 count | count × u32 id
 */
import { assert } from '../core/assert.js';
import type { DecreeValue, LogRecord } from '../core/types.js';
import { VALUE_BATCH, VALUE_CONFIG, VALUE_NOOP, valueBytes, writeValueBody } from './value-body.js';

const T_PROMISE = 1;
const T_ACCEPT = 2;
const T_COMMIT = 3;
const T_LEARNED = 4;

/**
 * Offsets inside an accept or learned record (the layout above), shared by the encoder, the
 * decoder and a reader that walks a batch's commands in place (the apply stage: no array and no
 * view object per command beyond the one it hands on).
 */
export const RECORD_DECREE_AT = 1;
export const RECORD_BALLOT_AT = 9;
/** Where an accept or learned record's value (src/codec/value-body.ts) starts. */
const RECORD_VALUE_AT = 17;
/** A batch's (or a configuration's) count, then its first item. */
export const BATCH_COUNT_AT = RECORD_VALUE_AT + 1;
export const BATCH_FIRST_AT = BATCH_COUNT_AT + 4;

/** True when `bytes` is an accept record whose value is a batch of commands. */
export function isAcceptedBatch(bytes: Uint8Array): boolean {
  return bytes[0] === T_ACCEPT && bytes.length >= BATCH_FIRST_AT && bytes[RECORD_VALUE_AT] === VALUE_BATCH;
}

/** Bytes `r` encodes to. */
export function recordBytes(r: LogRecord): number {
  return r.type === 'accept' || r.type === 'learned' ? RECORD_VALUE_AT + valueBytes(r.value) : 9;
}

export function encodeRecord(r: LogRecord): Uint8Array {
  const out = new Uint8Array(recordBytes(r));
  encodeRecordInto(r, out, new DataView(out.buffer), 0);
  return out;
}

/**
 * Writes `r` at `at` of `out` (`dv` views the same bytes from the same origin), exactly
 * recordBytes(r) bytes — straight into a ring's reserved slot, for one. Returns the end offset.
 */
export function encodeRecordInto(r: LogRecord, out: Uint8Array, dv: DataView, at: number): number {
  if (r.type === 'promise' || r.type === 'commit') {
    out[at] = r.type === 'promise' ? T_PROMISE : T_COMMIT;
    dv.setFloat64(at + 1, r.type === 'promise' ? r.ballot : r.decree, true);
    return at + 9;
  }
  out[at] = r.type === 'accept' ? T_ACCEPT : T_LEARNED;
  dv.setFloat64(at + RECORD_DECREE_AT, r.decree, true);
  dv.setFloat64(at + RECORD_BALLOT_AT, r.ballot, true);
  return writeValueBody(out, dv, at + RECORD_VALUE_AT, r.value);
}

/** Decodes one record; throws on a malformed one (callers checksum records first). */
export function decodeRecord(bytes: Uint8Array, copyCommands = true): LogRecord {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = bytes[0];
  if (type === T_PROMISE || type === T_COMMIT) {
    assert(bytes.length === 9, 'record length');
    const n = dv.getFloat64(1, true);
    return type === T_PROMISE ? { type: 'promise', ballot: n } : { type: 'commit', decree: n };
  }
  assert((type === T_ACCEPT || type === T_LEARNED) && bytes.length >= RECORD_VALUE_AT + 1, 'record type');
  const decree = dv.getFloat64(RECORD_DECREE_AT, true);
  const ballot = dv.getFloat64(RECORD_BALLOT_AT, true);
  const kind = bytes[RECORD_VALUE_AT];
  let value: DecreeValue;
  if (kind === VALUE_NOOP) {
    value = { kind: 'noop' };
  } else if (kind === VALUE_CONFIG) {
    const n = dv.getUint32(BATCH_COUNT_AT, true);
    const members: number[] = [];
    for (let i = 0; i < n; i++) members.push(dv.getUint32(BATCH_FIRST_AT + 4 * i, true));
    value = { kind: 'config', members };
  } else {
    assert(kind === VALUE_BATCH, 'value kind');
    const n = dv.getUint32(BATCH_COUNT_AT, true);
    const commands: Uint8Array[] = [];
    let p = BATCH_FIRST_AT;
    for (let i = 0; i < n; i++) {
      const len = dv.getUint32(p, true);
      // Copies by default; views (copyCommands false) for a caller done with them before
      // `bytes` is reused — one object per command instead of an object and a backing store.
      commands.push(copyCommands ? bytes.slice(p + 4, p + 4 + len) : new Uint8Array(bytes.buffer, bytes.byteOffset + p + 4, len));
      p += 4 + len;
    }
    assert(p === bytes.length, 'batch length');
    value = { kind: 'batch', commands };
  }
  return { type: type === T_ACCEPT ? 'accept' : 'learned', decree, ballot, value };
}
