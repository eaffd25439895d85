/**
 * Unit and property tests of the pure core's building blocks: purity of the built core, options
 * validation, ballots, the record codec, the event queue, message preconditions, and a single
 * replica's happy path.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { decodeRecord, encodeRecord } from '../src/codec/records.js';
import { BALLOT_ID_SPAN, ballotCounter, ballotReplica, makeBallot } from '../src/core/ballot.js';
import { CoreOptionsError, resolveCoreOptions } from '../src/core/options.js';
import { Replica } from '../src/core/replica.js';
import type { DecreeValue, LogRecord, Message } from '../src/core/types.js';
import { EventQueue } from '../src/sim/event-queue.js';

const coreDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'core');

test('the built core imports nothing but itself and uses no clock or randomness', () => {
  const files = readdirSync(coreDir).filter((f) => f.endsWith('.js'));
  assert.ok(files.length >= 5, 'core files found');
  for (const f of files) {
    const src = readFileSync(join(coreDir, f), 'utf8');
    const specifiers = [...src.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]/g)]
      .map((m) => m[1] ?? m[2]!);
    for (const s of specifiers) assert.match(s, /^\.\/[a-z-]+\.js$/, `${f} imports ${s}`);
    const code = src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const banned of ['Date', 'Math.random', 'performance', 'setTimeout', 'setInterval', 'process', 'require(']) {
      assert.ok(!code.includes(banned), `${f} uses ${banned}`);
    }
  }
});

test('options: defaults resolve, bad fields are named', () => {
  const base = { replicaId: 0, members: [0, 1, 2], random: () => 0 };
  const o = resolveCoreOptions(base);
  assert.ok(o.checkQuorumTicks < o.newLeaderGracePeriodTicks);
  assert.ok(o.newLeaderGracePeriodTicks <= o.electionTimeoutTicksMin);
  assert.ok(o.pipelineDepth >= 32);
  assert.ok(Object.isFrozen(o));
  const cases: [object, string][] = [
    [{ members: [] }, 'members'],
    [{ members: [1, 2] }, 'members'],
    [{ members: [0, 0, 1] }, 'members'],
    [{ pipelineDepth: 0 }, 'pipelineDepth'],
    [{ batchBytesMax: 1.5 }, 'batchBytesMax'],
    [{ checkQuorumTicks: 9 }, 'checkQuorumTicks'],
    [{ newLeaderGracePeriodTicks: 11 }, 'newLeaderGracePeriodTicks'],
    [{ electionTimeoutTicksMax: 5 }, 'electionTimeoutTicksMax'],
    [{ replicaId: 5000, members: [5000] }, 'replicaId'],
    [{ makeBatch: 5 }, 'makeBatch'],
  ];
  for (const [patch, field] of cases) {
    assert.throws(() => resolveCoreOptions({ ...base, ...patch }), (e: unknown) =>
      e instanceof CoreOptionsError && e.field === field && e.code === 'PAXLINE_BAD_OPTION');
  }
});

test('ballots order like (counter, replicaId) pairs', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 0, max: BALLOT_ID_SPAN - 1 }),
    fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 0, max: BALLOT_ID_SPAN - 1 }),
    (c1, r1, c2, r2) => {
      const a = makeBallot(c1, r1);
      const b = makeBallot(c2, r2);
      assert.equal(ballotCounter(a), c1);
      assert.equal(ballotReplica(a), r1);
      const lex = c1 !== c2 ? Math.sign(c1 - c2) : Math.sign(r1 - r2);
      assert.equal(Math.sign(a - b), lex);
    }), { numRuns: 2000, seed: 42 });
});

const valueArb: fc.Arbitrary<DecreeValue> = fc.oneof(
  fc.constant({ kind: 'noop' } as const),
  fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }).map((commands) => ({ kind: 'batch' as const, commands })),
  fc.array(fc.integer({ min: 0, max: 1023 }), { minLength: 1, maxLength: 7 }).map((members) => ({ kind: 'config' as const, members })),
);
const safeInt = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER });
const recordArb: fc.Arbitrary<LogRecord> = fc.oneof(
  safeInt.map((ballot) => ({ type: 'promise' as const, ballot })),
  safeInt.map((decree) => ({ type: 'commit' as const, decree })),
  fc.record({ type: fc.constantFrom('accept' as const, 'learned' as const), decree: safeInt, ballot: safeInt, value: valueArb }),
);

test('record codec round-trips every record', () => {
  fc.assert(fc.property(recordArb, (r) => {
    assert.deepEqual(decodeRecord(encodeRecord(r)), structuredClone(r));
  }), { numRuns: 3000, seed: 7 });
});

test('event queue pops by time, then by insertion order', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), (times) => {
    const q = new EventQueue<number>();
    times.forEach((t, i) => q.push(t, i));
    const expected = times.map((t, i) => [t, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (const [t, i] of expected) assert.deepEqual(q.pop(), { time: t, item: i });
    assert.equal(q.size, 0);
  }), { numRuns: 500, seed: 3 });
});

test('malformed or impossible messages are rejected and counted, never trusted', () => {
  const r = new Replica({ replicaId: 0, members: [0, 1, 2], random: () => 0, verify: true });
  const env = { from: 1, to: 0, config: 1 };
  const bad: unknown[] = [
    { ...env, type: 'accept', ballot: 2048, decree: 0, value: { kind: 'noop' }, committed: 0 },
    { ...env, type: 'accept', ballot: 2048, decree: 3, value: { kind: 'noop' }, committed: 3 },
    { ...env, type: 'accept', ballot: 7, decree: 3, value: { kind: 'noop' }, committed: 0 },
    { ...env, type: 'accept', ballot: 2048, decree: 3, value: { kind: 'batch', commands: ['x'] }, committed: 0 },
    { ...env, from: 9, type: 'heartbeat', ballot: 2048, committed: 0 },
    { ...env, to: 2, type: 'heartbeat', ballot: 2048, committed: 0 },
    { ...env, type: 'prepareAccepted', ballot: 2048, fromDecree: 5, reply: 1, chunk: 0, chunks: 1,
      entries: [{ decree: 4, ballot: 2048, value: { kind: 'noop' } }] },
    { ...env, type: 'fetchReply', committed: 1, entries: [{ decree: 2, ballot: 2048, value: { kind: 'noop' } }] },
    { ...env, type: 'nack', ballot: 3000, promised: 2048 },
    { ...env, type: 'bogus' },
  ];
  for (const m of bad) r.receive(m as Message);
  assert.equal(r.stats.messagesRejected, bad.length);
  r.receive({ ...env, config: 2, type: 'heartbeat', ballot: 2049, committed: 0, floor: 0 });
  assert.equal(r.stats.messagesDroppedConfig, 1);
  const ready = r.takeReady();
  assert.equal(ready.send.length + ready.persist.length, 0);
});

/**
 * A one-member replica driven by hand to primary: `pump` persists whatever it asks and collects
 * what it executes (the commands of every batch decree, and how many such decrees there were).
 */
