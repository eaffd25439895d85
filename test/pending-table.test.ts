/**
 * The façade's table of outstanding calls: random adds, resolves and rejects (seqs issued in
 * order, answered in any order, a few slots so that spilling happens) agree with a Map model;
 * every callback runs exactly once, with the right value.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { PendingTable } from '../src/runtime/pending-table.js';

test('pending table: agrees with a Map, spilling when a slot is held by an older call', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 8 }), fc.array(fc.tuple(fc.nat(4), fc.nat(1000)), { maxLength: 200 }), (slots, ops) => {
    const t = new PendingTable<number>(slots);
    const model = new Map<number, string>();
    const outcome = new Map<number, string>();
    let next = 0;
    for (const [kind, pick] of ops) {
      const open = [...model.keys()];
      if (kind <= 1 || open.length === 0) {
        const seq = ++next;
        t.add(seq, (v) => outcome.set(seq, `${outcome.get(seq) ?? ''}resolve:${v};`),
          (e) => outcome.set(seq, `${outcome.get(seq) ?? ''}reject:${e.message};`));
        model.set(seq, 'open');
      } else {
        const seq = pick % 3 === 0 ? next + 1 : open[pick % open.length]!; // sometimes an unknown seq
        const ok = kind === 2 ? t.resolve(seq, seq * 10) : t.reject(seq, new Error(`e${seq}`));
        assert.equal(ok, model.has(seq));
        if (ok) {
          model.delete(seq);
          assert.equal(outcome.get(seq), kind === 2 ? `resolve:${seq * 10};` : `reject:e${seq};`);
        }
      }
      assert.equal(t.size, model.size);
    }
    t.rejectAll(new Error('all'));
    assert.equal(t.size, 0);
    for (const seq of model.keys()) assert.equal(outcome.get(seq), 'reject:all;');
    for (let seq = 1; seq <= next; seq++) assert.ok(outcome.has(seq), `seq ${seq} answered once`);
  }), { numRuns: 500 });
});
