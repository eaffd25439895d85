/**
 * Writes the KV machine's checkpoint frames (kv-machine.ts saveState) as MessagePack by hand:
 * each frame is `u32 LE body length | body`, the body one MessagePack array of arrays, strings,
 * non-negative integers (2^32 and above as float64, as msgpackr itself writes them) and bin for
 * byte strings. msgpackr reads it back to the same values, so the reader (`kvPackr.unpack`) is
 * unchanged and checkpoints written before still load (test/kv-state-frames.test.ts). A frame's
 * array header is always the 5-byte form (0xdd), written last, so a frame is filled in one pass
 * without counting first.
 *
 * Why not msgpackr's `pack`: it was ~30 % of a saveState that pauses the apply thread (and so
 * every result on the primary) for ~50 ms with 65,536 client sessions (profiles/OPTIMIZATIONS.md
 * entry 37).
 */
import { assert } from '../core/assert.js';
import type { StateWriter } from '../runtime/state-machine.js';

const utf8 = new TextEncoder();

export class FrameWriter {
  private buf = new Uint8Array(64 * 1024);
  private dv = new DataView(this.buf.buffer);
  /** Write position; a frame's body starts at 9 (4 length bytes + the array header). */
  private at = 9;
  private items = 0;

  constructor(private readonly out: StateWriter, private readonly frameBytesMax: number) {}

  /** Bytes of the current frame's body so far. */
  get bodyBytes(): number {
    return this.at - 4;
  }

  /** Items in the current frame so far. */
  get itemCount(): number {
    return this.items;
  }

  /** Drops the current frame's items (nothing is written). */
  discard(): void {
    this.at = 9;
    this.items = 0;
  }

  /** Ends the current frame (if it has items) and hands it to the writer. */
  flush(): void {
    if (this.items === 0) return;
    const body = this.at - 4;
    assert(body <= this.frameBytesMax, `KV state frame of ${body} bytes is too large`);
    this.dv.setUint32(0, body, true);
    this.buf[4] = 0xdd;
    this.dv.setUint32(5, this.items, false);
    this.out.write(this.buf.subarray(0, this.at));
    this.at = 9;
    this.items = 0;
  }

  /** A whole frame of small non-negative integers (header and trailer frames). */
  frameOfInts(values: readonly number[]): void {
    for (const v of values) this.uint(v);
    this.flush();
  }

  /** One item: a non-negative integer (a safe integer: above 2^32 written as float64). */
  uint(v: number): void {
    this.items++;
    this.putUint(v);
  }

  /** One item: a string (UTF-8). */
  str(s: string): void {
    this.items++;
    this.putStr(s);
  }

  /** One item: the array [seqs[0], results[0], seqs[1], results[1], …] (integers and bin). */
  pairs(seqs: readonly number[], results: readonly Uint8Array[]): void {
    this.items++;
    const n = 2 * seqs.length;
    this.room(5);
    const b = this.buf;
    if (n < 0x10) b[this.at++] = 0x90 | n;
    else if (n < 0x10000) { b[this.at++] = 0xdc; this.dv.setUint16(this.at, n, false); this.at += 2; }
    else { b[this.at++] = 0xdd; this.dv.setUint32(this.at, n, false); this.at += 4; }
    for (let i = 0; i < seqs.length; i++) {
      this.putUint(seqs[i]!);
      this.putBin(results[i]!);
    }
  }

  private putUint(v: number): void {
    assert(Number.isSafeInteger(v) && v >= 0, 'KV state: a count or id that is not a non-negative safe integer');
    this.room(9);
    const b = this.buf;
    if (v < 0x80) b[this.at++] = v;
    else if (v < 0x100) { b[this.at++] = 0xcc; b[this.at++] = v; }
    else if (v < 0x10000) { b[this.at++] = 0xcd; this.dv.setUint16(this.at, v, false); this.at += 2; }
    else if (v < 0x100000000) { b[this.at++] = 0xce; this.dv.setUint32(this.at, v, false); this.at += 4; }
    else { b[this.at++] = 0xcb; this.dv.setFloat64(this.at, v, false); this.at += 8; }
  }

  private putStr(s: string): void {
    const n = s.length;
    this.room(5 + 3 * n);
    const b = this.buf;
    // ASCII straight in after the largest header the string could need; then the header is
    // written for the real length and the bytes moved up if it is shorter.
    const maxHeader = n < 0x20 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
    let p = this.at + maxHeader;
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) { ascii = false; break; }
      b[p++] = c;
    }
    let len = n;
    if (!ascii) len = utf8.encodeInto(s, b.subarray(this.at + 5, this.at + 5 + 3 * n)).written;
    const header = len < 0x20 ? 1 : len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
    const from = ascii ? this.at + maxHeader : this.at + 5;
    if (from !== this.at + header) b.copyWithin(this.at + header, from, from + len);
    if (header === 1) b[this.at] = 0xa0 | len;
    else if (header === 2) { b[this.at] = 0xd9; b[this.at + 1] = len; }
    else if (header === 3) { b[this.at] = 0xda; this.dv.setUint16(this.at + 1, len, false); }
    else { b[this.at] = 0xdb; this.dv.setUint32(this.at + 1, len, false); }
    this.at += header + len;
  }

  private putBin(bytes: Uint8Array): void {
    const n = bytes.length;
    this.room(5 + n);
    const b = this.buf;
    if (n < 0x100) { b[this.at++] = 0xc4; b[this.at++] = n; }
    else if (n < 0x10000) { b[this.at++] = 0xc5; this.dv.setUint16(this.at, n, false); this.at += 2; }
    else { b[this.at++] = 0xc6; this.dv.setUint32(this.at, n, false); this.at += 4; }
    b.set(bytes, this.at);
    this.at += n;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
    this.dv = new DataView(bigger.buffer);
  }
}
