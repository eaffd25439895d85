/**
 * paxline's public entry point. Until the runtime lands (worker-thread stages, TCP transport,
 * `createReplica`), it exposes the pure consensus core — for custom drivers and for study — and
 * the linearizability checker.
 */
export { Replica, type CoreStats, type CoreStatus, type ProposeResult } from './core/replica.js';
export { type CoreOptions, CoreOptionsError } from './core/options.js';
export { AssertionFailure } from './core/assert.js';
export { formatBallot, makeBallot } from './core/ballot.js';
export type { DecreeValue, Entry, LogRecord, Message, Ready, Role } from './core/types.js';
export { checkLinearizable, type LinResult } from './check/linearizability.js';
export type { KvOperation } from './check/history.js';
