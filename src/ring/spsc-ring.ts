/**
 * A single-producer single-consumer ring of variable-length byte messages in a SharedArrayBuffer,
 * joining two threads (DESIGN §1). One thread only ever writes, one only ever reads.
 *
 * Layout (Int32 slots, then the data area):
 *
 *   slot 0  HEAD            bytes ever written (u32, wraps), published by the producer
 *   slot 1  TAIL            bytes ever consumed (u32, wraps), published by the consumer
 *   slot 2  CONSUMER_WAITS  1 while the consumer sleeps (or is about to) on HEAD
 *   slot 3  PRODUCER_WAITS  1 while the producer sleeps (or is about to) on TAIL
 *   slot 4  WAKEUPS         notifies sent (diagnostics)
 *   ...     (16 slots reserved)
 *   data    capacity bytes (a power of two): frames [u32 length][payload][pad to 4]
 *           a length of WRAP means "skip to the start of the data area"
 *
 * Invariants: 0 ≤ HEAD − TAIL ≤ capacity (unsigned); frames never straddle the end of the area;
 * the producer writes payload bytes before it publishes HEAD, and the consumer reads them before
 * it publishes TAIL, so neither side sees the other's half-written bytes (Atomics.store/load are
 * sequentially consistent and order the plain writes around them).
 *
 * No lost wake-ups: a sleeper first sets its WAITS flag, then re-checks the ring, and only then
 * waits on the index it needs to change; the other side publishes its index first and then
 * notifies only if the flag is set. Either the re-check sees the new index, or the notifier sees
 * the flag.
 */

import type { Doorbell } from './doorbell.js';

const HEAD = 0;
const TAIL = 1;
const CONSUMER_WAITS = 2;
const PRODUCER_WAITS = 3;
const WAKEUPS = 4;
const HEADER_SLOTS = 16;
const HEADER_BYTES = HEADER_SLOTS * 4;
const FRAME_HEADER_BYTES = 4;
const WRAP = 0xffffffff;

