/**
 * Tests of retention (src/log/retention.ts): table-driven plans (including the blocked case and
 * the boundaries of both rules), a fast-check property that no plan deletes a segment holding a
 * decree ≥ membersLowDecree or above the oldest kept checkpoint (against a naive reference for
 * everything else), and the executor over SimFs (durable deletes; a crash part-way leaves a
 * contiguous run of segments).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AssertionFailure } from '../src/core/assert.js';
import { checkpointFileName } from '../src/log/checkpoint.js';
import type { FileLayer } from '../src/log/file-layer.js';
import {
  type RetentionInput,
  type RetentionPlan,
  type RetentionSegment,
  executeRetention,
  planRetention,
  retentionBlockedError,
} from '../src/log/retention.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';

const seg = (
  segment: number,
  firstDecree: number,
  lastDecree: number,
  bytes = 100,
): RetentionSegment => ({
  segment,
  firstDecree,
  lastDecree,
  bytes,
});

/** s1..s4: decrees 1–50, 51–120, 121–210, 211–320 (s4 is the active segment). */
const FOUR = [seg(1, 1, 50), seg(2, 51, 120), seg(3, 121, 210), seg(4, 211, 320)];

interface Case {
  readonly name: string;
  readonly input: RetentionInput;
  readonly deleteSegments: number[];
  readonly deleteCheckpoints: number[];
  readonly blockedHeld?: number[];
  readonly over?: boolean;
}

const base = { keepCheckpoints: 2, membersLowDecree: 1000, maxLogBytes: 1_000_000 };

const CASES: Case[] = [
  {
    name: 'no checkpoint: every segment is kept',
    input: { ...base, segments: FOUR, checkpointDecrees: [] },
    deleteSegments: [],
    deleteCheckpoints: [],
  },
  {
    name: 'keep the newest K checkpoints and the segments above the oldest kept one',
    input: { ...base, segments: FOUR, checkpointDecrees: [100, 200, 300] },
    deleteSegments: [1, 2],
    deleteCheckpoints: [100],
  },
  {
    name: 'a segment ending exactly at the oldest kept checkpoint may go',
    input: { ...base, segments: FOUR, checkpointDecrees: [120, 300] },
    deleteSegments: [1, 2],
    deleteCheckpoints: [],
  },
  {
    name: 'a segment holding one decree above the oldest kept checkpoint stays',
    input: { ...base, segments: FOUR, checkpointDecrees: [119, 300] },
    deleteSegments: [1],
    deleteCheckpoints: [],
  },
  {
    name: 'a lagging member keeps the segments from its decree on',
    input: { ...base, segments: FOUR, checkpointDecrees: [100, 200, 300], membersLowDecree: 60 },
    deleteSegments: [1],
    deleteCheckpoints: [100],
  },
  {
    name: "membersLowDecree equal to a segment's last decree keeps that segment",
    input: { ...base, segments: FOUR, checkpointDecrees: [250, 300], membersLowDecree: 120 },
    deleteSegments: [1],
    deleteCheckpoints: [],
  },
  {
    name: 'membersLowDecree 0 (a member not heard from) keeps everything',
    input: { ...base, segments: FOUR, checkpointDecrees: [300, 310], membersLowDecree: 0 },
    deleteSegments: [],
    deleteCheckpoints: [],
  },
  {
    name: 'blocked: over maxLogBytes because a member still needs old segments',
    input: {
      ...base,
      segments: FOUR,
      checkpointDecrees: [250, 300],
      membersLowDecree: 60,
      maxLogBytes: 250,
    },
    deleteSegments: [1],
    deleteCheckpoints: [],
    blockedHeld: [2, 3],
    over: true,
  },
  {
    name: 'over maxLogBytes for want of a checkpoint is not blocked (a checkpoint frees space)',
    input: { ...base, segments: FOUR, checkpointDecrees: [10], maxLogBytes: 250 },
    deleteSegments: [],
    deleteCheckpoints: [],
    over: true,
  },
  {
    name: 'within maxLogBytes the member rule holds segments without blocking',
    input: {
      ...base,
      segments: FOUR,
      checkpointDecrees: [250, 300],
      membersLowDecree: 60,
      maxLogBytes: 300,
    },
    deleteSegments: [1],
    deleteCheckpoints: [],
  },
  {
    name: 'the newest (active) segment is never deleted, even when a checkpoint covers it',
    input: { ...base, segments: FOUR, checkpointDecrees: [400, 500] },
    deleteSegments: [1, 2, 3],
    deleteCheckpoints: [],
  },
  {
    name: 'segments holding no decree are deleted only inside the prefix',
    input: {
      ...base,
      segments: [seg(1, 1, 50), seg(2, 51, 50), seg(3, 51, 90), seg(4, 91, 90), seg(5, 91, 200)],
      checkpointDecrees: [60, 95],
    },
    deleteSegments: [1, 2],
    deleteCheckpoints: [],
  },
  {
    name: 'overlapping ranges (a decree re-accepted later): only a prefix is deleted',
    input: {
      ...base,
      segments: [seg(1, 1, 100), seg(2, 50, 60), seg(3, 101, 200)],
      checkpointDecrees: [80],
    },
    deleteSegments: [],
    deleteCheckpoints: [],
  },
  {
    name: 'unsorted input and duplicate checkpoint decrees',
    input: {
      ...base,
      segments: [FOUR[3]!, FOUR[0]!, FOUR[2]!, FOUR[1]!],
      checkpointDecrees: [300, 100, 300, 200],
    },
    deleteSegments: [1, 2],
    deleteCheckpoints: [100],
  },
  {
    name: 'K larger than the number of checkpoints keeps them all',
    input: { ...base, segments: FOUR, checkpointDecrees: [100, 200], keepCheckpoints: 4 },
    deleteSegments: [1],
    deleteCheckpoints: [],
  },
  {
    name: 'no segments at all',
    input: { ...base, segments: [], checkpointDecrees: [100, 200, 300] },
    deleteSegments: [],
    deleteCheckpoints: [100],
  },
];

