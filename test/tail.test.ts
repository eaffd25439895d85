/**
 * The benchmark's tail attribution (bench/cluster/tail.ts): slow operations grouped into
 * clusters, each given the stalls near it by the documented rules.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attributeTail, GAP_MS, LAG_MS, LEAD_MS, type ReplicaStalls } from '../bench/cluster/tail.js';
import { STALL_CAPACITY, type StallEvent } from '../src/runtime/stall-journal.js';

const T = 1_800_000_000_000; // window start, ms since the epoch
const log = (atMs: number, ms: number, rollover = false): StallEvent => ({ atMs: T + atMs, ms, kind: rollover ? 'rollover' : 'fsync', thread: 'log' });
const gc = (atMs: number, ms: number, thread: StallEvent['thread']): StallEvent => ({ atMs: T + atMs, ms, kind: 'gc', thread, gc: 'minor' });

test('tail: clusters by send time, causes by the stalls near each, quorum-blocking log stalls told apart', () => {
  const slow: [number, number, number][] = [
    // Cluster A at 1000 ms: three buckets less than GAP_MS apart, 60 ops; log stalls on r1 and r2 (r2 a rollover).
    [T + 1000, 20, 40], [T + 1002, 20, 35], [T + 1002 + GAP_MS - 1, 20, 30],
    // Cluster B at 2000 ms: 5 ops; a GC pause of the primary's main thread that began LEAD_MS before.
    [T + 2000, 5, 15],
    // Cluster C at 3000 ms: 3 ops; only the primary's log stalled.
    [T + 3000, 3, 12],
    // Cluster D at 4000 ms: 2 ops; a stall that ended before LEAD_MS and one that began after LAG_MS.
    [T + 4000, 2, 11],
    // Cluster E at 4500 ms: 4 ops; log stalls on r1 and r3 near it, one after the other (no moment
    // when both were stalled: a quorum was durable all along).
    [T + 4500, 4, 13],
  ];
  const replicas: ReplicaStalls[] = [
    { replica: 1, primary: true, stalls: [log(995, 20), gc(2000 - LEAD_MS - 5, 5.5, 'main'), log(3001, 9), log(4000 - LEAD_MS - 10, 9.9), log(4490, 5), log(-5000, 50)] },
    { replica: 2, primary: false, stalls: [log(1001, 30, true), gc(4000 + LAG_MS + 1, 7, 'consensus')] },
    { replica: 3, primary: false, stalls: [log(4496, 6)] },
  ];
  const r = attributeTail(slow, replicas, T, T + 5000, 10_000, 10);
  assert.equal(r.clusters, 5);
  assert.equal(r.slowOps, 74);
  assert.equal(r.slowShare, 0.0074);
  assert.deepEqual(r.worst.map((c) => [c.atS, c.ops, c.maxMs, c.causes]), [
    [1, 60, 40, ['fsyncQuorum', 'rollover']],
    [2, 5, 15, ['gcPrimaryMain']],
    [4.5, 4, 13, ['fsyncPrimary', 'fsyncSecondary']],
    [3, 3, 12, ['fsyncPrimary']],
    [4, 2, 11, ['none']],
  ]);
  assert.equal(r.worst[0]!.spanMs, 2 + GAP_MS);
  assert.deepEqual(r.worst[0]!.stalls, ['r1 log fsync 20 ms at -5 ms', 'r2 log rollover 30 ms at 1 ms']);
  assert.equal(r.opsByCause.fsyncQuorum, 60);
  assert.equal(r.opsByCause.rollover, 60);
  assert.equal(r.opsByCause.none, 2);
  assert.equal(r.clustersByCause.gcPrimaryMain, 1);
  assert.equal(r.opsByCause.fsyncSecondary, 4, 'only cluster E');
  assert.equal(r.opsByCause.checkpoint + r.opsByCause.gcSecondary, 0);
  // The stall 5 s before the window is not counted; the rest are, by thread and kind.
  assert.deepEqual(r.stallsPerReplica, [{ 'log fsync': 4, 'main gc': 1 }, { 'log rollover': 1, 'consensus gc': 1 }, { 'log fsync': 1 }]);
  assert.deepEqual(r.journalsFull, []);
});

test('tail: a journal that was full with its oldest entry inside the window is named', () => {
  const full = Array.from({ length: STALL_CAPACITY - 1 }, (_, i) => log(100 + i, 6));
  const r = attributeTail([], [
    { replica: 1, primary: true, stalls: full },
    { replica: 2, primary: false, stalls: full.map((e) => ({ ...e, atMs: e.atMs - 1000 })) }, // reaches back before the window
  ], T, T + 5000, 100, 10);
  assert.deepEqual(r.journalsFull, ['r1 log']);
});

test('tail: no slow operation, no cluster', () => {
  const r = attributeTail([], [{ replica: 1, primary: true, stalls: [] }], T, T + 1000, 500, 10);
  assert.equal(r.clusters, 0);
  assert.equal(r.slowOps, 0);
  assert.equal(r.slowShare, 0);
  assert.deepEqual(r.worst, []);
});
