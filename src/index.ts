/**
 * paxline's public entry point.
 *
 *  - A running replica: `createReplica(options)` → `replicate`, `fastRead`, `status`, `close`,
 *    events 'role' / 'primary' / 'error' (src/runtime/replica.ts); the user's state machine
 *    contract (src/runtime/state-machine.ts); `KV_MACHINE_PATH`, the built-in key-value state
 *    machine, usable as `stateMachine`.
 *  - The key-value service's network client and endpoint: `connectClient`, `startClientServer`.
 *  - The pure consensus core — for custom drivers and for study — and the linearizability
 *    checker.
 */
import { fileURLToPath } from 'node:url';

export { createReplica, PaxlineReplica, type FastReadOptions, type ReplicaStatus } from './runtime/replica.js';
export type { MemberAddress, ReplicaOptions } from './runtime/options.js';
export type { GcKind, StallEvent, StallKind, StallThread } from './runtime/stall-journal.js';
export { PaxlineError, type PaxlineErrorCode } from './runtime/errors.js';
export type {
  ExecuteContext, ReplicaRole, ReplicaStatusNote, StateMachine, StateMachineFactory, StateMachineInit,
  StateReader, StateWriter,
} from './runtime/state-machine.js';
export { connectClient, type ClientOptions, type KvClient } from './kv/client.js';
export { startClientServer, type ClientServer, type ClientServerOptions, type ReplicaForClients } from './kv/client-server.js';
export { encodeKvCommand, decodeKvResult, type KvCommand, type KvResult } from './kv/kv-codec.js';

/** Path of the built-in key-value state machine module (pass it as `stateMachine`). */
export const KV_MACHINE_PATH = fileURLToPath(new URL('./kv/kv-machine.js', import.meta.url));

export { Replica, type CoreStats, type CoreStatus, type ProposeResult } from './core/replica.js';
export { type CoreOptions, CoreOptionsError } from './core/options.js';
export { AssertionFailure } from './core/assert.js';
export { formatBallot, makeBallot } from './core/ballot.js';
export type { DecreeValue, Entry, LogRecord, Message, Ready, Role } from './core/types.js';
export { checkLinearizable, type LinResult } from './check/linearizability.js';
export type { KvOperation } from './check/history.js';
