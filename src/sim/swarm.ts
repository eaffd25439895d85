/**
 * Swarm testing: every seed draws its own world — fault rates, cluster size, batching and pipeline
 * settings, protocol knobs — so that 1,000 seeds explore 1,000 different mixes instead of one mix
 * 1,000 times. All times are simulated microseconds.
 */
import type { CoreMutation } from '../core/options.js';
import { Random } from '../util/random.js';

/** Deliberate bugs: the core's, plus one that lives in the simulated operator. */
export type SimMutation = CoreMutation | 'wipedDiskRejoin';

export const TICK_US = 10_000;
export const ELECTION_TICKS_MIN = 10;
export const ELECTION_TICKS_MAX = 20;
export const CLOCK_RATE_MIN = 0.8;
export const CLOCK_RATE_MAX = 1.2;
/** The longest election timeout in simulated time: the slowest clock's maximum. */
export const ELECTION_US_MAX = Math.ceil((ELECTION_TICKS_MAX * TICK_US) / CLOCK_RATE_MIN);

export interface SwarmParams {
  readonly replicas: number;
  readonly clockRates: readonly number[];
  readonly lossRate: number;
  readonly dupRate: number;
  readonly delayUsMax: number;
  readonly longDelayRate: number;
  /** Up to 3× the election timeout. */
  readonly longDelayUsMax: number;
  readonly fsyncUsMax: number;
  readonly slowFsyncRate: number;
  /** Up to 2× the election timeout. */
  readonly slowFsyncUsMax: number;
  /** Mean time between fault events. */
  readonly faultEveryUs: number;
  readonly faultWeights: Readonly<Record<FaultKind, number>>;
  readonly downUsMax: number;
  readonly crashAfterPromiseRate: number;
  readonly crashBeforeAckRate: number;
  readonly crashDuringReproposalRate: number;
  /** Crash a primary right after it proposes while ≥ 2 decrees are in flight (makes holes). */
  readonly crashWithWindowRate: number;
  /** Chance, per crash, of one flipped bit in synced log bytes (repaired from peers). */
  readonly bitFlipRate: number;
  readonly pipelineDepth: number;
  readonly batchCountMax: number;
  readonly batchBytesMax: number;
  readonly messageEntriesMax: number;
  /** Core retainDecrees: small values make compaction, log-served catch-up and phase-1 aborts happen. */
  readonly retainDecrees: number;
  readonly catchUpBeforePrepare: boolean;
  readonly preVote: boolean;
  readonly clients: number;
  readonly keys: number;
  readonly getRatio: number;
  readonly casRatio: number;
  readonly thinkUsMax: number;
  readonly clientTimeoutUs: number;
  readonly chaosUs: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export type FaultKind =
  | 'crashRandom'
  | 'crashPrimary'
  | 'restart'
  | 'partition'
  | 'oneWay'
  | 'isolatePrimary'
  | 'heal';

export function drawSwarm(seed: number, replicas: number | null): SwarmParams {
  const r = new Random(seed ^ 0x5eed5eed);
  const n = replicas ?? r.pick([3, 5]);
  const calm = r.chance(0.15); // some seeds run nearly fault-free, to reach deep pipelines
  const clients = r.range(Math.max(3, n), 9);
  const base: Mutable<Omit<SwarmParams, 'retainDecrees'>> = {
    replicas: n,
    clockRates: Array.from({ length: n }, () => CLOCK_RATE_MIN + r.next() * (CLOCK_RATE_MAX - CLOCK_RATE_MIN)),
    lossRate: calm ? 0 : r.next() * 0.3,
    dupRate: r.next() * 0.1,
    delayUsMax: r.range(100, 5_000),
    longDelayRate: calm ? 0 : r.next() * 0.05,
    longDelayUsMax: r.range(ELECTION_US_MAX, 3 * ELECTION_US_MAX),
    fsyncUsMax: r.range(100, 3_000),
    slowFsyncRate: calm ? 0 : r.next() * 0.05,
    slowFsyncUsMax: r.range(ELECTION_US_MAX / 2, 2 * ELECTION_US_MAX),
    faultEveryUs: calm ? 3_000_000 : r.range(250_000, 1_200_000),
    faultWeights: {
      crashRandom: r.range(1, 4),
      crashPrimary: r.range(1, 4),
      restart: 4,
      partition: r.range(0, 3),
      oneWay: r.range(1, 3),
      isolatePrimary: r.range(0, 3),
      heal: 3,
    },
    downUsMax: r.range(100_000, 1_500_000),
    crashAfterPromiseRate: r.chance(0.5) ? r.next() * 0.2 : 0,
    crashBeforeAckRate: r.chance(0.5) ? r.next() * 0.01 : 0,
    crashDuringReproposalRate: r.chance(0.5) ? r.next() * 0.1 : 0,
    crashWithWindowRate: r.chance(0.5) ? r.next() * 0.05 : 0,
    bitFlipRate: r.chance(0.4) ? r.next() * 0.6 : 0,
    pipelineDepth: r.pick([1, 2, 4, 8, 32, 64]),
    batchCountMax: r.pick([1, 2, 8, 64]),
    batchBytesMax: r.pick([64, 512, 65536]),
    messageEntriesMax: r.pick([2, 8, 64]),
    catchUpBeforePrepare: r.chance(0.5),
    preVote: r.chance(0.8),
    clients,
    keys: r.range(1, 3),
    getRatio: 0.3 + r.next() * 0.2,
    casRatio: 0.05 + r.next() * 0.15,
    thinkUsMax: 0,
    clientTimeoutUs: r.range(2, 4) * ELECTION_US_MAX,
    chaosUs: r.range(3_000_000, 5_000_000),
  };
  // Think time sized so that a fault-free run makes about `targetOps` operations: enough history
  // to check, without letting calm seeds balloon to thousands of operations.
  const targetOps = r.range(1000, 2000);
  base.thinkUsMax = Math.round((2 * base.chaosUs * base.clients) / targetOps);
  // Drawn last, so that every earlier parameter of a seed is what it was before this knob existed.
  return { ...base, retainDecrees: r.pick([4, 16, 64, 1024]) };
}
