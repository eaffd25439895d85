/**
 * The SPSC ring: a property test against a plain queue (wrap-around included), and a two-thread
 * stress test that checks every byte and counts lost wake-ups (a sleep that ran to its timeout
 * while data was waiting), which must be 0.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { RingConsumer, RingError, RingProducer, createRingBuffer } from '../src/ring/spsc-ring.js';

test('ring: random pushes and drains behave like a FIFO queue, across wrap-around', () => {
  fc.assert(fc.property(
    fc.constantFrom(64, 128, 256, 1024),
    fc.array(fc.oneof(fc.uint8Array({ maxLength: 60 }), fc.integer({ min: 1, max: 5 })), { maxLength: 300 }),
    (capacity, ops) => {
      const buf = createRingBuffer(capacity);
      const p = new RingProducer(buf);
      const c = new RingConsumer(buf);
      const model: Uint8Array[] = [];
      for (const op of ops) {
        if (op instanceof Uint8Array) {
          if (op.length > p.messageBytesMax) {
            assert.throws(() => p.tryPush(op), RingError);
          } else if (p.tryPush(op)) {
            model.push(op.slice());
          }
          p.publish();
        } else {
          const got: Uint8Array[] = [];
          c.drain((m) => got.push(m.slice()), op);
          assert.deepEqual(got, model.splice(0, got.length));
          assert.ok(got.length === Math.min(op, got.length + model.length) || got.length === op);
        }
      }
      const rest: Uint8Array[] = [];
      c.drain((m) => rest.push(m.slice()));
      assert.deepEqual(rest, model);
      assert.ok(c.isEmpty());
    }), { numRuns: 500, seed: 11 });
});

test('ring: a full ring refuses a push and accepts it after a drain', () => {
  const buf = createRingBuffer(64);
  const p = new RingProducer(buf);
  const c = new RingConsumer(buf);
  const msg = new Uint8Array(12).fill(7);
  let pushed = 0;
  while (p.tryPush(msg)) pushed++;
  p.publish();
  assert.equal(pushed, 4); // 4 frames of 16 bytes fill 64
  assert.equal(c.drain(() => {}, 1), 1);
  assert.ok(p.tryPush(msg));
});

test('ring: two threads, every byte checked, no lost wake-ups', async () => {
  const count = 200_000;
  const buf = createRingBuffer(1 << 14);
  const here = dirname(fileURLToPath(import.meta.url));
  const worker = new Worker(join(here, 'ring-producer.worker.js'), { workerData: { buffer: buf, count, seed: 5 } });
  const done = new Promise<{ sleeps: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  // The consumer blocks this thread in Atomics.wait, so let the worker finish starting first.
  await new Promise((resolve) => worker.once('online', resolve));
  const c = new RingConsumer(buf);
  let next = 0;
  let lostWakeups = 0;
  let sleeps = 0;
  const deadline = Date.now() + 30_000;
  while (next < count) {
    if (Date.now() > deadline) assert.fail(`stalled at message ${next}`);
    const outcome = c.waitForData(2000);
    if (outcome !== 'ready') sleeps++;
    if (outcome === 'timed-out' && !c.isEmpty()) lostWakeups++;
    c.drain((m) => {
      const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
      assert.equal(dv.getUint32(0, true), next, 'messages arrive in order');
      for (let i = 4; i < m.length; i++) {
        if (m[i] !== ((next * 31 + i) & 0xff)) assert.fail(`byte ${i} of message ${next} is wrong`);
      }
      next++;
    });
  }
  const { sleeps: producerSleeps } = await done;
  await worker.terminate();
  assert.equal(next, count);
  assert.equal(lostWakeups, 0);
  assert.ok(sleeps + producerSleeps > 0, 'the test exercised sleeping');
});
