/**
 * Runs simulator seeds and sums them up. While a seed runs, the ambient sources of time and
 * randomness (Date, Math.random, performance, setTimeout, process.hrtime) are replaced by
 * functions that throw: a core or checker that reaches for them fails the run loudly.
 */
import { type Coverage, type SeedResult, World } from './world.js';
import type { SimMutation } from './swarm.js';

const GUARDED = ['Date', 'performance', 'setTimeout'] as const;

/** A stand-in that throws when called, constructed, or when any property is read from it. */
function forbidden(name: string): () => never {
  const fail = (): never => {
    throw new Error(`simulator purity: ${name} used while a seed runs`);
  };
  return new Proxy(fail, { get: fail, apply: fail, construct: fail });
}

/** Runs `fn` with the ambient clock and randomness disabled. */
export function withPurityGuard<T>(fn: () => T): T {
  const g = globalThis as Record<string, unknown>;
  const saved = GUARDED.map((k) => Object.getOwnPropertyDescriptor(g, k));
  const savedRandom = Math.random;
  const savedHrtime = process.hrtime;
  for (const k of GUARDED) Object.defineProperty(g, k, { value: forbidden(k), configurable: true, writable: true });
  Math.random = forbidden('Math.random');
  process.hrtime = Object.assign(forbidden('process.hrtime'), { bigint: forbidden('process.hrtime.bigint') });
  try {
    return fn();
  } finally {
    GUARDED.forEach((k, i) => Object.defineProperty(g, k, saved[i]!));
    Math.random = savedRandom;
    process.hrtime = savedHrtime;
  }
}

export function runSeed(seed: number, replicas: number | null, mutation: SimMutation | null = null): SeedResult {
  return withPurityGuard(() => {
    const world = new World({ seed, replicas, mutation });
    try {
      return world.run();
    } catch (err) {
      // An assertion in a core or the simulator is a violation of this seed, not a crash of the run.
      const e = err as Error;
      return {
        seed, replicas: world.params.replicas, violations: [`exception: ${e.stack ?? e.message}`],
        unchecked: 0, decreesCommitted: 0, opsChecked: 0, clientOps: 0, elections: 0,
        livenessOk: false, coverage: emptyCoverage(), traceHash: '-', trace: world.traceTail(),
      };
    }
  });
}

export function emptyCoverage(): Coverage {
  return {
    primaryCrashes: 0, phase1WithHoles: 0, noopsFilled: 0, staleCopiesRefetched: 0, tornWrites: 0,
    oneWayPartitions: 0, crashesAfterPromise: 0, crashesBeforeAck: 0, crashesDuringReproposal: 0,
    crashesWithWindow: 0, bitFlips: 0, corruptionsDetected: 0, repairsCompleted: 0, restarts: 0, fetches: 0, stickyRefusals: 0, logServedFetches: 0, compactionAborts: 0,
  };
}

export interface SimSummary {
  seeds: number;
  violations: number;
  unchecked: number;
  decreesCommitted: number;
  opsChecked: number;
  clientOps: number;
  elections: number;
  liveness: 'ok' | 'failed';
  coverage: Coverage;
  failedSeeds: number[];
  firstFailure: { seed: number; violations: string[]; trace: string[] } | null;
}

export function summarize(results: readonly SeedResult[]): SimSummary {
  const coverage = emptyCoverage();
  const sum: SimSummary = {
    seeds: results.length, violations: 0, unchecked: 0, decreesCommitted: 0, opsChecked: 0,
    clientOps: 0, elections: 0, liveness: 'ok', coverage, failedSeeds: [], firstFailure: null,
  };
  for (const r of results) {
    sum.violations += r.violations.length;
    sum.unchecked += r.unchecked;
    sum.decreesCommitted += r.decreesCommitted;
    sum.opsChecked += r.opsChecked;
    sum.clientOps += r.clientOps;
    sum.elections += r.elections;
    if (!r.livenessOk) sum.liveness = 'failed';
    for (const k of Object.keys(coverage) as (keyof Coverage)[]) coverage[k] += r.coverage[k];
    if (r.violations.length > 0) {
      sum.failedSeeds.push(r.seed);
      sum.firstFailure ??= { seed: r.seed, violations: r.violations, trace: r.trace };
    }
  }
  return sum;
}
