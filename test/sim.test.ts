/**
 * The deterministic simulator as a test: a fixed set of seeds over 3- and 5-replica clusters with
 * every checker on, replay determinism across processes, the purity guard, and proof that the
 * checkers catch each deliberate bug (a seed from the standard 1,000-seed run that catches it; the
 * whole battery is `paxline sim --all-mutations --seeds 1000`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runSeed, summarize, withPurityGuard } from '../src/sim/run.js';
import type { SimMutation } from '../src/sim/swarm.js';

const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
const SEEDS_PER_SIZE = 100;

for (const replicas of [3, 5]) {
  test(`simulator: ${SEEDS_PER_SIZE} seeds × ${replicas} replicas, no violations`, () => {
    const results = [];
    for (let seed = 1; seed <= SEEDS_PER_SIZE; seed++) {
      const r = runSeed(seed, replicas);
      if (r.violations.length > 0) {
        assert.fail(`seed ${seed}: ${r.violations.slice(0, 3).join('\n')}\n${r.trace.slice(-20).join('\n')}`);
      }
      results.push(r);
    }
    const s = summarize(results);
    assert.equal(s.violations, 0);
    assert.equal(s.unchecked, 0);
    assert.equal(s.liveness, 'ok');
    assert.ok(s.clientOps / s.seeds >= 500, `ops per seed ${s.clientOps / s.seeds}`);
    assert.ok(s.elections / s.seeds >= 3, `elections per seed ${s.elections / s.seeds}`);
    assert.ok(s.coverage.primaryCrashes > 0 && s.coverage.oneWayPartitions > 0 && s.coverage.tornWrites > 0);
    assert.ok(s.coverage.staleCopiesRefetched > 0);
  });
}

test('a seed replays exactly, in this process and in two others', () => {
  const inProcess = [runSeed(11, 3).traceHash, runSeed(11, 3).traceHash];
  assert.equal(inProcess[0], inProcess[1]);
  const hashes = [1, 2].map(() => {
    const out = execFileSync(process.execPath, [cli, 'sim', '--seed', '11', '--replicas', '3', '--json'], { encoding: 'utf8' });
    assert.match(out.split('\n')[0]!, /^seed 11$/, 'the seed is printed first');
    return (JSON.parse(out.trim().split('\n').at(-1)!) as { traceHash: string }).traceHash;
  });
  assert.deepEqual(hashes, [inProcess[0], inProcess[0]]);
  assert.notEqual(runSeed(12, 3).traceHash, inProcess[0]);
});

test('while a seed runs, ambient time and randomness throw', () => {
  withPurityGuard(() => {
    assert.throws(() => Date.now(), /purity/);
    assert.throws(() => Math.random(), /purity/);
    assert.throws(() => process.hrtime(), /purity/);
    assert.throws(() => performance.now(), /purity/);
  });
  assert.ok(Date.now() > 0 && Math.random() >= 0);
});

// First catching seed of each deliberate bug in `paxline sim --all-mutations --seeds 1000
// --replicas 3` (seeds 1..1000, the standard run).
const CATCHING_SEEDS: Record<SimMutation, number> = {
  // First catching seed of the standard battery (docs/evidence/mutation-battery-3-replicas.jsonl,
  // re-run after compaction joined the swarm), and how many of its 1,000 seeds caught the bug.
  ackBeforePersist: 1, // 1000 of 1000
  skipPhase1: 1, // 690 of 1000
  adoptOneLog: 15, // 34 of 1000
  noNoopFill: 44, // 10 of 1000
  executeLowerBallotCopy: 8, // 83 of 1000
  forgetPromiseOnRestart: 7, // 10 of 1000
  wipedDiskRejoin: 7, // 117 of 1000
};

for (const [mutation, seed] of Object.entries(CATCHING_SEEDS) as [SimMutation, number][]) {
  test(`the checkers catch the deliberate bug ${mutation} (seed ${seed})`, () => {
    const bad = runSeed(seed, 3, mutation);
    assert.ok(bad.violations.length > 0, `${mutation} went unnoticed in seed ${seed}`);
    const good = runSeed(seed, 3);
    assert.deepEqual(good.violations, [], 'the same seed passes without the bug');
  });
}
