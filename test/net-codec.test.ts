/**
 * Message codec (src/net/message-codec.ts): every message type round-trips (property), the
 * encoding is canonical and prefix-free, and malformed input — truncated, extended, bit-flipped,
 * random, or with bad tags and numbers — throws PAXLINE_BAD_FRAME and nothing else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { DecreeValue, Entry, Message } from '../src/core/types.js';
import {
  ENVELOPE_BYTES,
  MESSAGE_TAGS,
  decodeMessage,
  encodeMessage,
  encodedMessageBytes,
  peekMessageType,
  writeMessage,
} from '../src/net/message-codec.js';
import { NetError } from '../src/net/net-error.js';
import { encodeRecord } from '../src/codec/records.js';
import { EncodedBatch, valueBytes, writeValueBody } from '../src/codec/value-body.js';
import { isValue, sameValue } from '../src/core/validate.js';
import { plainMessage as plain } from './support/plain-values.js';


const u32 = fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([hi, lo]) => hi * 0x10000 + lo);
const safe = fc.oneof(fc.maxSafeNat(), fc.nat(2000), fc.constant(Number.MAX_SAFE_INTEGER));
const bool = fc.boolean();
/** fc.record, but with ordinary prototypes so deepStrictEqual compares like with like. */
const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true });

const valueArb: fc.Arbitrary<DecreeValue> = fc.oneof(
  fc.constant<DecreeValue>({ kind: 'noop' }),
  fc
    .array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 })
    .map((commands): DecreeValue => ({ kind: 'batch', commands })),
  fc.array(u32, { maxLength: 5 }).map((members): DecreeValue => ({ kind: 'config', members })),
);
const entriesArb: fc.Arbitrary<Entry[]> = fc.array(
  record({ decree: safe, ballot: safe, value: valueArb }),
  { maxLength: 4 },
);
const env = { from: u32, to: u32, config: u32 };

export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  record({ type: fc.constant('accept' as const), ...env, ballot: safe, decree: safe, value: valueArb, committed: safe }),
  record({ type: fc.constant('accepted' as const), ...env, ballot: safe, decree: safe }),
  record({ type: fc.constant('nack' as const), ...env, ballot: safe, promised: safe }),
  record({ type: fc.constant('heartbeat' as const), ...env, ballot: safe, committed: safe, floor: safe }),
  record({ type: fc.constant('heartbeatAck' as const), ...env, ballot: safe, durableCommitted: safe }),
  record({ type: fc.constant('prepare' as const), ...env, ballot: safe, fromDecree: safe }),
  record({
    type: fc.constant('prepareAccepted' as const),
    ...env,
    ballot: safe,
    fromDecree: safe,
    coverFrom: safe,
    coverTo: safe,
    compactedUpTo: safe,
    entries: entriesArb,
  }),
  record({ type: fc.constant('prepareRefused' as const), ...env, ballot: safe, promised: safe, sticky: bool }),
  record({ type: fc.constant('statusQuery' as const), ...env }),
  record({
    type: fc.constant('statusResponse' as const),
    ...env,
    committed: safe,
    promised: safe,
    primaryRecent: bool,
  }),
  record({ type: fc.constant('fetch' as const), ...env, fromDecree: safe, toDecree: safe }),
  record({ type: fc.constant('fetchReply' as const), ...env, entries: entriesArb, committed: safe }),
);

function isBadFrame(error: unknown): boolean {
  return error instanceof NetError && error.code === 'PAXLINE_BAD_FRAME';
}

/** Decoding `bytes` either throws PAXLINE_BAD_FRAME or yields a message that re-encodes to them. */
function decodesCanonicallyOrRejects(bytes: Uint8Array): void {
  let m: Message;
  try {
    m = decodeMessage(bytes);
  } catch (error) {
    assert.ok(isBadFrame(error), `unexpected error ${String(error)}`);
    return;
  }
  assert.deepEqual(encodeMessage(m), bytes);
}

const sampleAccept: Message = {
  type: 'accept',
  from: 1,
  to: 2,
  config: 1,
  ballot: 1025,
  decree: 7,
  committed: 6,
  value: { kind: 'batch', commands: [Uint8Array.of(1, 2, 3), new Uint8Array(0), Uint8Array.of(9)] },
};

