/**
 * The KV state machine and its codec: command/result round trips (property), exactly-once by
 * (clientId, seq) including retried seqs, ackedBelow forgetting, the per-client and client-count
 * bounds, a property test against a naive model that never forgets, and checkpoints (save → load
 * equal by data digest and client-table digest; garbage and torn streams rejected with a code).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  decodeKvResult,
  encodeKvCommand,
  encodeKvCommandInto,
  kvCommandBytes,
  encodeKvQuery,
  tryDecodeKvCommand,
  type KvCommand,
  type KvResult,
} from '../src/kv/kv-codec.js';
import createKvMachine, { KvMachine, KV_STATE_CHUNK_BYTES, ResultTable } from '../src/kv/kv-machine.js';
import type { StateReader } from '../src/runtime/state-machine.js';

let decree = 0;
function run(m: KvMachine, cmd: KvCommand): KvResult {
  return decodeKvResult(m.execute(encodeKvCommand(cmd), { decree: ++decree }));
}
const put = (clientId: number, seq: number, key: string, value: string,
  ackedBelow = 1): KvCommand =>
  ({ op: 'put', clientId, seq, ackedBelow, key, value });
const cas = (clientId: number, seq: number, key: string, expected: string | null, value: string,
  ackedBelow = 1): KvCommand => ({ op: 'cas', clientId, seq, ackedBelow, key, expected, value });
const get = (clientId: number, seq: number, key: string, ackedBelow = 1): KvCommand =>
  ({ op: 'get', clientId, seq, ackedBelow, key });

function save(m: KvMachine): Uint8Array[] {
  const parts: Uint8Array[] = [];
  m.saveState({ write: (b) => parts.push(b.slice()) });
  return parts;
}

/** A reader over saved parts that hands out pieces of at most `pieceMax` bytes. */
function readerOf(bytes: Uint8Array, pieceMax = Number.MAX_SAFE_INTEGER): StateReader {
  let at = 0;
  return {
    read(maxBytes: number): Uint8Array | null {
      if (at >= bytes.length) return null;
      const n = Math.min(maxBytes, pieceMax, bytes.length - at);
      const out = bytes.slice(at, at + n);
      at += n;
      return out;
    },
  };
}

const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

const commandArb: fc.Arbitrary<KvCommand> = fc.record({
  clientId: fc.integer({ min: 0, max: 2 ** 48 - 2 }),
  seq: fc.integer({ min: 1, max: 2 ** 40 }),
  key: fc.string({ maxLength: 20 }),
  value: fc.string({ maxLength: 40 }),
  expected: fc.option(fc.string({ maxLength: 10 })),
  op: fc.constantFrom('put' as const, 'get' as const, 'cas' as const),
  ackedFrac: fc.double({ min: 0, max: 1, noNaN: true }),
}).map((r) => {
  const h = { clientId: r.clientId, seq: r.seq, ackedBelow: Math.floor(r.ackedFrac * r.seq),
    key: r.key };
  if (r.op === 'get') return { op: 'get', ...h };
  if (r.op === 'put') return { op: 'put', ...h, value: r.value };
  return { op: 'cas', ...h, expected: r.expected, value: r.value };
});

test('kv codec: commands round-trip; malformed bytes give a reason, never a throw', () => {
  fc.assert(fc.property(commandArb, (cmd) => {
    const bytes = encodeKvCommand(cmd);
    assert.deepEqual(tryDecodeKvCommand(bytes), cmd);
    assert.equal(kvCommandBytes(cmd), bytes.length);
    // Into a reused, larger buffer: the same bytes, the length returned; too small: a coded error.
    const out = new Uint8Array(bytes.length + 7).fill(0xee);
    assert.equal(encodeKvCommandInto(cmd, out), bytes.length);
    assert.deepEqual(out.subarray(0, bytes.length), bytes);
    assert.throws(() => encodeKvCommandInto(cmd, new Uint8Array(bytes.length - 1)), { code: 'PAXLINE_BAD_ARGUMENT' });
  }), { numRuns: 300 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    const r = tryDecodeKvCommand(bytes);
    assert.ok(typeof r === 'string' || typeof r === 'object');
  }), { numRuns: 300 });
  assert.equal(typeof tryDecodeKvCommand(encodeKvCommand(put(1, 5, 'k', 'v', 6))), 'string');
  assert.equal(typeof tryDecodeKvCommand(encodeKvCommand(put(1, 0, 'k', 'v', 0))), 'string');
});

