/**
 * Answering a catch-up fetch from the log on disk (core Ready.readLog): the decrees were
 * compacted from the core's memory, so their chosen values come from the log's records.
 *
 * For a committed decree, the highest-ballot accept or learned copy in the log is the chosen
 * value: the copy the core executed was chosen at its ballot, and Paxos guarantees every copy
 * accepted at a higher ballot carries the same value. Entries are consecutive from `fromDecree`;
 * the first decree without a copy (say, lost to damage and not yet repaired) ends the reply, and
 * the fetcher asks another peer.
 */
import type { Entry } from '../core/types.js';
import type { StoredRecord } from './segment-recovery.js';
import { STORED_ACCEPT, STORED_LEARNED, storedToLogRecord } from './stored-record.js';

export function entriesFromLogRecords(records: readonly StoredRecord[], fromDecree: number, toDecree: number): Entry[] {
  const best = new Map<number, StoredRecord>();
  for (const r of records) {
    if (r.type !== STORED_ACCEPT && r.type !== STORED_LEARNED) continue;
    if (r.decree < fromDecree || r.decree > toDecree) continue;
    const have = best.get(r.decree);
    if (!have || have.ballot < r.ballot) best.set(r.decree, r);
  }
  const out: Entry[] = [];
  for (let d = fromDecree; d <= toDecree; d++) {
    const r = best.get(d);
    if (!r) break;
    const rec = storedToLogRecord(r);
    if (rec.type !== 'accept' && rec.type !== 'learned') break;
    out.push({ decree: d, ballot: rec.ballot, value: rec.value });
  }
  return out;
}
