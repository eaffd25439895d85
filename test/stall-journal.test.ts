/**
 * The stall journal (src/runtime/stall-journal.ts): what a thread records is read back with its
 * kind, thread and start time; pauses under the threshold and a journal that is off record
 * nothing; a full region keeps its newest entries in order; this thread's GC pauses are observed.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  createStallJournal, observeGc, readStalls, STALL_CAPACITY, StallWriter,
} from '../src/runtime/stall-journal.js';

test('stall journal: entries come back with kind, thread and start time, merged across threads, oldest first', () => {
  const journal = createStallJournal();
  const log = new StallWriter(journal, 'log', 2);
  const ckpt = new StallWriter(journal, 'checkpoint', 2);
  const apply = new StallWriter(journal, 'apply', 2);
  log.logGroup(100, 3, false);
  log.logGroup(200, 1.9, false); // under the threshold
  log.logGroup(300, 40, true);
  ckpt.checkpoint(250, 12);
  apply.gc(150, 7, 4);
  apply.gc(160, 2.5, 1);
  const t = performance.timeOrigin;
  const got = readStalls(journal);
  assert.deepEqual(got.map((e) => [e.atMs - t, e.ms, e.kind, e.thread, e.gc]), [
    [100, 3, 'fsync', 'log', undefined],
    [150, 7, 'gc', 'apply', 'major'],
    [160, 2.5, 'gc', 'apply', 'minor'],
    [250, 12, 'checkpoint', 'checkpoint', undefined],
    [300, 40, 'rollover', 'log', undefined],
  ]);
  assert.deepEqual(readStalls(journal, t + 160).map((e) => e.atMs - t), [160, 250, 300], 'sinceMs keeps those that began at or after it');
});

test('stall journal: threshold 0 is off; a full region keeps the newest entries in order', () => {
  const journal = createStallJournal();
  const off = new StallWriter(journal, 'main', 0);
  off.gc(1, 1000, 4);
  assert.deepEqual(readStalls(journal), []);
  assert.equal(typeof observeGc(off), 'function', 'observing with the journal off installs nothing');

  const log = new StallWriter(journal, 'log', 1);
  const n = STALL_CAPACITY + 10;
  for (let i = 0; i < n; i++) log.logGroup(i, 1 + i, false);
  const got = readStalls(journal);
  assert.equal(got.length, STALL_CAPACITY - 1, 'the entry the next write would reuse is not returned');
  assert.deepEqual(got.map((e) => e.ms), Array.from({ length: STALL_CAPACITY - 1 }, (_, i) => 1 + n - STALL_CAPACITY + 1 + i));
});

test('stall journal: this thread\'s GC pauses are recorded as gc stalls of its thread', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const journal = createStallJournal();
  const stop = observeGc(new StallWriter(journal, 'main', 1e-6));
  try {
    const before = performance.timeOrigin + performance.now();
    let keep: unknown[] = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    gc();
    keep = [];
    assert.equal(keep.length, 0);
    // PerformanceObserver delivers its entries asynchronously.
    let got: ReturnType<typeof readStalls> = [];
    for (let i = 0; i < 50 && got.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      got = readStalls(journal, before).filter((e) => e.kind === 'gc' && e.gc === 'major');
    }
    assert.ok(got.length >= 1, 'the forced full collection is in the journal');
    assert.equal(got[0]!.thread, 'main');
    assert.ok(got[0]!.ms > 0);
  } finally {
    stop();
  }
});