test('net codec: every message type round-trips (property)', () => {
  fc.assert(
    fc.property(messageArb, (m) => {
      const bytes = encodeMessage(m);
      assert.equal(bytes.length, encodedMessageBytes(m));
      assert.equal(peekMessageType(bytes), m.type);
      assert.deepStrictEqual(plain(decodeMessage(bytes)), m);
    }),
    { numRuns: 2000 },
  );
});

test('net codec: a batch body encoded once (or remembered from decoding) gives the same bytes in messages and records', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), safe, safe, (commands, decree, ballot) => {
      const fresh = (): DecreeValue => ({ kind: 'batch', commands: commands.map((c) => new Uint8Array(c)) });
      const accept = (value: DecreeValue): Message => ({ type: 'accept', from: 1, to: 2, config: 1, ballot, decree, value, committed: 0 });
      const record = (value: DecreeValue): Uint8Array => encodeRecord({ type: 'accept', decree, ballot, value });
      const v = fresh();
      const rec = record(v); // encodes and caches the body
      const msg = encodeMessage(accept(v)); // from the cache
      assert.deepEqual(msg, encodeMessage(accept(fresh())));
      assert.deepEqual(record(v), record(fresh()));
      // Decoding remembers the body it read: re-encoding the decoded value copies those bytes.
      const decoded = decodeMessage(msg) as Extract<Message, { type: 'accept' }>;
      assert.deepEqual(encodeMessage(decoded), msg);
      assert.deepEqual(record(decoded.value), rec);
      // The body inside a record and inside a message is the same byte string.
      assert.deepEqual(rec.subarray(17), msg.subarray(msg.length - (rec.length - 17)));
    }),
    { numRuns: 500 },
  );
});

test('net codec: every type tag is covered and distinct', () => {
  const tags = Object.values(MESSAGE_TAGS);
  assert.equal(new Set(tags).size, 12);
  assert.equal(peekMessageType(new Uint8Array(0)), null);
  assert.equal(peekMessageType(Uint8Array.of(0)), null);
  assert.equal(peekMessageType(Uint8Array.of(13)), null);
});

test('net codec: writeMessage writes in place at an offset (as the transport does)', () => {
  fc.assert(
    fc.property(messageArb, fc.nat(32), (m, at) => {
      const out = new Uint8Array(at + encodedMessageBytes(m) + 5).fill(0xee);
      assert.equal(writeMessage(m, out, at), at + encodedMessageBytes(m));
      assert.deepStrictEqual(plain(decodeMessage(out.subarray(at, at + encodedMessageBytes(m)))), m);
      assert.ok(out.subarray(0, at).every((b) => b === 0xee));
    }),
    { numRuns: 300 },
  );
});

test('net codec: decoded commands are views into the input, not copies', () => {
  const bytes = encodeMessage(sampleAccept);
  const m = decodeMessage(bytes);
  assert.ok(m.type === 'accept' && m.value instanceof EncodedBatch);
  // The batch keeps its encoding as a view of the input (the tail of the accept).
  assert.equal(m.value.body.buffer, bytes.buffer);
  assert.equal(m.value.body.byteOffset + m.value.body.length, bytes.length);
  const first = m.value.commands[0]!;
  assert.equal(first.buffer, bytes.buffer);
  assert.equal(m.value.commands, m.value.commands); // cut out once
  bytes[first.byteOffset] = 42;
  assert.equal(first[0], 42);
});

