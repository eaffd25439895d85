/**
 * RecoveryArenas: memory for the payloads a recovery scan keeps, pre-faulted on a helper thread.
 *
 * Why. Keeping every record of a large log means copying its payloads into about as many bytes
 * of fresh memory, and the first touch of each fresh 4 KiB page costs a page fault and the
 * kernel's zeroing of it (transparent huge pages are usually `madvise`, which Node's allocations
 * never ask for). A profile of a keep-all open of 1 GiB spent about half its time there, on the
 * scan's only thread. Here a helper thread allocates large ArrayBuffers ("arenas"), touches one
 * byte of every page, and transfers them to the scanning thread, which copies each kept group
 * body into the current arena (memory already resident) instead of into a fresh slice, or reads
 * a large body from its file straight into it (`reserve`). The faults are paid on another core
 * while the scan reads and verifies.
 *
 * Why not piscina. SegmentLog.open is synchronous (it runs in the log worker and in the
 * deterministic simulator), so nothing here may wait for the event loop: the arenas arrive on a
 * MessagePort drained with `receiveMessageOnPort`, and the helper rings a SharedArrayBuffer
 * doorbell after each one, so a caller that chose to wait can `Atomics.wait` on it. piscina's
 * task API is promise-based.
 *
 * What never changes. The arenas only decide where the kept bytes live: every byte is still read
 * and verified by the scan on its own thread, in log order, so the verdicts cannot differ. When
 * no arena is ready (the helper is starting, behind, or gone), `copy` and `reserve` return null
 * and the caller copies into fresh memory as it would without a helper.
 *
 *   doorbell (Int32Array over a SharedArrayBuffer of BELL_BYTES)
 *   ┌─────────────────────────────┐
 *   │ [BELL_ARENAS] arenas posted │  helper: postMessage(arena), then Atomics.add + notify
 *   └─────────────────────────────┘  scanner: load the count, try the port, wait on it
 *
 * Invariants: an arena is used by one thread at a time (transferred, never shared); arenas in
 * flight are bounded by ARENAS_AHEAD (the scanner asks for one more per arena it takes); a kept
 * body is copied into an arena only whole, so payload views never span two arenas.
 */
import {
  MessageChannel,
  Worker,
  receiveMessageOnPort,
  type MessagePort,
} from 'node:worker_threads';
import { assert } from '../core/assert.js';
import {
  ARENA_BYTES,
  ARENA_BYTES_FIRST,
  ARENAS_AHEAD,
  ARENA_WAIT_MS_MAX,
  PAGE_BYTES,
} from './segment-limits.js';

/** Slot of the doorbell counting arenas posted by the helper. */
const BELL_ARENAS = 0;
const BELL_BYTES = 4;

const HELPER_URL = new URL('../../workers/recovery-arenas.worker.js', import.meta.url);

/** What the helper thread receives as its workerData. */
export interface ArenaHelperInit {
  readonly port: MessagePort;
  readonly bell: SharedArrayBuffer;
  readonly arenaBytes: number;
  readonly arenasAhead: number;
}

export class RecoveryArenas {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly bell: Int32Array;
  private current: Uint8Array | null = null;
  private used = 0;
  /** The helper failed or did not deliver in time: stop asking it. */
  private failed = false;
  /** Why the helper failed (for debugging). */
  failure: string | null = null;

  /**
   * Starts the helper. `wait`: block (up to ARENA_WAIT_MS_MAX) for an arena when none is ready,
   * instead of letting the caller copy into fresh memory (deterministic use of the arenas, for
   * tests and measurements).
   */
  constructor(
    private readonly wait: boolean,
    readonly arenaBytes = ARENA_BYTES,
  ) {
    assert(arenaBytes % PAGE_BYTES === 0 && arenaBytes > 0, 'RecoveryArenas: arena size');
    const { port1, port2 } = new MessageChannel();
    const bell = new SharedArrayBuffer(BELL_BYTES);
    const init: ArenaHelperInit = { port: port2, bell, arenaBytes, arenasAhead: ARENAS_AHEAD };
    this.worker = new Worker(HELPER_URL, { workerData: init, transferList: [port2] });
    // Never keep the process alive, and never let a helper failure (an allocation refused, say)
    // become an uncaught error: the scan copies into fresh memory without it.
    this.worker.unref();
    this.worker.on('error', () => {
      this.failed = true;
    });
    this.port = port1;
    this.bell = new Int32Array(bell);
  }

