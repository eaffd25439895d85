/**
 * The key-value client protocol over TCP: length-prefixed msgpack frames, many requests in
 * flight per connection, answers matched by request id (in any order).
 *
 *   frame    := u32 LE bodyLength | body            1 ≤ bodyLength ≤ CLIENT_FRAME_BYTES_MAX
 *   request  := [CLIENT_PROTOCOL_VERSION, requestId, op, payload,
 *                maxLagDecrees | nil, timeoutMs | nil]
 *                 op 1 = replicate (payload: the command bytes, msgpack bin)
 *                 op 2 = fastRead  (payload: the query bytes; the last two fields are its options)
 *                 op 3 = status    (payload: empty; the result is the replica's status, UTF-8 JSON)
 *   response := [requestId, 0, resultBytes]                      the state machine's result
 *             | [requestId, 1, primaryAddress | nil, primaryId | nil]
 *                                                               PAXLINE_NOT_PRIMARY: the command
 *                                                               was never proposed; retry at the
 *                                                               primary's 'host:port' when known
 *             | [requestId, 2, code, message]                    a coded error (strings)
 *
 * requestId is chosen by the client (an integer in [0, 2^53)); the server echoes it. The
 * payloads (KV commands, queries, results) are opaque here: kv-codec.ts encodes them.
 * A frame that cannot be read ends the connection (the stream cannot be resynchronised); a
 * well-framed request that is malformed is answered with PAXLINE_PROTOCOL when its id is known.
 *
 * FrameReader hands out frames as views of the socket's chunks, or of one fresh concatenation
 * when a frame spans chunks; it never reuses a buffer, so views of a frame (msgpack bin fields)
 * stay valid after the next chunk arrives.
 */
import { assert } from '../core/assert.js';
import { kvPackr, unpackOrUndefined } from './kv-codec.js';
import { KvError } from './kv-error.js';

export const CLIENT_PROTOCOL_VERSION = 1;
/** Largest frame body: a maximal value (1 MiB) with ample room for framing. */
export const CLIENT_FRAME_BYTES_MAX = 4 * 1024 * 1024;

export const OP_REPLICATE = 1;
export const OP_FAST_READ = 2;
export const OP_STATUS = 3;
export const STATUS_RESULT = 0;
export const STATUS_REDIRECT = 1;
export const STATUS_ERROR = 2;

export interface ClientRequest {
  readonly requestId: number;
  readonly op: typeof OP_REPLICATE | typeof OP_FAST_READ | typeof OP_STATUS;
  readonly payload: Uint8Array;
  readonly maxLagDecrees: number | null;
  readonly timeoutMs: number | null;
}

export type ClientResponse =
  | { readonly requestId: number; readonly status: 'result'; readonly result: Uint8Array }
  | {
    readonly requestId: number;
    readonly status: 'redirect';
    readonly primaryAddress: string | null;
    readonly primaryId: number | null;
  }
  | {
    readonly requestId: number;
    readonly status: 'error';
    readonly code: string;
    readonly message: string;
  };

/** Frames a msgpack body into a fresh buffer; throws KvError PAXLINE_PROTOCOL when too large. */
export function encodeFrame(body: unknown): Buffer {
  const packed = kvPackr.pack(body); // shared scratch: copied below before the next pack
  if (packed.length > CLIENT_FRAME_BYTES_MAX) {
    throw new KvError('PAXLINE_PROTOCOL', `frame of ${packed.length} bytes exceeds the limit`);
  }
  const out = Buffer.allocUnsafe(4 + packed.length);
  out.writeUInt32LE(packed.length, 0);
  out.set(packed, 4);
  return out;
}

export function encodeRequest(r: ClientRequest): Buffer {
  return encodeFrame([CLIENT_PROTOCOL_VERSION, r.requestId, r.op, r.payload, r.maxLagDecrees,
    r.timeoutMs]);
}

export function encodeResponse(r: ClientResponse): Buffer {
  if (r.status === 'result') return encodeFrame([r.requestId, STATUS_RESULT, r.result]);
  if (r.status === 'redirect') {
    return encodeFrame([r.requestId, STATUS_REDIRECT, r.primaryAddress, r.primaryId]);
  }
  return encodeFrame([r.requestId, STATUS_ERROR, r.code, r.message]);
}