describe('planRetention, table-driven', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const plan = planRetention(c.input);
      assert.deepEqual(plan.deleteSegments, c.deleteSegments);
      assert.deepEqual(plan.deleteCheckpoints, c.deleteCheckpoints);
      assert.equal(plan.overMaxLogBytes, c.over ?? false);
      assert.deepEqual(plan.blocked?.heldSegments ?? null, c.blockedHeld ?? null);
      checkPlan(c.input, plan);
    });
  }

  test('the blocked report: code, message, held bytes, and its StorageError form', () => {
    const plan = planRetention(CASES.find((c) => c.blockedHeld !== undefined)!.input);
    assert.equal(plan.blocked?.code, 'PAXLINE_RETENTION_BLOCKED');
    assert.equal(plan.blocked?.heldBytes, 200);
    assert.equal(plan.keptLogBytes, 300);
    assert.match(
      plan.blocked!.message,
      /over maxLogBytes 250, because a member still needs decrees from 60/,
    );
    const error = retentionBlockedError(plan.blocked!);
    assert.equal(error.code, 'PAXLINE_RETENTION_BLOCKED');
    assert.match(error.message, /^PAXLINE_RETENTION_BLOCKED: the log holds 300 bytes/);
  });

  test('bad input is an assertion failure', () => {
    const input = { ...base, segments: FOUR, checkpointDecrees: [1] };
    assert.throws(() => planRetention({ ...input, keepCheckpoints: 0 }), AssertionFailure);
    assert.throws(
      () => planRetention({ ...input, segments: [seg(1, 1, 2), seg(1, 3, 4)] }),
      AssertionFailure,
    );
    assert.throws(() => planRetention({ ...input, membersLowDecree: -1 }), AssertionFailure);
  });
});

