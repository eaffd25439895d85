/**
 * Mapping between the core's LogRecord and the log's stored record (type, decree, ballot,
 * payload), so the simulator and the runtime can put the core's durable records in SegmentLog.
 *
 *   promise → type 1, decree 0, ballot, empty payload
 *   accept  → type 2, decree, ballot, payload = the encoded value
 *   commit  → type 3, decree, ballot 0, empty payload
 *   learned → type 4, decree, ballot, payload = the encoded value
 *
 * The value encoding is src/codec/records.ts's: its accept layout is `u8 type | f64 decree |
 * f64 ballot | value`, so the value bytes are that encoding minus its 17-byte prefix. Reusing
 * encodeRecord/decodeRecord this way keeps one value codec without changing codec/records.ts
 * (at the cost of one copy per record; factor `encodeValue`/`decodeValue` out of it if that copy
 * ever shows up in a profile).
 */
import { decodeRecord, encodeRecord } from '../codec/records.js';
import { AssertionFailure } from '../core/assert.js';
import type { LogRecord } from '../core/types.js';
import type { StoredRecord } from './segment-recovery.js';

export const STORED_PROMISE = 1;
export const STORED_ACCEPT = 2;
export const STORED_COMMIT = 3;
export const STORED_LEARNED = 4;

/** Bytes before the value in codec/records.ts's accept/learned layout. */
export const VALUE_PREFIX_BYTES = 17;
const EMPTY = new Uint8Array(0);

export function logRecordToStored(r: LogRecord): StoredRecord {
  switch (r.type) {
    case 'promise':
      return { type: STORED_PROMISE, decree: 0, ballot: r.ballot, payload: EMPTY };
    case 'commit':
      return { type: STORED_COMMIT, decree: r.decree, ballot: 0, payload: EMPTY };
    case 'accept':
    case 'learned': {
      const encoded = encodeRecord(r);
      return {
        type: r.type === 'accept' ? STORED_ACCEPT : STORED_LEARNED,
        decree: r.decree,
        ballot: r.ballot,
        payload: encoded.subarray(VALUE_PREFIX_BYTES),
      };
    }
  }
}

/**
 * A stored record as codec/records.ts bytes (what decodeRecord reads): promise and commit are
 * 9 bytes, accept and learned the 17-byte prefix followed by the stored value bytes.
 */
export function storedToRecordBytes(s: StoredRecord): Uint8Array {
  switch (s.type) {
    case STORED_PROMISE:
    case STORED_COMMIT: {
      const out = new Uint8Array(9);
      out[0] = s.type;
      new DataView(out.buffer).setFloat64(1, s.type === STORED_PROMISE ? s.ballot : s.decree, true);
      return out;
    }
    case STORED_ACCEPT:
    case STORED_LEARNED: {
      const bytes = new Uint8Array(VALUE_PREFIX_BYTES + s.payload.length);
      const view = new DataView(bytes.buffer);
      bytes[0] = s.type;
      view.setFloat64(1, s.decree, true);
      view.setFloat64(9, s.ballot, true);
      bytes.set(s.payload, VALUE_PREFIX_BYTES);
      return bytes;
    }
    default:
      throw new AssertionFailure(`stored record type ${s.type} is not a core record`);
  }
}

export function storedToLogRecord(s: StoredRecord): LogRecord {
  switch (s.type) {
    case STORED_PROMISE:
      return { type: 'promise', ballot: s.ballot };
    case STORED_COMMIT:
      return { type: 'commit', decree: s.decree };
    default:
      return decodeRecord(storedToRecordBytes(s));
  }
}
