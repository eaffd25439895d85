/**
 * The consensus stage's Overflowing producer (src/runtime/consensus-stage.ts): messages go
 * straight into the ring while it has room and nothing is queued, otherwise into an ordered
 * queue that flush() retries; order is kept across the two; the consumer is woken (doorbell
 * rung) at a flush only when something pushed since the last waking flush asked for it — and a
 * waking message still queued keeps asking until it is in the ring.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDoorbell, Doorbell } from '../src/ring/doorbell.js';
import { createRingBuffer, RingConsumer, RingProducer } from '../src/ring/spsc-ring.js';
import { Overflowing } from '../src/runtime/consensus-stage.js';

const MESSAGE_BYTES = 40; // a frame of 44 bytes: five fit a 256-byte ring

function setup(): { out: Overflowing; consumer: RingConsumer; rings: () => number } {
  const ring = createRingBuffer(256);
  const bell = createDoorbell();
  const cell = new Int32Array(bell, 0, 1);
  return {
    out: new Overflowing(new RingProducer(ring, new Doorbell(bell))),
    consumer: new RingConsumer(ring),
    rings: () => Atomics.load(cell, 0),
  };
}

const message = (tag: number): Uint8Array => new Uint8Array(MESSAGE_BYTES).fill(tag);

function drainTags(c: RingConsumer): number[] {
  const tags: number[] = [];
  c.drain((bytes) => {
    assert.equal(bytes.length, MESSAGE_BYTES);
    assert.ok(bytes.every((b) => b === bytes[0]), 'a message arrives whole');
    tags.push(bytes[0]!);
  });
  return tags;
}

test('Overflowing: past the ring\'s room messages queue, in order, and later ones queue behind them', () => {
  const { out, consumer } = setup();
  for (let tag = 1; tag <= 7; tag++) {
    if (tag % 2 === 0) out.pushWith(MESSAGE_BYTES, (bytes, _dv, at) => bytes.fill(tag, at, at + MESSAGE_BYTES));
    else out.push(message(tag));
  }
  assert.deepEqual(drainTags(consumer), [], 'nothing is visible before a flush');
  assert.equal(out.flush(), true, 'two are still waiting');
  assert.deepEqual(drainTags(consumer), [1, 2, 3, 4, 5]);
  // The ring has room again, but the queue is not empty: a new message goes behind it.
  out.push(message(8));
  out.pushWith(MESSAGE_BYTES, (bytes, _dv, at) => bytes.fill(9, at, at + MESSAGE_BYTES));
  assert.equal(out.flush(), false, 'everything fits now');
  assert.deepEqual(drainTags(consumer), [6, 7, 8, 9]);
  out.push(message(10));
  assert.equal(out.flush(), false);
  assert.deepEqual(drainTags(consumer), [10], 'straight into the ring once the queue is empty');
});

test('Overflowing: the doorbell rings at a flush only for messages that asked to wake the consumer', () => {
  const { out, consumer, rings } = setup();
  out.push(message(1), false);
  out.pushWith(MESSAGE_BYTES, (bytes, _dv, at) => bytes.fill(2, at, at + MESSAGE_BYTES), false);
  out.flush();
  assert.equal(rings(), 0, 'silent messages only: no wake-up');
  assert.deepEqual(drainTags(consumer), [1, 2], 'but they are published');
  out.push(message(3), false);
  out.push(message(4));
  out.flush();
  assert.equal(rings(), 1, 'one waking message among silent ones: one wake-up');
  out.flush();
  assert.equal(rings(), 1, 'nothing new: no wake-up');
  assert.deepEqual(drainTags(consumer), [3, 4]);

  // A waking message that had to queue keeps asking until a flush gets it into the ring.
  for (let tag = 5; tag <= 9; tag++) out.push(message(tag), false); // fills the ring
  out.push(message(10)); // queued, wants a wake-up
  assert.equal(out.flush(), true);
  assert.equal(rings(), 2);
  assert.deepEqual(drainTags(consumer), [5, 6, 7, 8, 9]);
  assert.equal(out.flush(), false);
  assert.equal(rings(), 3, 'rung again when the queued waking message reached the ring');
  assert.deepEqual(drainTags(consumer), [10]);
  out.push(message(11), false);
  out.flush();
  assert.equal(rings(), 3, 'the request was used up');
});