test('kv machine: a retried (clientId, seq) runs once and returns the first result', () => {
  const m = new KvMachine();
  assert.deepEqual(run(m, cas(7, 1, 'a', null, 'x')), { kind: 'cas', swapped: true });
  // The same seq again: not run again (a second run would answer false).
  assert.deepEqual(run(m, cas(7, 1, 'a', null, 'x')), { kind: 'cas', swapped: true });
  assert.deepEqual(run(m, put(7, 2, 'a', 'y')), { kind: 'ok' });
  assert.deepEqual(run(m, cas(7, 1, 'a', null, 'x')), { kind: 'cas', swapped: true });
  assert.equal(m.get('a'), 'y');
  // Another client with the same seq is a different command.
  assert.deepEqual(run(m, cas(8, 1, 'a', 'y', 'z')), { kind: 'cas', swapped: true });
  assert.equal(m.get('a'), 'z');
  const s = m.stats();
  assert.equal(s.executed, 3);
  assert.equal(s.duplicates, 2);
  assert.deepEqual(run(m, get(8, 2, 'a')), { kind: 'value', value: 'z' });
  // Garbage is answered with an error result, not a throw (it must not stop the replica).
  assert.deepEqual(decodeKvResult(m.execute(new Uint8Array([0xc1]), { decree: ++decree })).kind,
    'error');
});

test('kv machine: ackedBelow forgets results below it; a later duplicate is refused', () => {
  const m = new KvMachine();
  for (let seq = 1; seq <= 5; seq++) run(m, put(3, seq, `k${seq}`, 'v'));
  assert.equal(m.clientInfo(3)?.liveResults, 5);
  run(m, put(3, 6, 'k6', 'v', 4)); // seqs 1..3 answered
  assert.deepEqual(m.clientInfo(3), { ackedBelow: 4, lastDecree: decree, liveResults: 3,
    storedResults: 3 });
  const stale = run(m, put(3, 2, 'k2', 'again', 1));
  assert.deepEqual(stale.kind === 'error' ? stale.code : stale, 'PAXLINE_KV_STALE_SEQ');
  assert.equal(m.get('k2'), 'v');
  // ackedBelow never goes back, and a remembered seq above it still answers from the table.
  assert.deepEqual(run(m, put(3, 5, 'k5', 'other', 2)), { kind: 'ok' });
  assert.equal(m.get('k5'), 'v');
  assert.equal(m.clientInfo(3)?.ackedBelow, 4);
});

test('kv machine: results per client and clients are bounded', () => {
  const m = new KvMachine({ resultsPerClientMax: 3, clientsMax: 2 });
  for (let seq = 1; seq <= 3; seq++) run(m, put(1, seq, 'k', String(seq)));
  const full = run(m, put(1, 4, 'k', '4'));
  assert.equal(full.kind === 'error' && full.code, 'PAXLINE_KV_TOO_MANY_PENDING');
  assert.equal(m.get('k'), '3');
  assert.deepEqual(run(m, put(1, 4, 'k', '4', 3)), { kind: 'ok' }); // acks free room
  run(m, put(2, 1, 'k', 'b'));
  run(m, put(1, 5, 'k', '5', 5)); // client 1 active again: client 2 is now the oldest
  run(m, put(9, 1, 'k', 'c')); // a third client evicts the one idle longest
  assert.equal(m.clientInfo(2), null);
  assert.notEqual(m.clientInfo(1), null);
  assert.equal(m.stats().evictedClients, 1);
  // The evicted client comes back after an answer (ackedBelow ≥ 2): refused, not re-run.
  const back = run(m, put(2, 2, 'k', 'dup', 2));
  assert.equal(back.kind === 'error' && back.code, 'PAXLINE_KV_CLIENT_EXPIRED');
  assert.equal(m.get('k'), 'c');

  const idle = new KvMachine({ clientIdleDecreesMax: 2 });
  run(idle, put(1, 1, 'a', '1'));
  run(idle, put(2, 1, 'b', '1'));
  run(idle, put(2, 2, 'b', '2'));
  run(idle, put(2, 3, 'b', '3'));
  assert.equal(idle.clientInfo(1), null);
  assert.notEqual(idle.clientInfo(2), null);
});

