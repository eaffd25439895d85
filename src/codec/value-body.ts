/**
 * The encoded form of a decree's value, shared by the log records (records.ts) and the network
 * messages (src/net/message-codec.ts), which lay it out the same way:
 *
 *   u8 0 (noop) | u8 1 (batch) u32 count, count × (u32 length | bytes) | u8 2 (config) u32 count, count × u32 id
 *
 * A batch is encoded once and its body cached per value object (a WeakMap: the entry dies with
 * the value): the primary writes each batch into two messages, its own log record and the apply
 * stage's record, and a secondary into its log record and the apply record — one block copy each
 * instead of a length and a copy per command every time (profiles/OPTIMIZATIONS.md entry 14).
 * A decoder that has the body bytes at hand registers them (rememberBatchBody), so a value
 * received from the network is never re-encoded.
 *
 * Invariants: a cached body is exactly the encoding of its value; values are never mutated
 * after they are created (the core treats them as immutable), so the cache never goes stale.
 */
import type { DecreeValue } from '../core/types.js';

export const VALUE_NOOP = 0;
export const VALUE_BATCH = 1;
export const VALUE_CONFIG = 2;

type BatchValue = Extract<DecreeValue, { kind: 'batch' }>;

const bodies = new WeakMap<BatchValue, Uint8Array>();

/** Records `body` (which must be exactly the encoding of `v`) as the encoding of batch `v`. */
export function rememberBatchBody(v: BatchValue, body: Uint8Array): void {
  bodies.set(v, body);
}

function batchBody(v: BatchValue): Uint8Array {
  const cached = bodies.get(v);
  if (cached !== undefined) return cached;
  const commands = v.commands;
  let n = 5;
  for (let i = 0; i < commands.length; i++) n += 4 + commands[i]!.length;
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  out[0] = VALUE_BATCH;
  dv.setUint32(1, commands.length, true);
  let p = 5;
  for (let i = 0; i < commands.length; i++) {
    const c = commands[i]!;
    dv.setUint32(p, c.length, true);
    out.set(c, p + 4); // ~20 ns even for 16 bytes; a byte loop measured slower still
    p += 4 + c.length;
  }
  bodies.set(v, out);
  return out;
}

/** Encoded bytes of `v`. */
export function valueBytes(v: DecreeValue): number {
  if (v.kind === 'noop') return 1;
  if (v.kind === 'config') return 5 + 4 * v.members.length;
  return batchBody(v).length;
}

/**
 * Writes `v` at `at` of `out` (`dv` views the same bytes as `out`, from the same origin);
 * returns the end offset.
 */
export function writeValueBody(out: Uint8Array, dv: DataView, at: number, v: DecreeValue): number {
  if (v.kind === 'noop') {
    out[at] = VALUE_NOOP;
    return at + 1;
  }
  if (v.kind === 'config') {
    out[at] = VALUE_CONFIG;
    dv.setUint32(at + 1, v.members.length, true);
    for (let i = 0; i < v.members.length; i++) dv.setUint32(at + 5 + 4 * i, v.members[i]!, true);
    return at + 5 + 4 * v.members.length;
  }
  const body = batchBody(v);
  out.set(body, at);
  return at + body.length;
}
