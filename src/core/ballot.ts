/**
 * Ballots. A ballot is the pair (counter, replicaId), compared lexicographically. It is packed into
 * one safe-integer Number, `counter * BALLOT_ID_SPAN + replicaId`, so comparison is a plain `<`
 * and no object is allocated on the hot path. Ballot 0 means "none": no real ballot is 0 because
 * real counters start at 1.
 */
import { assert } from './assert.js';

/** Replica ids are integers in [0, BALLOT_ID_SPAN). */
export const BALLOT_ID_SPAN = 1024;
export const BALLOT_NONE = 0;
const COUNTER_MAX = Math.floor(Number.MAX_SAFE_INTEGER / BALLOT_ID_SPAN) - 1;

export function makeBallot(counter: number, replicaId: number): number {
  assert(Number.isInteger(counter) && counter >= 1 && counter <= COUNTER_MAX, 'ballot counter');
  assert(Number.isInteger(replicaId) && replicaId >= 0 && replicaId < BALLOT_ID_SPAN, 'replica id');
  return counter * BALLOT_ID_SPAN + replicaId;
}

export function ballotCounter(ballot: number): number {
  return Math.floor(ballot / BALLOT_ID_SPAN);
}

export function ballotReplica(ballot: number): number {
  return ballot % BALLOT_ID_SPAN;
}

export function isBallot(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= BALLOT_ID_SPAN;
}

export function formatBallot(ballot: number): string {
  return ballot === BALLOT_NONE ? '-' : `${ballotCounter(ballot)}.${ballotReplica(ballot)}`;
}