/** Invariants every plan must satisfy, checked against a naive per-rule reading of the input. */
function checkPlan(input: RetentionInput, plan: RetentionPlan): void {
  const sorted = [...input.segments].sort((a, b) => a.segment - b.segment);
  const distinct = [...new Set(input.checkpointDecrees)].sort((a, b) => a - b);
  const kept = distinct.slice(-input.keepCheckpoints);
  const oldestKept = kept[0] ?? null;
  assert.deepEqual(plan.keepCheckpoints, kept);
  assert.deepEqual(plan.deleteCheckpoints, distinct.slice(0, distinct.length - kept.length));
  assert.equal(plan.oldestKeptCheckpoint, oldestKept);
  // The deleted segments are a prefix; the kept ones the rest.
  const numbers = sorted.map((s) => s.segment);
  assert.deepEqual(plan.deleteSegments, numbers.slice(0, plan.deleteSegments.length));
  assert.deepEqual(plan.keepSegments, numbers.slice(plan.deleteSegments.length));
  const holds = (s: RetentionSegment): boolean => s.lastDecree >= s.firstDecree;
  const byCheckpoint = (s: RetentionSegment): boolean =>
    oldestKept === null || (holds(s) && s.lastDecree > oldestKept);
  const byMembers = (s: RetentionSegment): boolean =>
    holds(s) && s.lastDecree >= input.membersLowDecree;
  // THE safety property: nothing deleted holds a decree a rule needs; the newest always stays.
  for (const s of sorted.slice(0, plan.deleteSegments.length)) {
    assert.ok(
      !byCheckpoint(s),
      `segment ${s.segment} holds a decree above the oldest kept checkpoint`,
    );
    assert.ok(!byMembers(s), `segment ${s.segment} holds a decree a member still needs`);
  }
  if (sorted.length > 0) assert.ok(plan.keepSegments.includes(sorted.at(-1)!.segment));
  // Maximal: the prefix stops only at a needed segment or the newest one.
  const stop = sorted[plan.deleteSegments.length];
  if (stop !== undefined && plan.deleteSegments.length < sorted.length - 1) {
    assert.ok(byCheckpoint(stop) || byMembers(stop), 'the plan keeps more than it must');
  }
  const keptBytes = sorted.slice(plan.deleteSegments.length).reduce((n, s) => n + s.bytes, 0);
  assert.equal(plan.keptLogBytes, keptBytes);
  assert.equal(plan.overMaxLogBytes, keptBytes > input.maxLogBytes);
  // Blocked exactly when over budget and the member rule keeps a segment rule 1 would drop.
  let prefixByCheckpoint = sorted.findIndex(byCheckpoint);
  if (prefixByCheckpoint < 0) prefixByCheckpoint = sorted.length;
  prefixByCheckpoint = Math.min(prefixByCheckpoint, Math.max(0, sorted.length - 1));
  const held = numbers.slice(plan.deleteSegments.length, prefixByCheckpoint);
  assert.deepEqual(plan.blocked?.heldSegments ?? [], plan.overMaxLogBytes ? held : []);
  assert.equal(plan.blocked !== null, plan.overMaxLogBytes && held.length > 0);
}

const segmentsArb = fc
  .array(
    fc.record({
      gap: fc.integer({ min: 1, max: 3 }),
      first: fc.integer({ min: 0, max: 300 }),
      span: fc.integer({ min: -1, max: 60 }),
      bytes: fc.integer({ min: 0, max: 1000 }),
    }),
    { maxLength: 12 },
  )
  .map((raw) => {
    // Mostly ascending, contiguous-ish ranges with overlaps, empty segments and gaps mixed in.
    let number = 0;
    let next = 1;
    return raw.map((r, i) => {
      number += r.gap;
      const first = i % 4 === 3 ? r.first : next;
      const last = first + r.span;
      next = Math.max(next, last + 1);
      return seg(number, first, last, r.bytes);
    });
  });

const inputArb: fc.Arbitrary<RetentionInput> = fc.record({
  segments: segmentsArb,
  checkpointDecrees: fc.array(fc.integer({ min: 0, max: 500 }), { maxLength: 8 }),
  keepCheckpoints: fc.integer({ min: 1, max: 5 }),
  membersLowDecree: fc.integer({ min: 0, max: 600 }),
  maxLogBytes: fc.integer({ min: 0, max: 8000 }),
});

test('property: no plan deletes a needed segment, and every plan matches the naive rules', () => {
  fc.assert(
    fc.property(inputArb, (input) => {
      checkPlan(input, planRetention(input));
    }),
    { numRuns: 5000, seed: 11 },
  );
});

