/**
 * The cluster benchmark's operations: KV puts of the built-in state machine.
 *
 * What "command bytes" means here: the size of the put's VALUE, in bytes (ASCII, so bytes =
 * characters). The key is always KEY_BYTES = 16 bytes. The command replicated is the KV codec's
 * msgpack put [1, clientId, seq, ackedBelow, key, value], so its encoded size is the value size
 * plus about 30–40 bytes (key, three integers, framing); the benchmark reports that encoded size
 * beside the value size (encodedCommandBytes). On the wire and in the log each command also
 * carries the runtime's 16-byte request header.
 *
 * Keys cycle through KEY_COUNT distinct keys, so the state stays bounded (puts overwrite) and
 * checkpoints do not grow with the run's length.
 *
 * Exactly-once sessions (embedded load): slot i is KV client BASE_CLIENT_ID + i, with one command
 * outstanding at a time, seq 1, 2, 3, … and ackedBelow = seq (every earlier seq was answered), so
 * the machine keeps at most one result per client. Slots ≤ the machine's clientsMax (65,536).
 */
import { encodeKvCommand, encodeKvCommandInto, encodeKvResult, kvCommandBytes } from '../../src/kv/kv-codec.js';
import type { Operations } from './load-driver.js';

export const KEY_BYTES = 16;
export const KEY_COUNT = 16_384;
export const BASE_CLIENT_ID = 1_000_000;
/** The KV machine's default clientsMax: more embedded slots would evict sessions. */
export const SLOTS_MAX = 65_536;

/** KEY_COUNT keys of exactly KEY_BYTES bytes each, distinct per `prefix` (one character). */
export function makeKeys(prefix: string): string[] {
  if (prefix.length !== 1) throw new Error('key prefix must be one character');
  return Array.from({ length: KEY_COUNT }, (_, i) => prefix + String(i).padStart(KEY_BYTES - 1, '0'));
}

export function makeValue(bytes: number): string {
  return 'v'.repeat(bytes);
}

/** The encoded result of a successful put ([0]); compared bytewise on the hot path. */
export const PUT_OK: Uint8Array = encodeKvResult({ kind: 'ok' });

export function isPutOk(r: Uint8Array): boolean {
  if (r.length !== PUT_OK.length) return false;
  for (let i = 0; i < r.length; i++) if (r[i] !== PUT_OK[i]) return false;
  return true;
}

/** Encoded size of a representative put (seq and ids around the middle of a run). */
export function encodedPutBytes(valueBytes: number): number {
  return encodeKvCommand({
    op: 'put', clientId: BASE_CLIENT_ID + 1000, seq: 100_000, ackedBelow: 100_000,
    key: makeKeys('k')[0]!, value: makeValue(valueBytes),
  }).length;
}

/**
 * The embedded load's operations (bench/cluster/replica-proc.ts and the profiled primary,
 * bench/profile/primary-main.ts): slot i sends KV puts as client BASE_CLIENT_ID + i, keys in
 * rotation. One command buffer per slot, encoded into again for each of its commands
 * (replicate() copies its argument at once), and one command object rewritten for each: what an
 * application sending at this rate would do. Every key has the same length, so every put of a
 * slot has the same size. A put succeeded when its result is PUT_OK.
 */
export function embeddedPuts(
  replicate: (command: Uint8Array) => Promise<Uint8Array>, inflight: number, valueBytes: number,
): Operations<Uint8Array> {
  const keys = makeKeys('k');
  const value = makeValue(valueBytes);
  const seqs = new Float64Array(inflight);
  const put = { op: 'put' as const, clientId: BASE_CLIENT_ID, seq: 1, ackedBelow: 1, key: keys[0]!, value };
  const bytes = kvCommandBytes(put);
  const buffers = Array.from({ length: inflight }, () => new Uint8Array(bytes));
  let next = 0;
  return {
    issue: (slot) => {
      const seq = ++seqs[slot]!;
      put.clientId = BASE_CLIENT_ID + slot;
      put.seq = seq;
      put.ackedBelow = seq;
      put.key = keys[next++ % KEY_COUNT]!;
      const cmd = buffers[slot]!;
      encodeKvCommandInto(put, cmd);
      return replicate(cmd);
    },
    isExpected: isPutOk,
  };
}
