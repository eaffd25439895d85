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
import { createDoorbell, Doorbell } from '../src/ring/doorbell.js';
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

test('ring: publish(false) makes messages visible without ringing the doorbell', () => {
  const buf = createRingBuffer(256);
  const bellBuf = createDoorbell();
  const rings = new Int32Array(bellBuf, 0, 1); // doorbell slot 0: RINGS, bumped by every ring()
  const p = new RingProducer(buf, new Doorbell(bellBuf));
  const c = new RingConsumer(buf);
  assert.ok(p.tryPush(new Uint8Array([1, 2, 3])));
  p.publish(false);
  assert.ok(!c.isEmpty(), 'the message is visible');
  assert.equal(Atomics.load(rings, 0), 0, 'not rung');
  assert.ok(p.tryPush(new Uint8Array([4])));
  p.publish();
  assert.equal(Atomics.load(rings, 0), 1, 'a waking publish rings');
  const got: number[][] = [];
  c.drain((m) => got.push([...m]));
  assert.deepEqual(got, [[1, 2, 3], [4]]);
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

test('ring: one event-loop consumer of two rings behind a doorbell (waitAsync), every byte checked, no lost wake-ups', async () => {
  const count = 100_000;
  const bell = createDoorbell();
  const rings = [createRingBuffer(1 << 12), createRingBuffer(1 << 13)];
  const here = dirname(fileURLToPath(import.meta.url));
  const workers = rings.map((buffer, i) => new Worker(join(here, 'ring-producer.worker.js'), {
    workerData: { buffer, count, seed: 17 + i, doorbell: bell },
  }));
  const done = workers.map((w) => new Promise<{ sleeps: number }>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  }));
  const consumers = rings.map((b) => new RingConsumer(b));
  const next = [0, 0];
  const doorbell = new Doorbell(bell);
  let lostWakeups = 0;
  let waits = 0;
  const hasWork = (): boolean => consumers.some((c) => !c.isEmpty());
  const deadline = Date.now() + 60_000;
  while (next[0]! < count || next[1]! < count) {
    if (Date.now() > deadline) assert.fail(`stalled at ${next.join(', ')}`);
    const timedOut = await doorbell.wait(hasWork, 2000);
    waits++;
    if (timedOut && hasWork()) lostWakeups++;
    consumers.forEach((c, i) => c.drain((m) => {
      const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
      assert.equal(dv.getUint32(0, true), next[i], 'messages arrive in order');
      for (let k = 4; k < m.length; k++) {
        if (m[k] !== ((next[i]! * 31 + k) & 0xff)) assert.fail(`byte ${k} of message ${next[i]} of ring ${i} is wrong`);
      }
      next[i]!++;
    }));
  }
  await Promise.all(done);
  await Promise.all(workers.map((w) => w.terminate()));
  assert.deepEqual(next, [count, count]);
  assert.equal(lostWakeups, 0);
  assert.ok(waits > 0 && doorbell.wakeups > 0, 'the test exercised sleeping on the doorbell');
});

test('ring: waitForDataAsync wakes an event-loop consumer without lost wake-ups', async () => {
  const count = 100_000;
  const buf = createRingBuffer(1 << 12);
  const here = dirname(fileURLToPath(import.meta.url));
  const worker = new Worker(join(here, 'ring-producer.worker.js'), { workerData: { buffer: buf, count, seed: 23 } });
  const done = new Promise<{ sleeps: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  const c = new RingConsumer(buf);
  let next = 0;
  let lostWakeups = 0;
  let slept = 0;
  const deadline = Date.now() + 60_000;
  while (next < count) {
    if (Date.now() > deadline) assert.fail(`stalled at message ${next}`);
    const outcome = await c.waitForDataAsync(2000);
    if (outcome !== 'ready') slept++;
    if (outcome === 'timed-out' && !c.isEmpty()) lostWakeups++;
    c.drain((m) => {
      assert.equal(new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(0, true), next);
      next++;
    });
  }
  await done;
  await worker.terminate();
  assert.equal(lostWakeups, 0);
  assert.ok(slept > 0, 'the consumer slept at least once');
});
