/**
 * Smoke test of the log benchmark, so it never rots: a tiny run must complete and report every
 * figure. No timing thresholds here — those belong to the benchmark itself.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLogBench } from '../bench/micro/log.js';

test('bench-log runs end to end on a tiny workload and reports every figure', async () => {
  const r = await runLogBench({ phaseMs: 60, rounds: 1, commandsMs: 150, recoveryBytes: 4 * 1024 * 1024 });
  for (const key of ['groupCommitMBps', 'rawFloorMBps', 'commandsPerSec', 'recoveryMBps', 'fsyncsPerSec'] as const) {
    assert.ok(Number.isFinite(r[key]) && r[key] > 0, `${key} = ${r[key]}`);
  }
  assert.ok(r.cache === 'cold' || r.cache === 'warm');
  assert.notEqual(r.filesystem, 'tmpfs');
});
