/**
 * Ring micro benchmarks (src/ring/spsc-ring.ts).
 *
 * One thread (`ring push+drain …`): RingProducer.tryPush + publish and RingConsumer.drain on the
 * same thread, so they measure the CPU cost of the ring's bookkeeping and copies — the frame
 * header, the payload copy in, the Atomics loads and stores of HEAD and TAIL, one view per
 * message out — with every byte hot in cache. They do NOT measure cross-core cache traffic or
 * wake-ups: nobody ever sleeps. `×1` pushes, publishes and drains one message at a time;
 * `×64 batched` pushes 64, publishes once and drains 64 in one call, as the stages batch.
 *
 * Two threads (`ring 2-thread …`): a producer in a worker thread pushes a round of messages
 * (publishing every 64) while this thread drains them, sleeping in waitForData when the ring is
 * empty. One iteration is one round; the figure is messages (and payload MB) per second through
 * the ring, including the cache-line transfers between cores and any wake-ups. It does NOT
 * include the worker's start-up (done before timing) and, on a machine whose cores are shared,
 * it moves with whatever else runs: read it as a rough ceiling, not a constant.
 */
import { Worker } from 'node:worker_threads';
import { RingConsumer, RingProducer, createRingBuffer } from '../../src/ring/spsc-ring.js';
import { type MicroSize, type MicroTask, sink } from './micro-types.js';
import {
  CONTROL_ROUNDS_ASKED, CONTROL_ROUNDS_DONE, CONTROL_SLOTS, CONTROL_STOP,
} from './ring-throughput.worker.js';

const RING_BYTES = 1 << 20;
const SINGLE_REPEATS = 64;
const BATCH = 64;
const WAIT_MS = 50;
/** A round that makes no progress for this long means the producer died: fail, do not hang. */
const STALL_MS_MAX = 10_000;
const EXIT_WAIT_MS = 5_000;

const onMessage = (payload: Uint8Array): void => {
  sink.value += payload.length;
};

function oneThreadTasks(messageBytes: number, label: string): MicroTask[] {
  const buffer = createRingBuffer(RING_BYTES);
  const producer = new RingProducer(buffer);
  const consumer = new RingConsumer(buffer);
  const message = new Uint8Array(messageBytes).fill(7);
  const single = (): void => {
    for (let i = 0; i < SINGLE_REPEATS; i++) {
      if (!producer.tryPush(message)) throw new Error('ring full in the single benchmark');
      producer.publish();
      if (consumer.drain(onMessage, 1) !== 1) throw new Error('ring lost a message');
    }
  };
  const batched = (): void => {
    for (let i = 0; i < BATCH; i++) {
      if (!producer.tryPush(message)) throw new Error('ring full in the batched benchmark');
    }
    producer.publish();
    if (consumer.drain(onMessage) !== BATCH) throw new Error('ring lost a message');
  };
  return [
    {
      name: `ring push+drain ${label} ×1`, group: 'ring', unit: 'message',
      opsPerIteration: SINGLE_REPEATS, bytesPerOp: messageBytes, fn: single,
    },
    {
      name: `ring push+drain ${label} ×64 batched`, group: 'ring', unit: 'message',
      opsPerIteration: BATCH, bytesPerOp: messageBytes, fn: batched,
    },
  ];
}

function twoThreadTask(messageBytes: number, label: string, size: MicroSize): MicroTask {
  const messagesPerRound = size.quick ? 4096 : 65_536;
  const ring = createRingBuffer(RING_BYTES);
  const control = new SharedArrayBuffer(CONTROL_SLOTS * 4);
  const ctl = new Int32Array(control);
  const consumer = new RingConsumer(ring);
  let worker: Worker | null = null;
  let asked = 0;
  const round = (): void => {
    asked++;
    Atomics.store(ctl, CONTROL_ROUNDS_ASKED, asked);
    Atomics.notify(ctl, CONTROL_ROUNDS_ASKED);
    let got = 0;
    let idleMs = 0;
    while (got < messagesPerRound) {
      const n = consumer.drain(onMessage, messagesPerRound - got);
      got += n;
      if (n > 0) {
        idleMs = 0;
      } else if (consumer.waitForData(WAIT_MS) === 'timed-out') {
        idleMs += WAIT_MS;
        if (idleMs > STALL_MS_MAX) {
          throw new Error(`ring producer stalled (${got}/${messagesPerRound} messages)`);
        }
      }
    }
    if (!consumer.isEmpty()) throw new Error('ring producer pushed more than a round');
  };
  return {
    name: `ring 2-thread ${label}`, group: 'ring', unit: 'message',
    opsPerIteration: messagesPerRound, bytesPerOp: messageBytes, fn: round,
    setup: async () => {
      worker = new Worker(new URL('./ring-throughput.worker.js', import.meta.url), {
        workerData: { ring, control, messageBytes, messagesPerRound },
      });
      await new Promise<void>((resolve, reject) => {
        worker!.once('message', () => resolve()); // its first message: 'ready'
        worker!.once('error', reject);
        worker!.once('exit', (code) => {
          reject(new Error(`ring producer exited (${code}) before ready`));
        });
      });
    },
    teardown: async () => {
      if (worker === null) return;
      const w = worker;
      worker = null;
      Atomics.store(ctl, CONTROL_STOP, 1);
      Atomics.notify(ctl, CONTROL_ROUNDS_ASKED);
      consumer.drain(onMessage); // frees a producer blocked on a full ring
      // Let it finish on its own (it records its last round after publishing it); terminate only
      // a producer that does not stop.
      const exited = new Promise<boolean>((resolve) => w.once('exit', () => resolve(true)));
      const timer = new Promise<boolean>((resolve) => {
        setTimeout(() => resolve(false), EXIT_WAIT_MS).unref();
      });
      if (!(await Promise.race([exited, timer]))) await w.terminate();
      if (Atomics.load(ctl, CONTROL_ROUNDS_DONE) !== asked) {
        const done = Atomics.load(ctl, CONTROL_ROUNDS_DONE);
        throw new Error(`ring producer finished ${done} of ${asked} rounds`);
      }
    },
  };
}

export function ringTasks(size: MicroSize): MicroTask[] {
  return [
    ...oneThreadTasks(16, '16 B'),
    ...oneThreadTasks(1024, '1 KiB'),
    twoThreadTask(16, '16 B', size),
    twoThreadTask(1024, '1 KiB', size),
  ];
}
