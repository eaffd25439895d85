/**
 * The producing side of the log-stage benchmark: builds decrees of 16-byte commands (≤ 1,024
 * commands or ≤ 64 KiB each, in the core's batch layout: u32 count, then u32 length + bytes per
 * command) and pushes them through an SPSC ring to the log stage until told to stop.
 *
 * Shared control (Int32Array over `control`): [0] stop flag, [1] decrees pushed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RingProducer } from '../../src/ring/spsc-ring.js';

interface ProducerData {
  readonly ring: SharedArrayBuffer;
  readonly control: SharedArrayBuffer;
  readonly commandBytes: number;
  readonly commandsPerDecree: number;
}

const { ring, control, commandBytes, commandsPerDecree } = workerData as ProducerData;
const producer = new RingProducer(ring);
const ctl = new Int32Array(control);
const frame = 4 + commandBytes;
const decree = new Uint8Array(4 + commandsPerDecree * frame);
const view = new DataView(decree.buffer);
view.setUint32(0, commandsPerDecree, true);
for (let i = 0; i < commandsPerDecree; i++) view.setUint32(4 + i * frame, commandBytes, true);

let sequence = 0;
let pushed = 0;
while (Atomics.load(ctl, 0) === 0) {
  // Each command carries a distinct sequence number, so the bytes differ decree to decree.
  for (let i = 0; i < commandsPerDecree; i++) view.setUint32(8 + i * frame, sequence++, true);
  let ok = producer.tryPush(decree);
  while (!ok && Atomics.load(ctl, 0) === 0) {
    producer.publish();
    producer.waitForRoom(decree.length, 50);
    ok = producer.tryPush(decree);
  }
  if (!ok) break;
  pushed++;
  if ((pushed & 7) === 0) {
    producer.publish();
    Atomics.store(ctl, 1, pushed);
  }
}
producer.publish();
parentPort!.postMessage({ pushed });
