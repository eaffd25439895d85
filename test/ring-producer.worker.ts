/**
 * Producer thread of the ring stress test: pushes `count` messages whose bytes are a function of
 * their index, in random sizes, publishing in random batches, sleeping when the ring is full.
 */
import { workerData, parentPort } from 'node:worker_threads';
import { Doorbell } from '../src/ring/doorbell.js';
import { RingProducer } from '../src/ring/spsc-ring.js';
import { Random } from '../src/util/random.js';

const { buffer, count, seed, doorbell } = workerData as { buffer: SharedArrayBuffer; count: number; seed: number; doorbell?: SharedArrayBuffer };
const producer = new RingProducer(buffer, doorbell ? new Doorbell(doorbell) : null);
const rng = new Random(seed);
let sleeps = 0;
let sent = 0;
while (sent < count) {
  const batch = rng.range(1, 32);
  for (let b = 0; b < batch && sent < count; b++) {
    const size = rng.chance(0.1) ? rng.range(0, producer.messageBytesMax - 4) : rng.range(0, 40);
    const msg = new Uint8Array(size + 4);
    new DataView(msg.buffer).setUint32(0, sent, true);
    for (let i = 4; i < msg.length; i++) msg[i] = (sent * 31 + i) & 0xff;
    while (!producer.tryPush(msg)) {
      producer.publish();
      sleeps++;
      producer.waitForRoom(msg.length, 1000);
    }
    sent++;
  }
  producer.publish();
}
parentPort!.postMessage({ sleeps });
