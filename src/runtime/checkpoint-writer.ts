/**
 * Checkpoints written off the apply thread (decision 0010).
 *
 * The apply thread must capture the state at one decree, so it still runs the state machine's
 * `saveState` — into memory (`StateBuffer`), which is a copy and nothing else. The file work —
 * block CRCs, writes, fdatasync, the read-back verification, rename, directory fsync and the
 * removal of checkpoints beyond `checkpointsKept` — runs on a writer thread
 * (`workers/checkpoint.worker.js`) through the same `writeCheckpoint` as before, so the format and
 * its crash safety are unchanged. The captured buffers are transferred, not copied.
 *
 * Invariants:
 *  - One checkpoint in flight at a time (the apply stage waits for the last before it starts the
 *    next); `CheckpointWriterHost.write` resolves only once the file is durable under its final
 *    name and older files beyond the kept count are gone, so whatever relies on a checkpoint
 *    (retention retiring log segments below the oldest one kept) still only sees durable ones.
 *  - A failed write (disk full, fsync failure, a crashed writer thread) rejects with a coded error
 *    and leaves no `.tmp` file behind (writeCheckpoint removes it; a crash leaves one that the next
 *    open removes); a crashed writer thread is replaced at the next write.
 */
import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { listCheckpoints, writeCheckpoint, type CheckpointMeta } from '../log/checkpoint.js';
import { NodeFileLayer } from '../log/node-file-layer.js';
import { errorShape, PaxlineError, revive, type ErrorShape } from './errors.js';
import { StallWriter } from './stall-journal.js';

/** Where the writer thread records how long each checkpoint took (stall-journal.ts). */
export interface CheckpointStalls {
  readonly journal: SharedArrayBuffer;
  readonly thresholdMs: number;
}

const WRITER_URL = new URL('../../workers/checkpoint.worker.js', import.meta.url);
/** Bytes per captured chunk (the last one is trimmed). */
const CHUNK_BYTES = 4 * 1024 * 1024;

/** A StateWriter that keeps the stream in memory, in transferable chunks. */
export class StateBuffer {
  bytesWritten = 0;
  private readonly chunks: Uint8Array[] = [];
  private current: Uint8Array | null = null;
  private used = 0;

  /** Appends a copy of `bytes` (the caller may reuse its buffer at once). */
  write(bytes: Uint8Array): void {
    let from = 0;
    while (from < bytes.length) {
      if (this.current === null || this.used === this.current.length) {
        this.current = new Uint8Array(new ArrayBuffer(CHUNK_BYTES));
        this.chunks.push(this.current);
        this.used = 0;
      }
      const n = Math.min(bytes.length - from, this.current.length - this.used);
      this.current.set(bytes.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
    }
    this.bytesWritten += bytes.length;
  }

  /** The captured stream, in order; the buffer is empty afterwards. */
  take(): Uint8Array[] {
    const out = this.chunks.splice(0);
    if (out.length > 0) {
      const last = out.length - 1;
      out[last] = out[last]!.slice(0, this.used); // a right-sized copy of the last chunk only
    }
    this.current = null;
    this.used = 0;
    this.bytesWritten = 0;
    return out;
  }
}

export interface CheckpointWritten {
  readonly decree: number;
  /** Decree of the oldest checkpoint kept after the write (retention's floor). */
  readonly oldestKept: number;
}

interface WriteRequest {
  readonly id: number;
  readonly dir: string;
  readonly kept: number;
  readonly meta: CheckpointMeta;
  readonly chunks: Uint8Array[];
}

type WriteReply =
  | { readonly id: number; readonly decree: number; readonly oldestKept: number }
  | { readonly id: number; readonly error: ErrorShape };

/** The apply thread's side: hands captured states to the writer thread. */
export class CheckpointWriterHost {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (w: CheckpointWritten) => void; reject: (e: Error) => void }>();

  /** `nice`: the value the writer thread takes when it starts (the apply thread's base; null: inherit). */
  constructor(
    private readonly dir: string, private readonly kept: number, private readonly nice: number | null = null,
    private readonly stalls: CheckpointStalls | null = null,
  ) {}

  /** Starts the writer thread now, if it is not running (write() starts it otherwise). */
  start(): void {
    if (this.worker === null) this.spawn();
  }

  /** Writes the captured stream as the checkpoint `meta`; resolves once it is durable. */
  write(meta: CheckpointMeta, chunks: Uint8Array[]): Promise<CheckpointWritten> {
    const worker = this.worker ?? this.spawn();
    const id = this.nextId++;
    const request: WriteRequest = { id, dir: this.dir, kept: this.kept, meta, chunks };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage(request, chunks.map((c) => c.buffer as ArrayBuffer));
    });
  }

  /** Stops the writer thread (after the caller has waited for the write in flight). */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w !== null) await w.terminate();
    this.failAll(new PaxlineError('PAXLINE_SHUTTING_DOWN', 'the checkpoint writer was closed'));
  }

  private spawn(): Worker {
    const worker = new Worker(WRITER_URL, { name: 'paxline-checkpoint', workerData: { nice: this.nice, stalls: this.stalls } });
    worker.on('message', (reply: WriteReply) => {
      const w = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (w === undefined) return;
      if ('error' in reply) w.reject(revive(reply.error));
      else w.resolve({ decree: reply.decree, oldestKept: reply.oldestKept });
    });
    const lost = (why: string): void => {
      if (this.worker === worker) this.worker = null;
      this.failAll(revive({ code: 'PAXLINE_WRITE_FAILED', message: `the checkpoint writer thread ${why}` }));
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    this.worker = worker;
    return worker;
  }

  private failAll(e: Error): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of all) w.reject(e);
  }
}

/** The writer thread: one write at a time, in arrival order (synchronous file calls). */
export function runCheckpointWriter(port: MessagePort, stalls: CheckpointStalls | null = null): void {
  const fs = new NodeFileLayer();
  const journal = stalls === null ? null : new StallWriter(stalls.journal, 'checkpoint', stalls.thresholdMs);
  port.on('message', (m: WriteRequest) => {
    let reply: WriteReply;
    const t0 = performance.now();
    try {
      writeCheckpoint(fs, m.dir, m.meta, (writer) => {
        for (const chunk of m.chunks) writer.write(chunk);
      });
      const all = listCheckpoints(fs, m.dir);
      const drop = Math.max(0, all.length - m.kept);
      for (const old of all.slice(0, drop)) rmSync(old.path, { force: true });
      reply = { id: m.id, decree: m.meta.decree, oldestKept: all[drop]?.decree ?? 0 };
    } catch (e) {
      reply = { id: m.id, error: errorShape(e) };
    }
    journal?.checkpoint(t0, performance.now() - t0);
    port.postMessage(reply);
  });
}
