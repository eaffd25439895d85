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

export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  const c = cmd;
  if (c.op === 'put') return packOwned([TAG_PUT, c.clientId, c.seq, c.ackedBelow, c.key, c.value]);
  if (c.op === 'get') return packOwned([TAG_GET, c.clientId, c.seq, c.ackedBelow, c.key]);
  return packOwned([TAG_CAS, c.clientId, c.seq, c.ackedBelow, c.key, c.expected, c.value]);
}

/**
 * Decodes a command, or returns a constant reason string when the bytes are not a well-formed
 * command (deterministic: the same bytes give the same reason on every replica).
 */
export function tryDecodeKvCommand(bytes: Uint8Array): KvCommand | string {
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
  if (r.kind === 'ok') return packOwned([RESULT_OK]);
  if (r.kind === 'value') return packOwned([RESULT_VALUE, r.value]);
  if (r.kind === 'cas') return packOwned([RESULT_CAS, r.swapped]);
  return packOwned([RESULT_ERROR, r.code, r.message]);
}

/** Decodes a result; throws KvError PAXLINE_PROTOCOL when the bytes are not one. */
export function decodeKvResult(bytes: Uint8Array): KvResult {
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
