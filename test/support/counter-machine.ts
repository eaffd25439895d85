/**
 * A tiny state machine for runtime tests: every command adds its bytes to a running sum and an
 * execution count; the result is `count:sum:decree` as text, so a test can tell which execution
 * answered it. Fast reads return the count. State round-trips through checkpoints.
 */
import type { StateMachine, StateMachineInit, StateReader, StateWriter } from '../../src/runtime/state-machine.js';

const enc = new TextEncoder();

export default function createCounterMachine(init: StateMachineInit): StateMachine {
  let count = 0;
  let sum = 0;
  // Test knobs: { noCandidacy: ids that must not stand for primary }.
  const noCandidacy = ((init.options ?? {}) as { noCandidacy?: number[] }).noCandidacy ?? [];
  return {
    canBecomePrimary() {
      return !noCandidacy.includes(init.replicaId);
    },
    execute(command, context) {
      count++;
      for (const b of command) sum = (sum + b) % 1_000_000_007;
      return enc.encode(`${count}:${sum}:${context.decree}`);
    },
    executeFastRead() {
      return enc.encode(String(count));
    },
    saveState(writer: StateWriter) {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setFloat64(0, count, true);
      v.setFloat64(8, sum, true);
      writer.write(b);
    },
    loadState(reader: StateReader) {
      const b = reader.read(16);
      if (!b || b.length !== 16) throw new Error('counter machine: bad checkpoint');
      const v = new DataView(b.buffer, b.byteOffset, 16);
      count = v.getFloat64(0, true);
      sum = v.getFloat64(8, true);
    },
  };
}
