/**
 * Preconditions on every message the core receives. A message from the network is untrusted: a
 * malformed or impossible one is rejected (counted, never acted on), so the core's own
 * assertions only ever fire on paxline bugs, not on bad input.
 */
import { isBallot } from './ballot.js';
import type { DecreeValue, Entry, Message } from './types.js';

const isDecree = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export function isValue(v: unknown): v is DecreeValue {
  if (typeof v !== 'object' || v === null) return false;
  const value = v as { kind?: unknown; commands?: unknown; members?: unknown; encoded?: unknown; body?: unknown };
  switch (value.kind) {
    case 'noop':
      return true;
    case 'batch':
      // An encoded batch holds its checked encoding; reading its commands would cut them out.
      if (value.encoded === true) return value.body instanceof Uint8Array;
      return Array.isArray(value.commands) && value.commands.every((c) => c instanceof Uint8Array);
    case 'config':
      return Array.isArray(value.members) && value.members.length > 0 && value.members.every(isCount);
    default:
      return false;
  }
}

/** Entries must be well formed and strictly increasing by decree. */
function isEntryList(v: unknown): v is Entry[] {
  if (!Array.isArray(v)) return false;
  let last = 0;
  for (const e of v as unknown[]) {
    if (typeof e !== 'object' || e === null) return false;
    const entry = e as Partial<Entry>;
    if (!isDecree(entry.decree) || entry.decree <= last) return false;
    if (!isBallot(entry.ballot) || !isValue(entry.value)) return false;
    last = entry.decree;
  }
  return true;
}

/** Returns null when the message is acceptable, else a short reason. */
export function checkMessage(m: Message, self: number): string | null {
  if (!isCount(m.from) || !isCount(m.config) || m.config < 1) return 'bad envelope';
  if (m.to !== self) return 'wrong recipient';
  if (m.from === self) return 'from self';
  switch (m.type) {
    case 'prepare':
      return isBallot(m.ballot) && isDecree(m.fromDecree) ? null : 'bad prepare';
    case 'prepareAccepted':
      return isBallot(m.ballot) && isDecree(m.fromDecree) && isDecree(m.coverFrom) &&
        isDecree(m.coverTo) && m.fromDecree <= m.coverFrom && m.coverFrom <= m.coverTo &&
        isEntryList(m.entries) && m.entries.every((e) => e.decree >= m.coverFrom && e.decree <= m.coverTo)
        ? null
        : 'bad prepareAccepted';
    case 'prepareRefused':
      return isBallot(m.ballot) && (m.promised === 0 || isBallot(m.promised)) && typeof m.sticky === 'boolean'
        ? null
        : 'bad prepareRefused';
    case 'accept':
      return isBallot(m.ballot) && isDecree(m.decree) && isValue(m.value) && isCount(m.committed) &&
        m.committed < m.decree
        ? null
        : 'bad accept';
    case 'accepted':
      return isBallot(m.ballot) && isDecree(m.decree) ? null : 'bad accepted';
    case 'nack':
      return isBallot(m.ballot) && isBallot(m.promised) && m.promised > m.ballot ? null : 'bad nack';
    case 'heartbeat':
      return isBallot(m.ballot) && isCount(m.committed) ? null : 'bad heartbeat';
    case 'heartbeatAck':
      return isBallot(m.ballot) ? null : 'bad heartbeatAck';
    case 'statusQuery':
      return null;
    case 'statusResponse':
      return isCount(m.committed) && isCount(m.promised) && typeof m.primaryRecent === 'boolean'
        ? null
        : 'bad statusResponse';
    case 'fetch':
      return isDecree(m.fromDecree) && isDecree(m.toDecree) && m.toDecree >= m.fromDecree
        ? null
        : 'bad fetch';
    case 'fetchReply':
      return isEntryList(m.entries) && isCount(m.committed) &&
        m.entries.every((e) => e.decree <= m.committed)
        ? null
        : 'bad fetchReply';
    default:
      return 'unknown type';
  }
}

/** Structural equality of decree values (commands compared byte by byte). */
export function sameValue(a: DecreeValue, b: DecreeValue): boolean {
  if (a === b) return true;
  if (a.kind !== b.kind) return false;
  if (a.kind === 'noop') return true;
  if (a.kind === 'config' && b.kind === 'config') {
    return a.members.length === b.members.length && a.members.every((m, i) => m === b.members[i]);
  }
  if (a.kind === 'batch' && b.kind === 'batch') {
    // Both held as their encodings: equal values have equal bodies (the encoding is canonical).
    if (a.encoded === true && b.encoded === true && a.body !== undefined && b.body !== undefined) return sameBytes(a.body, b.body);
    if (a.commands.length !== b.commands.length) return false;
    for (let i = 0; i < a.commands.length; i++) if (!sameBytes(a.commands[i]!, b.commands[i]!)) return false;
    return true;
  }
  return false;
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  if (x.length !== y.length) return false;
  for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  return true;
}
