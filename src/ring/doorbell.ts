/**
 * One wake-up word shared by several producers and one consumer thread that reads several rings
 * (the network+consensus stage reads proposals from the main thread and durable positions from
 * the log stage). Waiting on each ring separately would leave a pending Atomics.waitAsync behind
 * whenever the other ring woke the thread; one doorbell avoids that.
 *
 * Layout: Int32 slot 0 RINGS (incremented by every producer after it publishes), slot 1 SLEEPING
 * (1 while the consumer sleeps or is about to), slot 2 WAKEUPS (diagnostics).
 *
 * No lost wake-ups: the consumer sets SLEEPING, reads RINGS, then checks every ring, and waits
 * only while RINGS still holds the value it read. A producer publishes first and rings after, so
 * either the consumer's check sees the data, or RINGS changed and the wait returns at once.
 */
const RINGS = 0;
const SLEEPING = 1;
const WAKEUPS = 2;

type WaitAsyncResult =
  | { readonly async: false; readonly value: 'not-equal' | 'timed-out' }
  | { readonly async: true; readonly value: Promise<'ok' | 'timed-out'> };

export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(16);
}

export class Doorbell {
  private readonly cell: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.cell = new Int32Array(buffer, 0, 4);
  }

  /** Producer side: call after publishing to a ring. */
  ring(): void {
    Atomics.add(this.cell, RINGS, 1);
    if (Atomics.load(this.cell, SLEEPING) === 1) {
      Atomics.add(this.cell, WAKEUPS, 1);
      Atomics.notify(this.cell, RINGS);
    }
  }

  /**
   * Consumer side, on a thread with an event loop: resolves when some producer rang (or at
   * once if `hasWork()` is true), or after timeoutMs. Returns whether it timed out.
   */
  async wait(hasWork: () => boolean, timeoutMs: number): Promise<boolean> {
    Atomics.store(this.cell, SLEEPING, 1);
    const seen = Atomics.load(this.cell, RINGS);
    let timedOut = false;
    if (!hasWork()) {
      const atomics = Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): WaitAsyncResult };
      const r = atomics.waitAsync(this.cell, RINGS, seen, timeoutMs);
      timedOut = (r.async ? await r.value : r.value) === 'timed-out';
    }
    Atomics.store(this.cell, SLEEPING, 0);
    return timedOut;
  }

  /** Consumer side, on a thread whose event loop may freeze (Atomics.wait). Returns whether it timed out. */
  waitSync(hasWork: () => boolean, timeoutMs: number): boolean {
    Atomics.store(this.cell, SLEEPING, 1);
    const seen = Atomics.load(this.cell, RINGS);
    const timedOut = !hasWork() && Atomics.wait(this.cell, RINGS, seen, timeoutMs) === 'timed-out';
    Atomics.store(this.cell, SLEEPING, 0);
    return timedOut;
  }

  get wakeups(): number {
    return Atomics.load(this.cell, WAKEUPS);
  }
}