test('kv machine: options are validated, naming the field', () => {
  assert.throws(() => createKvMachine({ replicaId: 1, members: [1], options: { clientsMax: 0 } }),
    { code: 'PAXLINE_BAD_OPTION', field: 'stateMachineOptions.clientsMax' });
  assert.throws(() => new KvMachine('x'), { code: 'PAXLINE_BAD_OPTION' });
});

/** The naive reference: remembers every result forever, no bounds. */
class Model {
  readonly data = new Map<string, string>();
  readonly done = new Map<string, KvResult>();
  run(c: KvCommand): KvResult {
    const id = `${c.clientId}:${c.seq}`;
    const prior = this.done.get(id);
    if (prior !== undefined) return prior;
    let r: KvResult;
    if (c.op === 'get') return { kind: 'value', value: this.data.get(c.key) ?? null };
    if (c.op === 'put') {
      this.data.set(c.key, c.value);
      r = { kind: 'ok' };
    } else {
      const swapped = (this.data.get(c.key) ?? null) === c.expected;
      if (swapped) this.data.set(c.key, c.value);
      r = { kind: 'cas', swapped };
    }
    this.done.set(id, r);
    return r;
  }
}

test('kv machine: random commands with retries agree with a model that never forgets', () => {
  // Each client issues seqs 1..n in order, each possibly retried once right away or later;
  // ackedBelow is the lowest seq not yet answered, as the real client computes it.
  const stepArb = fc.record({
    client: fc.integer({ min: 1, max: 3 }),
    op: fc.constantFrom('put' as const, 'get' as const, 'cas' as const),
    key: fc.constantFrom('a', 'b'),
    value: fc.constantFrom('1', '2', '3'),
    expected: fc.constantFrom(null, '1', '2'),
    retryLag: fc.option(fc.integer({ min: 0, max: 4 })),
  });
  fc.assert(fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
    const m = new KvMachine();
    const model = new Model();
    const nextSeq = new Map<number, number>();
    const retries: { at: number; cmd: KvCommand }[] = [];
    steps.forEach((s, i) => {
      const seq = nextSeq.get(s.client) ?? 1;
      nextSeq.set(s.client, seq + 1);
      const pendingRetry = retries.filter((r) => r.cmd.clientId === s.client)
        .reduce((lo, r) => Math.min(lo, r.cmd.seq), seq);
      const h = { clientId: s.client, seq, ackedBelow: pendingRetry, key: s.key };
      const cmd: KvCommand = s.op === 'get' ? { op: 'get', ...h }
        : s.op === 'put' ? { op: 'put', ...h, value: s.value }
          : { op: 'cas', ...h, expected: s.expected, value: s.value };
      assert.deepEqual(run(m, cmd), model.run(cmd));
      if (s.retryLag !== null && cmd.op !== 'get') retries.push({ at: i + s.retryLag, cmd });
      for (const r of retries.filter((x) => x.at <= i)) {
        retries.splice(retries.indexOf(r), 1);
        const got = run(m, r.cmd);
        assert.deepEqual(got, model.run(r.cmd));
      }
    });
    assert.deepEqual(new Map([...m['data']]), model.data);
  }), { numRuns: 150 });
});

