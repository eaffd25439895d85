/**
 * The encoded form of a decree's value, shared by the log records (records.ts) and the network
 * messages (src/net/message-codec.ts), which lay it out the same way:
 *
 *   u8 0 (noop) | u8 1 (batch) u32 count, count × (u32 length | bytes) | u8 2 (config) u32 count, count × u32 id
 *
 * A batch is encoded once: the primary writes each batch into two messages, its own log record
 * and the apply stage's record, and a secondary into its log record and the apply record — one
 * block copy each instead of a length and a copy per command every time (profiles/OPTIMIZATIONS.md
 * entry 14). A plain `{ kind: 'batch', commands }` has its body cached per value object (a
 * WeakMap: the entry dies with the value).
 *
 * A batch that arrives as bytes (a message from the primary) or that the primary's consensus stage
 * cuts is an EncodedBatch: it holds only its encoding, and cuts its commands out as views when
 * something asks for them (rare: a step-down's rejections, a value comparison). Hundreds of
 * commands per decree stay one object for the garbage collector instead of hundreds, for as long
 * as the core retains the decree (profiles/OPTIMIZATIONS.md entry 34).
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

/**
 * A batch value held as its encoding: `body` is exactly `u8 1 | u32 count | count × (u32 length |
 * bytes)`, already checked to be well framed (by `EncodedBatch.read` or by encoding it here).
 * `encoded` tells the core's message validation (src/core/validate.ts) that the commands are
 * Uint8Arrays by construction, so it need not cut them out to look.
 */
export class EncodedBatch {
  readonly kind = 'batch' as const;
  readonly encoded = true as const;
  private cut: Uint8Array[] | null = null;

  private constructor(readonly body: Uint8Array, readonly count: number) {}

  /**
   * Reads the batch encoding that starts at `at` of `bytes` (its tag included), walking the
   * lengths once (no allocation per command): the batch, a view of `bytes` (kept, not copied),
   * and the offset where it ends; else a short reason.
   */
  static read(bytes: Uint8Array, at: number): { readonly batch: EncodedBatch; readonly end: number } | string {
    if (bytes[at] !== VALUE_BATCH) return 'not a batch';
    if (at + 5 > bytes.length) return 'batch header past the end';
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = dv.getUint32(at + 1, true);
    if (n * 4 > bytes.length - at - 5) return `command count ${n} exceeds the frame`;
    let p = at + 5;
    for (let i = 0; i < n; i++) {
      if (p + 4 > bytes.length) return 'command length past the end';
      p += 4 + dv.getUint32(p, true);
      if (p > bytes.length) return 'command bytes past the end';
    }
    // A direct view, not subarray(): that consults the species constructor (slow) and would give
    // a Buffer for Buffer input.
    return { batch: new EncodedBatch(new Uint8Array(bytes.buffer, bytes.byteOffset + at, p - at), n), end: p };
  }

  /** `body` if it is exactly one well-framed batch encoding (see read), else a short reason. */
  static check(body: Uint8Array): EncodedBatch | string {
    const r = EncodedBatch.read(body, 0);
    if (typeof r === 'string') return r;
    return r.end === body.length ? r.batch : 'trailing bytes after the commands';
  }

  /** Encodes `commands` into a new body (one copy of each; the views can then die young). */
  static of(commands: readonly Uint8Array[]): EncodedBatch {
    return new EncodedBatch(encodeBatch(commands), commands.length);
  }

  /** The commands: views into `body`, cut out on first use. */
  get commands(): readonly Uint8Array[] {
    if (this.cut !== null) return this.cut;
    const b = this.body;
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Array<Uint8Array>(this.count);
    let p = 5;
    for (let i = 0; i < this.count; i++) {
      const len = dv.getUint32(p, true);
      out[i] = new Uint8Array(b.buffer, b.byteOffset + p + 4, len);
      p += 4 + len;
    }
    this.cut = out;
    return out;
  }
}

function encodeBatch(commands: readonly Uint8Array[]): Uint8Array {
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
  return out;
}

function batchBody(v: BatchValue): Uint8Array {
  if (v instanceof EncodedBatch) return v.body;
  const cached = bodies.get(v);
  if (cached !== undefined) return cached;
  const out = encodeBatch(v.commands);
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