const isRequestId = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isOptionalCount = (x: unknown): x is number | null =>
  x === null || (Number.isSafeInteger(x) && (x as number) >= 0);

/**
 * Decodes a request body: the request, or `{ requestId, reason }` when it is malformed (the
 * id is -1 when even that is unreadable).
 */
export function decodeRequest(
  body: Uint8Array,
): ClientRequest | { requestId: number; reason: string } {
  const a = unpackOrUndefined(body);
  if (!Array.isArray(a)) return { requestId: -1, reason: 'request is not a msgpack array' };
  const [version, requestId, op, payload, maxLagDecrees, timeoutMs] = a as unknown[];
  if (!isRequestId(requestId)) return { requestId: -1, reason: 'bad request id' };
  if (version !== CLIENT_PROTOCOL_VERSION) {
    return { requestId, reason: `unsupported protocol version ${String(version)}` };
  }
  if (a.length !== 6 || (op !== OP_REPLICATE && op !== OP_FAST_READ && op !== OP_STATUS)) {
    return { requestId, reason: 'bad request op or arity' };
  }
  if (!(payload instanceof Uint8Array)) return { requestId, reason: 'payload is not bytes' };
  if (!isOptionalCount(maxLagDecrees) || !isOptionalCount(timeoutMs)) {
    return { requestId, reason: 'bad fastRead options' };
  }
  return { requestId, op, payload, maxLagDecrees, timeoutMs };
}

/** Decodes a response body, or null when it is malformed. */
export function decodeResponse(body: Uint8Array): ClientResponse | null {
  const a = unpackOrUndefined(body);
  if (!Array.isArray(a)) return null;
  const [requestId, status, x, y] = a as unknown[];
  if (!isRequestId(requestId)) return null;
  if (status === STATUS_RESULT && a.length === 3 && x instanceof Uint8Array) {
    return { requestId, status: 'result', result: x };
  }
  if (status === STATUS_REDIRECT && a.length === 4 && (x === null || typeof x === 'string') &&
    (y === null || Number.isSafeInteger(y))) {
    return { requestId, status: 'redirect', primaryAddress: x, primaryId: y as number | null };
  }
  if (status === STATUS_ERROR && a.length === 4 && typeof x === 'string' && typeof y === 'string') {
    return { requestId, status: 'error', code: x, message: y };
  }
  return null;
}

/**
 * Splits a byte stream into frame bodies. Invariant: `bytesQueued` is the sum of the queued
 * chunks' lengths, and the first chunk's first byte is the start of a frame's length field.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  private bytesQueued = 0;
  /** Body length of the frame being assembled, or -1 before its length field is complete. */
  private bodyBytes = -1;

  /**
   * Queues a chunk and calls onFrame for every complete frame. Returns null, or the reason the
   * stream is unreadable (a length of 0 or above CLIENT_FRAME_BYTES_MAX); after that the caller
   * must drop the connection.
   */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): string | null {
    this.chunks.push(chunk);
    this.bytesQueued += chunk.length;
    for (;;) {
      if (this.bodyBytes < 0) {
        if (this.bytesQueued < 4) return null;
        const n = this.take(4).readUInt32LE(0);
        if (n === 0 || n > CLIENT_FRAME_BYTES_MAX) return `frame length ${n} out of range`;
        this.bodyBytes = n;
      }
      if (this.bytesQueued < this.bodyBytes) return null;
      const body = this.take(this.bodyBytes);
      this.bodyBytes = -1;
      onFrame(body);
    }
  }

  /** Removes and returns the first n queued bytes (n ≤ bytesQueued). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.bytesQueued -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0];
      assert(c !== undefined, 'FrameReader.take past its queue');
      const m = Math.min(c.length, n - got);
      c.copy(out, got, 0, m);
      got += m;
      if (m === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(m);
    }
    this.bytesQueued -= n;
    return out;
  }
}

/** Parses 'host:port' ('[v6]:port' too); null when malformed. */
export function parseAddress(address: string): { host: string; port: number } | null {
  const at = address.lastIndexOf(':');
  if (at <= 0) return null;
  let host = address.slice(0, at);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const portText = address.slice(at + 1);
  if (!/^[0-9]{1,5}$/.test(portText) || host.length === 0) return null;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}