test('EncodedBatch: of() encodes like a plain batch, check() accepts exactly the well-framed encodings', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 }), (commands) => {
      const plainBatch: DecreeValue = { kind: 'batch', commands };
      const out = new Uint8Array(valueBytes(plainBatch));
      writeValueBody(out, new DataView(out.buffer), 0, plainBatch);
      const made = EncodedBatch.of(commands);
      assert.deepEqual(made.body, out);
      assert.equal(made.count, commands.length);
      assert.deepStrictEqual([...made.commands], commands);
      assert.ok(isValue(made));
      const checked = EncodedBatch.check(out);
      assert.ok(checked instanceof EncodedBatch);
      assert.deepStrictEqual([...checked.commands], commands);
      // Written into a message or record: its body, copied whole.
      const again = new Uint8Array(valueBytes(checked) + 3);
      assert.equal(writeValueBody(again, new DataView(again.buffer), 3, checked), again.length);
      assert.deepEqual(again.subarray(3), out);
      // Any strict prefix, and any extension, is refused.
      for (let n = 0; n < out.length; n++) assert.equal(typeof EncodedBatch.check(out.subarray(0, n)), 'string');
      const longer = new Uint8Array(out.length + 1);
      longer.set(out);
      assert.equal(EncodedBatch.check(longer), 'trailing bytes after the commands');
    }),
    { numRuns: 300 },
  );
  assert.equal(EncodedBatch.check(Uint8Array.of(0)), 'not a batch');
  assert.equal(EncodedBatch.check(Uint8Array.of(2, 0, 0, 0, 0)), 'not a batch');
  assert.equal(EncodedBatch.check(Uint8Array.of(1, 2, 0, 0, 0, 0, 0, 0, 0)), 'command count 2 exceeds the frame');
  assert.equal(EncodedBatch.check(Uint8Array.of(1, 1, 0, 0, 0, 5, 0, 0, 0, 1)), 'command bytes past the end');
});

test('isValue: an encoded batch (with its body) is valid without its commands being cut out', () => {
  let reads = 0;
  const v = { kind: 'batch' as const, encoded: true as const, body: Uint8Array.of(1, 0, 0, 0, 0), get commands(): Uint8Array[] { reads++; return []; } };
  assert.ok(isValue(v));
  assert.equal(reads, 0);
  // The mark alone is not enough: an encoded batch must carry its encoding.
  assert.ok(!isValue({ kind: 'batch', encoded: true, commands: [] }));
  // Without the mark the commands are inspected, and must all be Uint8Arrays.
  assert.ok(isValue({ kind: 'batch', commands: [Uint8Array.of(1)] }));
  assert.ok(!isValue({ kind: 'batch', commands: [[1]] }));
});

test('net codec: every strict prefix and any extension is rejected (property)', () => {
  fc.assert(
    fc.property(messageArb, fc.uint8Array({ minLength: 1, maxLength: 4 }), (m, extra) => {
      const bytes = encodeMessage(m);
      for (let n = 0; n < bytes.length; n++) {
        assert.throws(() => decodeMessage(bytes.subarray(0, n)), isBadFrame);
      }
      const longer = new Uint8Array(bytes.length + extra.length);
      longer.set(bytes);
      longer.set(extra, bytes.length);
      assert.throws(() => decodeMessage(longer), isBadFrame);
    }),
    { numRuns: 300 },
  );
});

test('net codec: bit flips are rejected or decode canonically (property)', () => {
  fc.assert(
    fc.property(messageArb, fc.nat(), fc.nat(7), (m, pos, bit) => {
      const bytes = encodeMessage(m);
      bytes[pos % bytes.length]! ^= 1 << bit;
      decodesCanonicallyOrRejects(bytes);
    }),
    { numRuns: 3000 },
  );
});

test('net codec: random bytes are rejected or decode canonically (property)', () => {
  const tagged = fc
    .tuple(fc.integer({ min: 0, max: 14 }), fc.uint8Array({ maxLength: 120 }))
    .map(([tag, rest]) => Uint8Array.of(tag, ...rest));
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), tagged), decodesCanonicallyOrRejects), {
    numRuns: 3000,
  });
});

/** Encodes `m`, lets `patch` damage the bytes through a DataView, expects PAXLINE_BAD_FRAME. */
function rejectsPatched(m: Message, patch: (dv: DataView, bytes: Uint8Array) => void): void {
  const bytes = encodeMessage(m);
  patch(new DataView(bytes.buffer), bytes);
  assert.throws(() => decodeMessage(bytes), isBadFrame);
}

