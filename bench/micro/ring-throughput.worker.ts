/**
 * The producing thread of the two-thread ring micro benchmark (micro-ring.ts). It sits idle,
 * blocked in Atomics.wait, until the measuring thread asks for a round; then it pushes
 * `messagesPerRound` messages of `messageBytes` each through an SPSC ring, publishing every
 * PUBLISH_EVERY pushes (as a stage batching its hand-over would) and sleeping on the ring when
 * it is full, and goes back to idle.
 *
 * Shared control (Int32Array over `control`, slots below): the measuring thread bumps ROUNDS_ASKED
 * and notifies it; this thread bumps ROUNDS_DONE when a round's last message is published. STOP
 * ends the loop. Every wait has a timeout, so a lost notify costs time, never a hang.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingProducer } from '../../src/ring/spsc-ring.js';

export const CONTROL_ROUNDS_ASKED = 0;
export const CONTROL_ROUNDS_DONE = 1;
export const CONTROL_STOP = 2;
export const CONTROL_SLOTS = 4;

const PUBLISH_EVERY = 64;
const WAIT_MS = 50;

interface ProducerData {
  readonly ring: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly messageBytes: number;
  readonly messagesPerRound: number;
}

function produce(data: ProducerData): void {
  const producer = new RingProducer(data.ring);
  const ctl = new Int32Array(data.control);
  const message = new Uint8Array(data.messageBytes);
  let done = 0;
  while (Atomics.load(ctl, CONTROL_STOP) === 0) {
    if (Atomics.load(ctl, CONTROL_ROUNDS_ASKED) === done) {
      Atomics.wait(ctl, CONTROL_ROUNDS_ASKED, done, 1000);
      continue;
    }
    for (let i = 0; i < data.messagesPerRound; i++) {
      message[0] = i & 0xff; // the bytes change message to message, as real payloads do
      while (!producer.tryPush(message)) {
        producer.publish();
        if (Atomics.load(ctl, CONTROL_STOP) !== 0) return;
        producer.waitForRoom(message.length, WAIT_MS);
      }
      if ((i + 1) % PUBLISH_EVERY === 0) producer.publish();
    }
    producer.publish();
    done++;
    Atomics.store(ctl, CONTROL_ROUNDS_DONE, done);
  }
}

// Only when started as the worker: micro-ring.ts imports the CONTROL_* constants from here too.
const started = workerData as unknown;
if (parentPort !== null && typeof started === 'object' && started !== null && 'ring' in started) {
  // 'online' fires before this module has loaded; the measuring thread waits for this instead,
  // since once it starts timing it blocks its own event loop.
  parentPort.postMessage('ready');
  produce(started as ProducerData);
  parentPort.postMessage('stopped');
}
