/**
 * The benchmark's load driver (bench/cluster/load-driver.ts) against operations that resolve on
 * the next turn of the event loop: what it counts and the open loop's send-lag histogram. No
 * timing thresholds — only counts and the shape of the report.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { LoadDriver, SLOW_MS, type Operations } from '../bench/cluster/load-driver.js';

function nextTurnOps(): Operations<number> & { issued: number } {
  const ops = {
    issued: 0,
    issue: (slot: number): Promise<number> => {
      ops.issued++;
      return new Promise((resolve) => setImmediate(() => resolve(slot)));
    },
    isExpected: (r: number): boolean => r >= 0,
  };
  return ops;
}

test('open loop: every operation sent in the window has a send lag; they sum to what was sent', async () => {
  const ops = nextTurnOps();
  const driver = new LoadDriver({ inflight: 64, rateOpsPerSec: 5000 }, ops);
  driver.start();
  await sleep(50);
  driver.markStart();
  const issuedAtStart = ops.issued;
  await sleep(300);
  const r = driver.markEnd();
  const sentInWindow = ops.issued - issuedAtStart;
  await driver.drain(5000);
  assert.ok(r.sendLag !== null, 'an open loop reports its send lag');
  assert.equal(r.sendLag.count, sentInWindow);
  assert.ok(r.sendLag.count > 0 && r.sendLag.p50Ms >= 0 && r.sendLag.p50Ms <= r.sendLag.p99Ms);
  // A put resolves no earlier than it is sent, so its latency is at least its send lag.
  assert.ok(r.latency.count > 0 && r.latency.maxMs >= r.sendLag.p50Ms);
  assert.ok(r.ops > 0 && r.ops <= r.intendedOps + 64);
  assert.equal(r.errors, 0);
});

test('closed loop: no send lag', async () => {
  const ops = nextTurnOps();
  const driver = new LoadDriver({ inflight: 4, rateOpsPerSec: null }, ops);
  driver.start();
  driver.markStart();
  await sleep(50);
  const r = driver.markEnd();
  await driver.drain(5000);
  assert.equal(r.sendLag, null);
  assert.ok(r.ops > 0);
});

test('slow operations are kept by the millisecond they were sent in, with their count and the slowest', async () => {
  let n = 0;
  const slowSentAt: number[] = [];
  const ops: Operations<number> = {
    // Every third operation takes 30 ms (≥ SLOW_MS); the others resolve on the next turn.
    issue: (slot) => new Promise((resolve) => {
      if (++n % 3 !== 0) { setImmediate(() => resolve(slot)); return; }
      slowSentAt.push(performance.timeOrigin + performance.now());
      setTimeout(() => resolve(slot), 30);
    }),
    isExpected: () => true,
  };
  const driver = new LoadDriver({ inflight: 8, rateOpsPerSec: null }, ops);
  const before = performance.timeOrigin + performance.now();
  driver.start();
  driver.markStart();
  await sleep(200);
  const r = driver.markEnd();
  await driver.drain(5000);
  const slowOps = r.slow.reduce((s, b) => s + b[1], 0);
  assert.ok(slowOps > 0 && slowOps < r.ops, 'some counted operations were slow, not all');
  assert.ok(r.slow.every(([at, count, max], i) => at > before - 1 && count >= 1 && max >= SLOW_MS && (i === 0 || at > r.slow[i - 1]![0])));
  assert.equal(r.latency.count, r.ops);
  // Each bucket is a millisecond in which a slow operation was SENT (not when it completed, 30 ms later).
  for (const [at] of r.slow) assert.ok(slowSentAt.some((s) => s >= at - 0.01 && s < at + 1.01), `bucket ${at} matches a send time`);
});