describe('executeRetention over SimFs', () => {
  const LOG = '/replica/log';
  const CKPT = '/replica/ckpt';
  const segmentPath = (n: number): string => `${LOG}/seg-${String(n).padStart(8, '0')}.log`;

  function populate(
    fs: SimFs,
    segments: readonly RetentionSegment[],
    checkpoints: readonly number[],
  ): void {
    fs.mkdirp(LOG);
    fs.mkdirp(CKPT);
    for (const s of segments) fs.close(fs.open(segmentPath(s.segment), { create: true }));
    for (const d of checkpoints)
      fs.close(fs.open(`${CKPT}/${checkpointFileName(d)}`, { create: true }));
    fs.fsyncDir(LOG);
    fs.fsyncDir(CKPT);
  }

  test('deletes what the plan allows, durably; files already gone are reported, not errors', () => {
    const fs = new SimFs();
    const input = { ...base, segments: FOUR, checkpointDecrees: [100, 200, 300] };
    populate(fs, FOUR, input.checkpointDecrees);
    fs.unlink(segmentPath(2));
    const plan = planRetention(input);
    const targets = { checkpointDir: CKPT, segmentPath };
    const result = executeRetention(fs, plan, targets);
    assert.deepEqual(result.deletedSegments, [1, 2]);
    assert.deepEqual(result.deletedCheckpoints, [100]);
    assert.deepEqual(result.alreadyGone, [segmentPath(2)]);
    fs.crash(new Random(1)); // the directory syncs made the unlinks durable
    assert.deepEqual(fs.readdir(LOG), ['seg-00000003.log', 'seg-00000004.log']);
    assert.deepEqual(fs.readdir(CKPT), [checkpointFileName(200), checkpointFileName(300)]);
  });

  test('disk errors are coded; a plan that would delete a kept segment is refused', () => {
    const fs = new SimFs();
    const plan = planRetention({ ...base, segments: FOUR, checkpointDecrees: [300, 310] });
    const bad = { ...plan, deleteSegments: [1, 4] };
    assert.throws(
      () => executeRetention(fs, bad, { checkpointDir: CKPT, segmentPath }),
      AssertionFailure,
    );
    const failing: FileLayer = Object.assign(Object.create(fs) as SimFs, {
      unlink: (): void => {
        throw Object.assign(new Error('EIO: i/o error, unlink'), {
          code: 'EIO',
          syscall: 'unlink',
        });
      },
    });
    assert.throws(() => executeRetention(failing, plan, { checkpointDir: CKPT, segmentPath }), {
      code: 'PAXLINE_WRITE_FAILED',
    });
  });

  test('a crash part-way through leaves a contiguous run of segments (100 seeds)', () => {
    const segments = Array.from({ length: 10 }, (_, i) => seg(i + 1, i * 10 + 1, i * 10 + 10));
    const input = { ...base, segments, checkpointDecrees: [85, 90], keepCheckpoints: 1 };
    const plan = planRetention(input);
    assert.deepEqual(plan.deleteSegments, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let seed = 1; seed <= 100; seed++) {
      const rng = new Random(seed);
      const fs = new SimFs();
      populate(fs, segments, input.checkpointDecrees);
      // Power fails after a random number of unlinks / directory syncs.
      let budget = rng.int(12);
      const cutting: FileLayer = Object.assign(Object.create(fs) as SimFs, {
        unlink: (path: string): void => {
          if (budget-- <= 0) throw new Error('power cut');
          fs.unlink(path);
        },
        fsyncDir: (dir: string): void => {
          if (budget-- <= 0) throw new Error('power cut');
          fs.fsyncDir(dir);
        },
      });
      try {
        executeRetention(cutting, plan, { checkpointDir: CKPT, segmentPath });
      } catch (error) {
        assert.match(String(error), /power cut/);
      }
      fs.crash(rng);
      const left = fs.readdir(LOG).map((name) => Number(name.slice(4, 12)));
      const from = left[0]!;
      assert.deepEqual(
        left,
        Array.from({ length: 11 - from }, (_, i) => from + i),
        `seed ${seed}`,
      );
    }
  });
});
