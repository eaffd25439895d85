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
import { Worker } from 'node:worker_threads';
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
  apply.gc(170, 3, 2); // a kind this journal does not name
  const t = performance.timeOrigin;
  const got = readStalls(journal);
  assert.deepEqual(got.map((e) => [e.atMs - t, e.ms, e.kind, e.thread, e.gc]), [
    [100, 3, 'fsync', 'log', undefined],
    [150, 7, 'gc', 'apply', 'major'],
    [160, 2.5, 'gc', 'apply', 'minor'],
    [170, 3, 'gc', 'apply', 'other'],
    [250, 12, 'checkpoint', 'checkpoint', undefined],
    [300, 40, 'rollover', 'log', undefined],
  ]);
  assert.deepEqual(readStalls(journal, t + 160).map((e) => e.atMs - t), [160, 170, 250, 300], 'sinceMs keeps those that began at or after it');
});

test('stall journal: threshold 0 is off; a full region keeps the newest entries in order', () => {
  const journal = createStallJournal();
  const off = new StallWriter(journal, 'main', 0);
  off.gc(1, 1000, 4);
  assert.deepEqual(readStalls(journal), []);

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

test('stall journal: a reader never sees a torn entry while another thread writes', async () => {
  const journal = createStallJournal();
  // The writer's entries all have atMs − ms = its timeOrigin − 1; a torn read would pair fields
  // of entries STALL_CAPACITY apart and break that.
  const url = new URL('../src/runtime/stall-journal.js', import.meta.url).href;
  const worker = new Worker(`
    const { workerData, parentPort } = require('node:worker_threads');
    import(workerData.url).then(({ StallWriter }) => {
      const w = new StallWriter(workerData.journal, 'log', 1);
      for (let k = 0; k < 300000; k++) w.logGroup(k, k + 1, false);
      parentPort.postMessage('done');
    });`, { eval: true, workerData: { journal, url } });
  const done = new Promise((resolve, reject) => { worker.once('message', resolve); worker.once('error', reject); });
  let finished = false;
  void done.then(() => { finished = true; });
  let reads = 0;
  let seen = 0;
  while (!finished) {
    const got = readStalls(journal);
    if (got.length > 1) {
      const d0 = got[0]!.atMs - got[0]!.ms;
      for (const e of got) assert.ok(Math.abs(e.atMs - e.ms - d0) < 0.01, 'an entry whose fields belong together');
      for (let i = 1; i < got.length; i++) assert.equal(got[i]!.ms, got[i - 1]!.ms + 1, 'consecutive entries, none skipped');
      seen += got.length;
    }
    reads++;
    await new Promise((r) => setImmediate(r));
  }
  await worker.terminate();
  assert.ok(reads > 1 && seen > 0);
  assert.equal(readStalls(journal).length, STALL_CAPACITY - 1);
});
