/**
 * `paxline sim`: runs the deterministic simulator over many seeds (or replays one) and prints a
 * summary. Exits non-zero on any violation, naming the seed and printing a short trace.
 */
import type { SimMutation } from '../sim/swarm.js';
import { runSeed, summarize } from '../sim/run.js';
import type { SeedResult } from '../sim/world.js';
import { UsageError, parseFlags } from './flags.js';

const MUTATIONS: readonly SimMutation[] = [
  'ackBeforePersist', 'skipPhase1', 'adoptOneLog', 'noNoopFill', 'executeLowerBallotCopy',
  'forgetPromiseOnRestart', 'wipedDiskRejoin',
];

export function simCommand(argv: readonly string[]): number {
  const f = parseFlags(argv, {
    seeds: 'number', seed: 'number', start: 'number', replicas: 'number', json: 'boolean',
    mutation: 'string', verbose: 'boolean', 'all-mutations': 'boolean',
  });
  if (f['all-mutations']) return mutationBattery(f.start ?? 1, f.seeds ?? 1000, f.replicas ?? null);
  const envSeed = process.env['SEED'];
  const single = f.seed ?? (envSeed !== undefined && envSeed !== '' ? Number(envSeed) : undefined);
  if (single !== undefined && !Number.isSafeInteger(single)) throw new UsageError('--seed must be an integer');
  const replicas = f.replicas ?? null;
  if (replicas !== null && replicas !== 3 && replicas !== 5) throw new UsageError('--replicas must be 3 or 5');
  const mutation = (f.mutation ?? null) as SimMutation | null;
  if (mutation !== null && !MUTATIONS.includes(mutation)) {
    throw new UsageError(`--mutation must be one of ${MUTATIONS.join(', ')}`);
  }
  const seeds = single !== undefined ? [single] : range(f.start ?? 1, f.seeds ?? 100);
  console.log(single !== undefined ? `seed ${single}` : `seeds ${seeds[0]}..${seeds.at(-1)}`);
  const started = Date.now();
  const results: SeedResult[] = [];
  for (const seed of seeds) {
    const r = runSeed(seed, replicas, mutation);
    results.push(r);
    if (single !== undefined || f.verbose) {
      console.log(`seed ${seed} replicas ${r.replicas} trace ${r.traceHash} decrees ${r.decreesCommitted} ` +
        `ops ${r.clientOps} elections ${r.elections} violations ${r.violations.length}`);
    }
    if (r.violations.length > 0 && !f.json) printFailure(r);
  }
  const s = summarize(results);
  const out = {
    seeds: s.seeds, violations: s.violations, unchecked: s.unchecked, decreesCommitted: s.decreesCommitted,
    opsChecked: s.opsChecked, clientOps: s.clientOps, elections: s.elections, liveness: s.liveness,
    coverage: s.coverage, failedSeedCount: s.failedSeeds.length, failedSeeds: s.failedSeeds.slice(0, 20),
    mutation,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    ...(single !== undefined ? { traceHash: results[0]!.traceHash } : {}),
  };
  if (f.json) {
    if (s.firstFailure) printFailure(results.find((r) => r.seed === s.firstFailure!.seed)!, true);
    console.log(JSON.stringify(out));
  } else {
    console.log(JSON.stringify(out, null, 2));
  }
  return s.violations > 0 || s.liveness !== 'ok' || s.unchecked > 0 ? 1 : 0;
}

/**
 * Proves the checkers can fail: runs the standard seed range once per deliberate bug and reports,
 * per bug, how many seeds caught it and the first one. Exits non-zero if any bug went uncaught.
 */
function mutationBattery(start: number, count: number, replicas: number | null): number {
  let uncaught = 0;
  for (const mutation of MUTATIONS) {
    const started = Date.now();
    const failed: number[] = [];
    for (const seed of range(start, count)) {
      if (runSeed(seed, replicas, mutation).violations.length > 0) failed.push(seed);
    }
    if (failed.length === 0) uncaught++;
    console.log(JSON.stringify({
      mutation, seeds: count, replicas, caughtBySeeds: failed.length, firstCatchingSeed: failed[0] ?? null,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    }));
  }
  return uncaught > 0 ? 1 : 0;
}

function printFailure(r: SeedResult, toStderr = false): void {
  const log = toStderr ? console.error : console.log;
  log(`VIOLATION in seed ${r.seed} (replay: paxline sim --seed ${r.seed}${r.replicas ? ` --replicas ${r.replicas}` : ''})`);
  for (const v of r.violations.slice(0, 5)) log(`  ${v.split('\n').slice(0, 8).join('\n  ')}`);
  log('  trace (last events):');
  for (const t of r.trace.slice(-25)) log(`    ${t}`);
}

function range(start: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + i);
}
