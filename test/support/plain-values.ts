/**
 * Decoded batches are EncodedBatch objects (src/codec/value-body.ts); these turn them back into
 * plain `{ kind: 'batch', commands }` values so a decoded message deep-equals the one encoded.
 */
import { EncodedBatch } from '../../src/codec/value-body.js';
import type { DecreeValue, Message } from '../../src/core/types.js';

export function plainValue(v: DecreeValue): DecreeValue {
  return v instanceof EncodedBatch ? { kind: 'batch', commands: [...v.commands] } : v;
}

/** `m` with every decree value plain (see plainValue). */
export function plainMessage(m: Message): Message {
  if (m.type === 'accept') return { ...m, value: plainValue(m.value) };
  if (m.type === 'prepareAccepted' || m.type === 'fetchReply') {
    return { ...m, entries: m.entries.map((e) => ({ ...e, value: plainValue(e.value) })) };
  }
  return m;
}