test('kv result table: random sets and drops agree with a Map that drops every key below', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(12), fc.boolean()), { maxLength: 80 }), (ops) => {
    const t = new ResultTable();
    const model = new Map<number, Uint8Array>();
    let acked = 0;
    for (const [kind, n, sweep] of ops) {
      if (kind <= 1) {
        const seq = acked + n;
        if (model.has(seq)) continue;
        const r = new Uint8Array([seq & 0xff]);
        t.set(seq, r);
        model.set(seq, r);
      } else {
        const before = acked;
        acked += kind === 2 ? Math.min(n, 3) : n;
        t.dropBelow(before, acked, sweep);
        for (const k of [...model.keys()]) if (k < acked) model.delete(k);
      }
      // Dead entries (below acked) may linger until a sweep; live ones must match exactly.
      for (let seq = acked; seq < acked + 16; seq++) assert.equal(t.get(seq), model.get(seq));
      const live = [...t.entries()].filter(([k]) => k >= acked).map(([k]) => k).sort((a, b) => a - b);
      assert.deepEqual(live, [...model.keys()].sort((a, b) => a - b));
      if (sweep && kind > 1) assert.equal(t.size, model.size);
    }
  }), { numRuns: 500 });
});

test('kv machine: save → load round trip keeps the data and the dedupe table', () => {
  const m = new KvMachine();
  const big = 'x'.repeat(200);
  for (let i = 0; i < 2000; i++) run(m, put(1 + (i % 50), 1 + Math.floor(i / 50), `key-${i}`, big));
  run(m, cas(77, 1, 'key-5', big, 'changed'));
  const parts = save(m);
  assert.ok(parts.length > 4, 'saved in several frames');
  assert.ok(parts.every((p) => p.length <= KV_STATE_CHUNK_BYTES * 2), 'no giant buffer');
  const bytes = concat(parts);
  for (const pieceMax of [Number.MAX_SAFE_INTEGER, 7, 1]) {
    const loaded = new KvMachine();
    loaded.loadState(readerOf(bytes, pieceMax));
    assert.equal(loaded.digest(), m.digest());
    assert.equal(loaded.clientTableDigest(), m.clientTableDigest());
    // The dedupe table came along: a retried command answers its first result.
    assert.deepEqual(run(loaded, cas(77, 1, 'key-5', big, 'changed')),
      { kind: 'cas', swapped: true });
    assert.equal(loaded.stats().duplicates, 1);
  }
  const empty = new KvMachine();
  const restored = new KvMachine();
  restored.loadState(readerOf(concat(save(empty))));
  assert.equal(restored.digest(), empty.digest());
  // The digest is a fast read too (how benchmarks compare replicas).
  assert.deepEqual(decodeKvResult(m.executeFastRead(encodeKvQuery({ op: 'digest' }))),
    { kind: 'value', value: m.digest() });
  assert.deepEqual(decodeKvResult(m.executeFastRead(encodeKvQuery({ op: 'get', key: 'key-5' }))),
    { kind: 'value', value: 'changed' });
});

test('kv machine: loadState rejects garbage, torn and extended streams, state untouched', () => {
  const m = new KvMachine();
  run(m, put(1, 1, 'a', '1'));
  run(m, put(1, 2, 'b', '2'));
  const good = concat(save(m));
  const target = new KvMachine();
  run(target, put(5, 1, 'keep', 'me'));
  const before = target.digest();
  const bad: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
    good.subarray(0, good.length - 1),
    good.subarray(0, 20),
    concat([good, new Uint8Array([0])]),
    (() => { const c = good.slice(); c[6] = (c[6] ?? 0) ^ 0xff; return c; })(),
  ];
  for (const bytes of bad) {
    assert.throws(() => target.loadState(readerOf(bytes)), { code: 'PAXLINE_KV_STATE_CORRUPT' });
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
    assert.throws(() => target.loadState(readerOf(bytes)), { code: 'PAXLINE_KV_STATE_CORRUPT' });
  }), { numRuns: 200 });
  assert.equal(target.digest(), before);
});