export class RingError extends Error {
  constructor(readonly code: 'PAXLINE_RING_MESSAGE_TOO_LARGE' | 'PAXLINE_BAD_OPTION', message: string) {
    super(message);
    this.name = 'RingError';
  }
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Shared state of one ring; create it once, then hand `buffer` to both threads. */
export function createRingBuffer(capacityBytes: number): SharedArrayBuffer {
  if (!Number.isInteger(capacityBytes) || capacityBytes < 64 || capacityBytes > 1 << 30 ||
      (capacityBytes & (capacityBytes - 1)) !== 0) {
    throw new RingError('PAXLINE_BAD_OPTION', 'capacityBytes must be a power of two in [64, 2^30]');
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
}

abstract class RingSide {
  protected readonly ctl: Int32Array;
  protected readonly data: Uint8Array;
  protected readonly view: DataView;
  readonly capacity: number;
  /** Largest payload one message may carry. */
  readonly messageBytesMax: number;

  constructor(readonly buffer: SharedArrayBuffer) {
    this.ctl = new Int32Array(buffer, 0, HEADER_SLOTS);
    this.capacity = buffer.byteLength - HEADER_BYTES;
    this.data = new Uint8Array(buffer, HEADER_BYTES, this.capacity);
    this.view = new DataView(buffer, HEADER_BYTES, this.capacity);
    this.messageBytesMax = this.capacity / 2 - FRAME_HEADER_BYTES;
  }

  protected used(): number {
    return (Atomics.load(this.ctl, HEAD) - Atomics.load(this.ctl, TAIL)) >>> 0;
  }

  get wakeups(): number {
    return Atomics.load(this.ctl, WAKEUPS);
  }
}

export class RingProducer extends RingSide {
  /** Local copy of HEAD: only this side writes it. */
  private head: number;

  /** `doorbell`: also rung on every publish, for a consumer that reads several rings. */
  /** HEAD as last published. */
  private published: number;

  constructor(buffer: SharedArrayBuffer, private readonly doorbell: Doorbell | null = null) {
    super(buffer);
    this.head = Atomics.load(this.ctl, HEAD) >>> 0;
    this.published = this.head;
  }

  /**
   * Copies `payload` into the ring. Returns false (writing nothing) when there is no room; call
   * `publish()` after one or more pushes to make them visible (batching saves a wake-up).
   */
  tryPush(payload: Uint8Array): boolean {
    const at = this.tryReserve(payload.length);
    if (at < 0) return false;
    this.data.set(payload, at);
    return true;
  }

  /**
   * Reserves a message of `length` bytes without copying anything: returns the offset in
   * `bytes` (and `dataView`) where the caller writes the payload, or -1 when there is no room.
   * The message becomes visible at the next `publish()`, so write it before publishing.
   */
  tryReserve(length: number): number {
    if (length > this.messageBytesMax) {
      throw new RingError('PAXLINE_RING_MESSAGE_TOO_LARGE', `message of ${length} bytes`);
    }
    const frame = FRAME_HEADER_BYTES + align4(length);
    const tail = Atomics.load(this.ctl, TAIL) >>> 0;
    const free = this.capacity - ((this.head - tail) >>> 0);
    let at = this.head & (this.capacity - 1);
    const toEnd = this.capacity - at;
    const need = frame <= toEnd ? frame : toEnd + frame;
    if (need > free) return -1;
    if (frame > toEnd) {
      // Not enough contiguous room: mark the rest of the area as skipped and start over at 0.
      if (toEnd >= FRAME_HEADER_BYTES) this.view.setUint32(at, WRAP, true);
      this.head = (this.head + toEnd) >>> 0;
      at = 0;
    }
    this.view.setUint32(at, length, true);
    this.head = (this.head + frame) >>> 0;
    return at + FRAME_HEADER_BYTES;
  }

  /** The data area, for writing a reserved message (see tryReserve). */
  get bytes(): Uint8Array {
    return this.data;
  }

  /** A DataView of the data area, for writing a reserved message (see tryReserve). */
  get dataView(): DataView {
    return this.view;
  }

  /**
   * Makes pushed messages visible and wakes the consumer if it sleeps (no-op if none). With
   * `wake` false nothing is woken: for messages no one waits on, which the consumer picks up on
   * its next wake-up or wait timeout (the log stage's commit records).
   */
  publish(wake = true): void {
    if (this.head === this.published) return; // nothing new: no store, no notify, no doorbell
    this.published = this.head;
    Atomics.store(this.ctl, HEAD, this.head | 0);
    if (!wake) return;
    if (Atomics.load(this.ctl, CONSUMER_WAITS) === 1) {
      Atomics.add(this.ctl, WAKEUPS, 1);
      Atomics.notify(this.ctl, HEAD);
    }
    this.doorbell?.ring();
  }

  /**
   * Blocks (Atomics.wait: only on a thread whose event loop may freeze) until `bytes` of payload
   * would fit, or `timeoutMs` passes. Returns whether it fits now.
   */
  waitForRoom(bytes: number, timeoutMs: number): boolean {
    const frame = 2 * (FRAME_HEADER_BYTES + align4(bytes)); // worst case: a wrap in between
    const fits = (): boolean => this.capacity - ((this.head - (Atomics.load(this.ctl, TAIL) >>> 0)) >>> 0) >= frame;
    if (fits()) return true;
    Atomics.store(this.ctl, PRODUCER_WAITS, 1);
    const tail = Atomics.load(this.ctl, TAIL);
    if (!fits()) Atomics.wait(this.ctl, TAIL, tail, timeoutMs);
    Atomics.store(this.ctl, PRODUCER_WAITS, 0);
    return fits();
  }

  /** Like waitForRoom, for threads that run an event loop (Atomics.waitAsync). */
  async waitForRoomAsync(bytes: number, timeoutMs: number): Promise<boolean> {
    const frame = 2 * (FRAME_HEADER_BYTES + align4(bytes));
    const fits = (): boolean => this.capacity - ((this.head - (Atomics.load(this.ctl, TAIL) >>> 0)) >>> 0) >= frame;
    if (fits()) return true;
    Atomics.store(this.ctl, PRODUCER_WAITS, 1);
    const tail = Atomics.load(this.ctl, TAIL);
    if (!fits()) {
      const r = waitAsync(this.ctl, TAIL, tail, timeoutMs);
      if (r.async) await r.value;
    }
    Atomics.store(this.ctl, PRODUCER_WAITS, 0);
    return fits();
  }
}

type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

/** Atomics.waitAsync (Node ≥ 16; typed in lib es2024, which this project does not target). */
function waitAsync(ctl: Int32Array, index: number, value: number, timeoutMs: number): WaitAsyncResult {
  const atomics = Atomics as unknown as {
    waitAsync(a: Int32Array, i: number, v: number, t: number): WaitAsyncResult;
  };
  return atomics.waitAsync(ctl, index, value, timeoutMs);
}

export class RingConsumer extends RingSide {
  private tail: number;

  constructor(buffer: SharedArrayBuffer) {
    super(buffer);
    this.tail = Atomics.load(this.ctl, TAIL) >>> 0;
  }

  /**
   * Calls `onMessage` with a view of each available message (valid only during the call: copy it
   * to keep it), up to `max` messages, then releases their space. Returns the number consumed.
   */
  drain(onMessage: (payload: Uint8Array) => void, max = Infinity): number {
    return this.drainInPlace((data, at, length) => onMessage(data.subarray(at, at + length)), max);
  }

  /**
   * Like drain, without a view per message: calls `onMessage(data, at, length)` where the
   * payload is `data[at, at + length)` of the ring's whole data array (`dataView` reads it);
   * valid only during the call.
   */
  drainInPlace(onMessage: (data: Uint8Array, at: number, length: number) => void, max = Infinity): number {
    const head = Atomics.load(this.ctl, HEAD) >>> 0;
    let n = 0;
    while (this.tail !== head && n < max) {
      const at = this.tail & (this.capacity - 1);
      const toEnd = this.capacity - at;
      if (toEnd < FRAME_HEADER_BYTES || this.view.getUint32(at, true) === WRAP) {
        this.tail = (this.tail + toEnd) >>> 0;
        continue;
      }
      const length = this.view.getUint32(at, true);
      onMessage(this.data, at + FRAME_HEADER_BYTES, length);
      this.tail = (this.tail + FRAME_HEADER_BYTES + align4(length)) >>> 0;
      n++;
    }
    if (n > 0 || this.tail === head) this.release();
    return n;
  }

  /** A DataView of the ring's whole data array (for drainInPlace callers). */
  get dataView(): DataView {
    return this.view;
  }

  private release(): void {
    Atomics.store(this.ctl, TAIL, this.tail | 0);
    if (Atomics.load(this.ctl, PRODUCER_WAITS) === 1) {
      Atomics.add(this.ctl, WAKEUPS, 1);
      Atomics.notify(this.ctl, TAIL);
    }
  }

  /** True when no published message is waiting. */
  isEmpty(): boolean {
    return (Atomics.load(this.ctl, HEAD) >>> 0) === this.tail;
  }

  /**
   * Blocks (Atomics.wait) until a message is available or `timeoutMs` passes. For threads whose
   * event loop may freeze (the log-fsync stage). 'ready': data was there without sleeping;
   * 'woken': slept and was notified (or HEAD moved); 'timed-out': slept the whole timeout.
   */
  waitForData(timeoutMs: number): 'ready' | 'woken' | 'timed-out' {
    if (!this.isEmpty()) return 'ready';
    Atomics.store(this.ctl, CONSUMER_WAITS, 1);
    const head = Atomics.load(this.ctl, HEAD);
    let outcome: 'ready' | 'woken' | 'timed-out' = 'ready';
    if ((head >>> 0) === this.tail) {
      outcome = Atomics.wait(this.ctl, HEAD, head, timeoutMs) === 'timed-out' ? 'timed-out' : 'woken';
    }
    Atomics.store(this.ctl, CONSUMER_WAITS, 0);
    return outcome;
  }

  /**
   * Like waitForData, for threads that run an event loop (Atomics.waitAsync; DESIGN §1). The same
   * flag protocol avoids lost wake-ups. A pending waitAsync does not keep a thread alive: the
   * caller holds some other ref'd handle (a socket, a timer, a worker) while it waits.
   */
  async waitForDataAsync(timeoutMs: number): Promise<'ready' | 'woken' | 'timed-out'> {
    if (!this.isEmpty()) return 'ready';
    Atomics.store(this.ctl, CONSUMER_WAITS, 1);
    const head = Atomics.load(this.ctl, HEAD);
    let outcome: 'ready' | 'woken' | 'timed-out' = 'ready';
    if ((head >>> 0) === this.tail) {
      const r = waitAsync(this.ctl, HEAD, head, timeoutMs);
      // A synchronous result: 'not-equal' means HEAD moved between the load and the wait.
      const value = r.async ? await r.value : r.value;
      outcome = value === 'timed-out' ? 'timed-out' : value === 'not-equal' ? 'ready' : 'woken';
    }
    Atomics.store(this.ctl, CONSUMER_WAITS, 0);
    return outcome;
  }

  /** Bytes published and not yet consumed. */
  get pendingBytes(): number {
    return this.used();
  }
}