  /**
   * A copy of `src` in pre-faulted memory, or null when none is ready (or `src` is larger than
   * an arena): the caller then copies it into fresh memory itself.
   */
  copy(src: Uint8Array): Uint8Array | null {
    const out = this.reserve(src.length);
    if (out === null) return null;
    out.set(src);
    return out;
  }

  /**
   * `n` bytes of pre-faulted memory for the caller to fill (a group body read straight from its
   * file), or null as for `copy`. Until the next reserve, `release` may hand them back.
   */
  reserve(n: number): Uint8Array | null {
    if (n > this.arenaBytes || this.failed) return null;
    if (this.current === null || this.used + n > this.current.length) {
      const next = this.take();
      if (next === null) return null;
      // The rest of the previous arena stays unused (at most one group body's worth).
      this.current = next;
      this.used = 0;
      if (n > next.length) return null; // larger than a first, smaller arena
    }
    const out = this.current.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }

  /** Hands back the bytes of the last `reserve` (nothing of them was kept). */
  release(reserved: Uint8Array): void {
    const current = this.current;
    assert(current !== null && reserved.buffer === current.buffer, 'release: not the arena');
    assert(reserved.byteOffset + reserved.length === this.used, 'release: not the last reserve');
    this.used -= reserved.length;
  }

  /** Stops the helper; arenas it still sends are dropped. Kept payloads stay valid. */
  close(): void {
    this.port.close();
    void this.worker.terminate();
    this.current = null;
  }

  private take(): Uint8Array | null {
    for (;;) {
      // Load the count before looking at the port: an arena posted after the look rings a bell
      // count other than `seen`, so the wait below cannot sleep through it.
      const seen = Atomics.load(this.bell, BELL_ARENAS);
      const got = receiveMessageOnPort(this.port);
      if (got !== undefined) {
        if (!(got.message instanceof ArrayBuffer)) {
          // The helper failed (it reports why, for debugging; the scan goes on without it).
          this.failed = true;
          this.failure = String(got.message);
          return null;
        }
        const arena = got.message;
        assert(arena.byteLength <= this.arenaBytes, 'RecoveryArenas: arena too large');
        this.port.postMessage(1);
        return new Uint8Array(arena);
      }
      if (!this.wait) return null;
      if (Atomics.wait(this.bell, BELL_ARENAS, seen, ARENA_WAIT_MS_MAX) === 'timed-out') {
        this.failed = true;
        this.failure = `no arena in ${ARENA_WAIT_MS_MAX} ms`;
        return null;
      }
    }
  }
}

/**
 * The helper thread: pre-faults arenas, `arenasAhead` at first, then one per request. The first
 * arenas are smaller (ARENA_BYTES_FIRST, doubling up to `arenaBytes`), so that the scan, already
 * running while this thread boots, gets pre-faulted memory sooner.
 */
export function runArenaHelper(init: ArenaHelperInit): void {
  const bell = new Int32Array(init.bell);
  let arenaBytes = Math.min(ARENA_BYTES_FIRST, init.arenaBytes);
  const make = (count: number): void => {
    try {
      makeArenas(count);
    } catch (e) {
      // An allocation refused, say: tell the scan at once (it would otherwise wait in vain).
      init.port.postMessage(`recovery helper: ${String(e)}`);
      Atomics.add(bell, BELL_ARENAS, 1);
      Atomics.notify(bell, BELL_ARENAS);
      init.port.close();
    }
  };
  const makeArenas = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const arena = new ArrayBuffer(arenaBytes);
      arenaBytes = Math.min(2 * arenaBytes, init.arenaBytes);
      const bytes = new Uint8Array(arena);
      // One write per page makes the kernel back (and zero) it now, on this thread.
      for (let at = 0; at < bytes.length; at += PAGE_BYTES) bytes[at] = 0;
      init.port.postMessage(arena, [arena]);
      Atomics.add(bell, BELL_ARENAS, 1);
      Atomics.notify(bell, BELL_ARENAS);
    }
  };
  init.port.on('message', (count: number) => make(count));
  make(init.arenasAhead);
}