test('net codec: bad tags, numbers, booleans and counts are rejected', () => {
  const E = ENVELOPE_BYTES;
  const refused: Message = { type: 'prepareRefused', from: 1, to: 2, config: 1, ballot: 2048, promised: 3072, sticky: true };
  const cases: [string, Message, (dv: DataView, b: Uint8Array) => void][] = [
    ['type tag 0', sampleAccept, (_, b) => (b[0] = 0)],
    ['type tag 13', sampleAccept, (_, b) => (b[0] = 13)],
    ['type tag 0xf0 (hello)', sampleAccept, (_, b) => (b[0] = 0xf0)],
    ['NaN ballot', sampleAccept, (dv) => dv.setFloat64(E, NaN, true)],
    ['negative decree', sampleAccept, (dv) => dv.setFloat64(E + 8, -1, true)],
    ['fractional committed', sampleAccept, (dv) => dv.setFloat64(E + 16, 1.5, true)],
    ['committed 2^53', sampleAccept, (dv) => dv.setFloat64(E + 16, 2 ** 53, true)],
    ['infinite ballot', sampleAccept, (dv) => dv.setFloat64(E, Infinity, true)],
    ['value kind 3', sampleAccept, (_, b) => (b[E + 24] = 3)],
    ['command count 2^32-1', sampleAccept, (dv) => dv.setUint32(E + 25, 0xffffffff, true)],
    ['command count one too many', sampleAccept, (dv) => dv.setUint32(E + 25, 4, true)],
    ['command length past the end', sampleAccept, (dv) => dv.setUint32(E + 29, 1000, true)],
    ['boolean 2', refused, (_, b) => (b[E + 16] = 2)],
  ];
  for (const [name, m, patch] of cases) {
    assert.doesNotThrow(() => decodeMessage(encodeMessage(m)), name);
    rejectsPatched(m, patch);
  }
  const fetchReply: Message = { type: 'fetchReply', from: 1, to: 2, config: 1, entries: [], committed: 0 };
  rejectsPatched(fetchReply, (dv) => dv.setUint32(E + 8, 0x7fffffff, true));
  assert.throws(() => decodeMessage(new Uint8Array(0)), isBadFrame);
});

test('net codec: encoding refuses numbers it cannot represent, naming the field', () => {
  const cases: [Message, string][] = [
    [{ ...sampleAccept, ballot: 1.5 }, 'ballot'],
    [{ ...sampleAccept, decree: -1 }, 'decree'],
    [{ ...sampleAccept, committed: 2 ** 53 }, 'committed'],
    [{ ...sampleAccept, config: 2 ** 32 }, 'config'],
    [{ ...sampleAccept, from: -1 }, 'from'],
    [{ type: 'fetch', from: 1, to: 2, config: 1, fromDecree: NaN, toDecree: 1 }, 'fromDecree'],
  ];
  for (const [m, field] of cases) {
    assert.throws(
      () => encodeMessage(m),
      (e: unknown) => e instanceof NetError && e.code === 'PAXLINE_BAD_ARGUMENT' && e.field === field,
    );
  }
});

test('net codec: speed smoke (accept of 1,024 × 16-byte commands; no threshold)', () => {
  const commands = Array.from({ length: 1024 }, (_, i) => new Uint8Array(16).fill(i & 0xff));
  const m: Message = { ...sampleAccept, value: { kind: 'batch', commands } };
  const bytes = encodeMessage(m);
  const runs = 200;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) encodeMessage(m);
  const encodeUs = Number(process.hrtime.bigint() - t0) / runs / 1000;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) decodeMessage(bytes);
  const decodeUs = Number(process.hrtime.bigint() - t0) / runs / 1000;
  assert.deepStrictEqual(plain(decodeMessage(bytes)), m);
  console.log(`# accept ${bytes.length} B: encode ${encodeUs.toFixed(1)} µs, decode ${decodeUs.toFixed(1)} µs`);
});

test('sameValue: two encoded batches compare by body, an encoded and a plain one by commands', () => {
  const a = EncodedBatch.of([Uint8Array.of(1, 2), Uint8Array.of(3)]);
  const b = EncodedBatch.check(a.body.slice());
  assert.ok(b instanceof EncodedBatch);
  assert.ok(sameValue(a, b));
  assert.ok(!sameValue(a, EncodedBatch.of([Uint8Array.of(1, 2), Uint8Array.of(4)])));
  assert.ok(!sameValue(a, EncodedBatch.of([Uint8Array.of(1, 2)])));
  assert.ok(sameValue(a, { kind: 'batch', commands: [Uint8Array.of(1, 2), Uint8Array.of(3)] }));
  assert.ok(!sameValue({ kind: 'batch', commands: [Uint8Array.of(1, 2), Uint8Array.of(3), Uint8Array.of(5)] }, b));
});
