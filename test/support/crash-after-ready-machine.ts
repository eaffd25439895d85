/**
 * A state machine whose apply thread crashes (an uncaught exception from a timer) 1 ms after the
 * factory ran: after the apply stage has reported ready, while createReplica is still starting
 * the consensus stage. For the startup-failure test in runtime.test.ts.
 */
import type { StateMachine } from '../../src/runtime/state-machine.js';

export default function createCrashingMachine(): StateMachine {
  setTimeout(() => { throw new Error('deliberate crash after ready'); }, 1);
  return { execute: () => new Uint8Array(0) };
}