function singlePrimary(
  makeBatch?: (commands: Uint8Array[]) => DecreeValue,
): { r: Replica; pump: () => void; executed: string[]; decrees: () => number; values: DecreeValue[] } {
  const r = new Replica({ replicaId: 0, members: [0], random: () => 0, verify: true, catchUpBeforePrepare: false, ...(makeBatch ? { makeBatch } : {}) });
  const values: DecreeValue[] = [];
  const executed: string[] = [];
  let decrees = 0;
  const dec = new TextDecoder();
  const pump = (): void => {
    for (let i = 0; i < 10; i++) {
      const ready = r.takeReady();
      for (const e of ready.execute) {
        if (e.value.kind !== 'batch') continue;
        values.push(e.value);
        decrees++;
        executed.push(...e.value.commands.map((c) => dec.decode(c)));
      }
      const last = ready.persist.at(-1);
      if (!last) return;
      r.persisted(last.seq);
    }
  };
  for (let t = 0; t < 12 && r.status().role !== 'primary'; t++) {
    r.tick();
    pump();
  }
  assert.equal(r.status().role, 'primary');
  return { r, pump, executed, decrees: () => decrees, values };
}

test('a single replica elects itself, commits and executes in order', () => {
  const { r, pump, executed } = singlePrimary();
  for (const c of ['a', 'b', 'c']) assert.deepEqual(r.propose(new TextEncoder().encode(c)), { ok: true });
  pump();
  assert.deepEqual(executed, ['a', 'b', 'c']);
  assert.equal(r.status().committed, 3);
});

test('enqueue + proposeQueued cut one batch where propose cuts a decree per command', () => {
  const run = (useEnqueue: boolean): { decrees: number; commands: string[] } => {
    const { r, pump, executed, decrees } = singlePrimary();
    for (const c of ['a', 'b', 'c', 'd']) {
      const res = useEnqueue ? r.enqueue(new TextEncoder().encode(c)) : r.propose(new TextEncoder().encode(c));
      assert.deepEqual(res, { ok: true });
    }
    if (useEnqueue) r.proposeQueued();
    pump();
    return { decrees: decrees(), commands: executed };
  };
  assert.deepEqual(run(false), { decrees: 4, commands: ['a', 'b', 'c', 'd'] });
  assert.deepEqual(run(true), { decrees: 1, commands: ['a', 'b', 'c', 'd'] });
});

test('makeBatch: the primary holds each batch it cuts as makeBatch made it', () => {
  const made: DecreeValue[] = [];
  const { r, pump, executed, values } = singlePrimary((commands) => {
    const v = { kind: 'batch' as const, commands: [...commands], mark: made.length };
    made.push(v);
    return v;
  });
  for (const c of ['a', 'b', 'c']) assert.deepEqual(r.enqueue(new TextEncoder().encode(c)), { ok: true });
  r.proposeQueued();
  pump();
  assert.deepEqual(executed, ['a', 'b', 'c']);
  assert.equal(made.length, 1);
  assert.equal(values[0], made[0]); // the very object, not a copy
});
