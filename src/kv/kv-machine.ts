/**
 * The built-in replicated key-value state machine (put / get / cas on string keys and values),
 * as a StateMachineFactory for the apply worker (default export). Commands and results are
 * encoded by kv-codec.ts.
 *
 * Exactly once. Every command carries (clientId, seq, ackedBelow). The client table remembers,
 * per client, the results of its executed put/cas commands whose seq is at or above the client's
 * ackedBelow; a command whose (clientId, seq) is remembered is not run again: it returns the first
 * result. `ackedBelow` only grows (the largest seen); results below it are forgotten, and a
 * command below it is answered PAXLINE_KV_STALE_SEQ without running (a late duplicate of a
 * command that was answered, or abandoned by its client after a timeout). A linearizable `get`
 * is not remembered: running a retried read again is harmless, and it keeps big values out of
 * the table.
 *
 * Bounded memory:
 *  - results per client ≤ resultsPerClientMax; past it a command is answered
 *    PAXLINE_KV_TOO_MANY_PENDING without running (the client keeps its window of unanswered
 *    seqs smaller than this, so this is a safety net, not a flow control).
 *  - clients ≤ clientsMax. Each entry records its last-active decree; a new client beyond the
 *    bound evicts the least recently active sixteenth of the table, ordered by (last-active
 *    decree, clientId) — a total order, so it never depends on Map iteration order and every
 *    replica (restarted from a checkpoint or not) evicts the same clients. With
 *    clientIdleDecreesMax set, a sweep every max(1, clientIdleDecreesMax / 8) decrees evicts
 *    clients idle for more than that many decrees. (Re-inserting the entry on every command to
 *    keep a Map in LRU order cost ~1 µs per command: profiles/OPTIMIZATIONS.md.)
 *  - An evicted client that comes back is recognised when its ackedBelow is 2 or more (it has
 *    had an answer, so it must have had an entry): its command is answered
 *    PAXLINE_KV_CLIENT_EXPIRED without running, and the client starts a new session (new
 *    clientId, seq from 1). The one case not caught: a client evicted while the first command of
 *    its session is still unanswered may have a retried command run twice. Choose clientsMax
 *    well above the number of concurrently active clients.
 *
 * Determinism: execute depends only on the command bytes, the decree and the state; the
 * options (stateMachineOptions) must be the same on every replica. Observable results never
 * depend on Map iteration order.
 *
 * Checkpoint stream (saveState / loadState), a sequence of frames `u32 LE length | msgpack body`,
 * each body at most KV_STATE_FRAME_BYTES_MAX bytes:
 *
 *   header   [KV_STATE_MAGIC, KV_STATE_VERSION, keyCount, clientCount]
 *   data     [1, key, value, key, value, …]                  (≈ KV_STATE_CHUNK_BYTES each)
 *   clients  [2, clientId, ackedBelow, lastDecree, [seq, result, …], clientId, …]
 *   trailer  [3, keyCount, clientCount]
 *
 * Nothing may follow the trailer. loadState validates everything (types, ranges, duplicate keys
 * and clients, counts) and throws KvError PAXLINE_KV_STATE_CORRUPT on any mismatch, leaving the
 * current state untouched.
 */
import { createHash } from 'node:crypto';
import { assert } from '../core/assert.js';
import type {
  ExecuteContext,
  StateMachine,
  StateMachineFactory,
  StateMachineInit,
  StateReader,
  StateWriter,
} from '../runtime/state-machine.js';
import {
  KV_CLIENT_ID_MAX,
  encodeKvResult,
  isKeyOk,
  isValueOk,
  tryDecodeKvCommand,
  tryDecodeKvQuery,
  unpackOrUndefined,
  type KvCommand,
} from './kv-codec.js';
import { KvError } from './kv-error.js';
import { FrameWriter } from './state-frames.js';

export const KV_STATE_MAGIC = 0x50584b56; // 'PXKV'
export const KV_STATE_VERSION = 1;
/** Target size of one data or clients frame body when saving. */
export const KV_STATE_CHUNK_BYTES = 64 * 1024;
/** Largest frame body accepted when loading (a chunk may hold one maximal key + value). */
export const KV_STATE_FRAME_BYTES_MAX = 4 * 1024 * 1024;
/** Upper bound of the resultsPerClientMax option (see resolveOptions). */
const RESULTS_PER_CLIENT_MAX = 100_000;
/** Largest remembered result (put/cas results are a few bytes). */
const RESULT_BYTES_MAX = 1024;

const FRAME_DATA = 1;
const FRAME_CLIENTS = 2;
const FRAME_TRAILER = 3;

export interface KvMachineOptions {
  /** Clients remembered at most (default 65 536). */
  readonly clientsMax?: number;
  /** Evict clients idle for more than this many decrees (default: never by idleness). */
  readonly clientIdleDecreesMax?: number;
  /** Remembered results per client at most (default 4096; must exceed the clients' window). */
  readonly resultsPerClientMax?: number;
}

interface ResolvedKvMachineOptions {
  readonly clientsMax: number;
  readonly clientIdleDecreesMax: number;
  readonly resultsPerClientMax: number;
}

/**
 * One client's remembered results, seq → encoded result; entries below the client's ackedBelow
 * are dead (dropped lazily). Most clients have one command unanswered at a time, so the first
 * result lives in two fields and only a client with several gets a Map: a Map delete and set
 * per command (tombstones, rehashing) cost ~6 % of the apply thread (profiles/OPTIMIZATIONS.md).
 * Iteration order (the field, then the Map's insertion order) carries no meaning outside
 * dropBelow's early stop.
 */
export class ResultTable {
  private seq0 = 0;
  private r0: Uint8Array | null = null;
  private more: Map<number, Uint8Array> | null = null;

  get size(): number {
    return (this.r0 === null ? 0 : 1) + (this.more === null ? 0 : this.more.size);
  }

  get(seq: number): Uint8Array | undefined {
    if (this.r0 !== null && this.seq0 === seq) return this.r0;
    return this.more === null ? undefined : this.more.get(seq);
  }

  has(seq: number): boolean {
    return this.get(seq) !== undefined;
  }

  /** Remembers `r` for `seq` (not present). */
  set(seq: number, r: Uint8Array): void {
    if (this.r0 === null && (this.more === null || this.more.size === 0)) {
      this.seq0 = seq;
      this.r0 = r;
    } else {
      (this.more ??= new Map()).set(seq, r);
    }
  }

  /**
   * Drops the results below `below` (the client's ackedBelow just rose from `before`): the
   * field, then the Map — its keys in [before, below) directly when that range is short (no
   * iterator), else from the front of its insertion order while below (stopping at the first
   * that is not, unless `sweep`, which scans it all).
   */
  dropBelow(before: number, below: number, sweep: boolean): void {
    if (this.r0 !== null && this.seq0 < below) this.r0 = null;
    const m = this.more;
    if (m === null || m.size === 0) return;
    if (!sweep && below - before <= 8) {
      for (let seq = before; seq < below; seq++) m.delete(seq);
      return;
    }
    for (const seq of m.keys()) {
      if (seq < below) m.delete(seq);
      else if (!sweep) break;
    }
  }

  /** Appends the results of seqs ≥ `below` to `seqs` and `results` (pairwise, no iterator). */
  collectFrom(below: number, seqs: number[], results: Uint8Array[]): void {
    if (this.r0 !== null && this.seq0 >= below) seqs.push(this.seq0), results.push(this.r0);
    if (this.more === null) return;
    for (const [seq, r] of this.more) if (seq >= below) seqs.push(seq), results.push(r);
  }

  *entries(): IterableIterator<[number, Uint8Array]> {
    if (this.r0 !== null) yield [this.seq0, this.r0];
    if (this.more !== null) yield* this.more;
  }

  *keys(): IterableIterator<number> {
    for (const [seq] of this.entries()) yield seq;
  }
}

interface ClientEntry {
  ackedBelow: number;
  lastDecree: number;
  readonly results: ResultTable;
}

export interface KvClientInfo {
  readonly ackedBelow: number;
  readonly lastDecree: number;
  readonly liveResults: number;
  readonly storedResults: number;
}

export interface KvMachineStats {
  readonly keys: number;
  readonly clients: number;
  readonly executed: number;
  readonly duplicates: number;
  readonly rejected: number;
  readonly evictedClients: number;
}

function resolveOptions(raw: unknown): ResolvedKvMachineOptions {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object') {
    throw new KvError('PAXLINE_BAD_OPTION', 'stateMachineOptions must be an object',
      'stateMachineOptions');
  }
  const o = raw as Record<string, unknown>;
  const int = (name: string, dflt: number, max: number): number => {
    const v = o[name];
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) {
      throw new KvError('PAXLINE_BAD_OPTION',
        `stateMachineOptions.${name} must be an integer in [1, ${max}]`,
        `stateMachineOptions.${name}`);
    }
    return v;
  };
  return Object.freeze({
    clientsMax: int('clientsMax', 65_536, 2 ** 24),
    clientIdleDecreesMax: int('clientIdleDecreesMax', Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER),
    // One client's results are saved in one frame: ≤ 100 000 × ~15 bytes stays far below
    // KV_STATE_FRAME_BYTES_MAX.
    resultsPerClientMax: int('resultsPerClientMax', 4096, RESULTS_PER_CLIENT_MAX),
  });
}

function errorResult(code: string, message: string): Uint8Array {
  return encodeKvResult({ kind: 'error', code, message });
}

const RESULT_OK = encodeKvResult({ kind: 'ok' });

export class KvMachine implements StateMachine {
  private readonly options: ResolvedKvMachineOptions;
  private data = new Map<string, string>();
  /** clientId → entry (iteration order carries no meaning). */
  private clients = new Map<number, ClientEntry>();
  private executedCount = 0;
  private duplicateCount = 0;
  private rejectedCount = 0;
  private evictedCount = 0;

  constructor(options: unknown = {}) {
    this.options = resolveOptions(options);
  }

  execute(command: Uint8Array, context: ExecuteContext): Uint8Array {
    const cmd = tryDecodeKvCommand(command);
    if (typeof cmd === 'string') {
      this.rejectedCount++;
      return errorResult('PAXLINE_KV_BAD_COMMAND', cmd);
    }
    this.evictIdle(context.decree);
    const entry = this.touchClient(cmd, context.decree);
    if (entry === null) {
      this.rejectedCount++;
      return errorResult('PAXLINE_KV_CLIENT_EXPIRED', 'client session unknown (evicted)');
    }
    if (cmd.ackedBelow > entry.ackedBelow) forgetBelow(entry, cmd.ackedBelow, false);
    if (cmd.seq < entry.ackedBelow) {
      this.rejectedCount++;
      return errorResult('PAXLINE_KV_STALE_SEQ', 'seq below the client\'s ackedBelow');
    }
    const prior = entry.results.get(cmd.seq);
    if (prior !== undefined) {
      this.duplicateCount++;
      return prior; // the runtime copies results out (never transfers them)
    }
    if (cmd.op === 'get') {
      this.executedCount++;
      return encodeKvResult({ kind: 'value', value: this.data.get(cmd.key) ?? null });
    }
    if (entry.results.size >= this.options.resultsPerClientMax) {
      forgetBelow(entry, entry.ackedBelow, true);
      if (entry.results.size >= this.options.resultsPerClientMax) {
        this.rejectedCount++;
        return errorResult('PAXLINE_KV_TOO_MANY_PENDING', 'too many unacknowledged results');
      }
    }
    const result = this.apply(cmd);
    entry.results.set(cmd.seq, result);
    this.executedCount++;
    return result;
  }

  executeFastRead(query: Uint8Array): Uint8Array {
    const q = tryDecodeKvQuery(query);
    if (typeof q === 'string') return errorResult('PAXLINE_KV_BAD_COMMAND', q);
    if (q.op === 'digest') return encodeKvResult({ kind: 'value', value: this.digest() });
    return encodeKvResult({ kind: 'value', value: this.data.get(q.key) ?? null });
  }

  /** Reads a key from local state (tests, tools). */
  get(key: string): string | null {
    return this.data.get(key) ?? null;
  }

  /**
   * A client's table entry (tests, tools): live results are those at or above ackedBelow;
   * storedResults counts dead ones not yet dropped too.
   */
  clientInfo(clientId: number): KvClientInfo | null {
    const e = this.clients.get(clientId);
    if (e === undefined) return null;
    let liveResults = 0;
    for (const seq of e.results.keys()) if (seq >= e.ackedBelow) liveResults++;
    return { ackedBelow: e.ackedBelow, lastDecree: e.lastDecree, liveResults,
      storedResults: e.results.size };
  }

  stats(): KvMachineStats {
    return {
      keys: this.data.size,
      clients: this.clients.size,
      executed: this.executedCount,
      duplicates: this.duplicateCount,
      rejected: this.rejectedCount,
      evictedClients: this.evictedCount,
    };
  }

  /**
   * SHA-256 (hex) of the data, independent of insertion order: keys sorted, each entry hashed as
   * u32 LE key bytes | key | u32 LE value bytes | value. O(n log n): for tests and benchmarks.
   */
  digest(): string {
    const keys = [...this.data.keys()].sort();
    const h = createHash('sha256');
    for (const k of keys) {
      hashString(h, k);
      hashString(h, this.data.get(k) ?? '');
    }
    return h.digest('hex');
  }

  /**
   * SHA-256 (hex) of the client table as it can affect results: clients by id, each with
   * its ackedBelow, last-active decree and live results (seq ≥ ackedBelow) sorted by seq.
   */
  clientTableDigest(): string {
    const h = createHash('sha256');
    const num = Buffer.alloc(8);
    const putNum = (x: number): void => { num.writeDoubleLE(x, 0); h.update(num); };
    for (const [id, e] of [...this.clients].sort((a, b) => a[0] - b[0])) {
      for (const x of [id, e.ackedBelow, e.lastDecree]) putNum(x);
      const seqs = [...e.results.keys()].filter((s) => s >= e.ackedBelow).sort((a, b) => a - b);
      putNum(seqs.length);
      for (const s of seqs) {
        putNum(s);
        hashBytes(h, e.results.get(s) ?? new Uint8Array(0));
      }
    }
    return h.digest('hex');
  }

  saveState(writer: StateWriter): void {
    // Frames of ~KV_STATE_CHUNK_BYTES, MessagePack written by hand (state-frames.ts): the apply
    // thread, and every result on the primary, waits for this.
    const w = new FrameWriter(writer, KV_STATE_FRAME_BYTES_MAX);
    w.frameOfInts([KV_STATE_MAGIC, KV_STATE_VERSION, this.data.size, this.clients.size]);
    w.uint(FRAME_DATA);
    for (const [k, v] of this.data) {
      w.str(k);
      w.str(v);
      if (w.bodyBytes >= KV_STATE_CHUNK_BYTES) w.flush(), w.uint(FRAME_DATA);
    }
    if (w.itemCount > 1) w.flush();
    else w.discard();
    w.uint(FRAME_CLIENTS);
    const seqs: number[] = [];
    const results: Uint8Array[] = [];
    for (const [id, e] of this.clients) {
      seqs.length = 0;
      results.length = 0;
      e.results.collectFrom(e.ackedBelow, seqs, results);
      w.uint(id);
      w.uint(e.ackedBelow);
      w.uint(e.lastDecree);
      w.pairs(seqs, results);
      if (w.bodyBytes >= KV_STATE_CHUNK_BYTES) w.flush(), w.uint(FRAME_CLIENTS);
    }
    if (w.itemCount > 1) w.flush();
    else w.discard();
    w.frameOfInts([FRAME_TRAILER, this.data.size, this.clients.size]);
  }

  loadState(reader: StateReader): void {
    const loaded = readState(reader);
    if (loaded.clients.size > this.options.clientsMax) this.evictOldest(loaded.clients, this.options.clientsMax);
    this.data = loaded.data;
    this.clients = loaded.clients;
  }

  private apply(cmd: Exclude<KvCommand, { op: 'get' }>): Uint8Array {
    if (cmd.op === 'put') {
      this.data.set(cmd.key, cmd.value);
      return RESULT_OK;
    }
    const current = this.data.get(cmd.key) ?? null;
    const swapped = current === cmd.expected;
    if (swapped) this.data.set(cmd.key, cmd.value);
    return encodeKvResult({ kind: 'cas', swapped });
  }

  /** The command's client entry (its last-active decree updated), or null for an evicted client. */
  private touchClient(cmd: KvCommand, decree: number): ClientEntry | null {
    let entry = this.clients.get(cmd.clientId);
    if (entry === undefined) {
      // ackedBelow ≥ 2: the client has had an answer, so it had an entry and was evicted.
      if (cmd.ackedBelow >= 2) return null;
      if (this.clients.size >= this.options.clientsMax) this.evictOldest(this.clients, this.options.clientsMax - 1);
      entry = { ackedBelow: 0, lastDecree: decree, results: new ResultTable() };
      this.clients.set(cmd.clientId, entry);
    }
    entry.lastDecree = decree;
    return entry;
  }

  private lastIdleSweep = 0;

  private evictIdle(decree: number): void {
    const idleMax = this.options.clientIdleDecreesMax;
    if (idleMax === Number.MAX_SAFE_INTEGER || decree - this.lastIdleSweep < Math.max(1, Math.floor(idleMax / 8))) return;
    this.lastIdleSweep = decree;
    for (const [id, e] of this.clients) {
      if (decree - e.lastDecree <= idleMax) continue;
      this.clients.delete(id);
      this.evictedCount++;
    }
  }

  /**
   * Evicts the least recently active clients, ordered by (lastDecree, clientId), until at most
   * `keep` remain — and at least a sixteenth of the table, so a stream of new clients pays the
   * sort once per sixteenth, not once per client.
   */
  private evictOldest(clients: Map<number, ClientEntry>, keep: number): void {
    assert(clients.size > 0, 'evictOldest on an empty client table');
    const order = [...clients].sort((a, b) => a[1].lastDecree - b[1].lastDecree || a[0] - b[0]);
    const n = Math.max(clients.size - keep, Math.ceil(clients.size / 16));
    for (let i = 0; i < n && i < order.length; i++) {
      clients.delete(order[i]![0]);
      this.evictedCount++;
    }
  }
}

/**
 * Raises the client's ackedBelow and drops results below it (ResultTable.dropBelow; `sweep`
 * scans the whole table, before refusing a command for lack of room).
 */
function forgetBelow(entry: ClientEntry, ackedBelow: number, sweep: boolean): void {
  const before = entry.ackedBelow;
  entry.ackedBelow = Math.max(before, ackedBelow);
  entry.results.dropBelow(before, entry.ackedBelow, sweep);
}

type Hash = ReturnType<typeof createHash>;

function hashString(h: Hash, s: string): void {
  hashBytes(h, Buffer.from(s, 'utf8'));
}

function hashBytes(h: Hash, b: Uint8Array): void {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length, 0);
  h.update(len);
  h.update(b);
}

function corrupt(message: string): KvError {
  return new KvError('PAXLINE_KV_STATE_CORRUPT', `KV state: ${message}`);
}

/** Reads exactly n bytes, or null at a clean end of stream (no byte read); throws if torn. */
function readExactly(reader: StateReader, n: number): Uint8Array | null {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const part = reader.read(n - got);
    if (part === null) {
      if (got === 0) return null;
      throw corrupt('stream ends inside a frame');
    }
    if (part.length === 0 || part.length > n - got) throw corrupt('reader returned a bad length');
    out.set(part, got);
    got += part.length;
  }
  return out;
}

function readFrame(reader: StateReader): unknown[] {
  const len = readExactly(reader, 4);
  if (len === null) throw corrupt('stream ends before its trailer');
  const n = new DataView(len.buffer).getUint32(0, true);
  if (n === 0 || n > KV_STATE_FRAME_BYTES_MAX) throw corrupt(`frame length ${n} out of range`);
  const body = readExactly(reader, n);
  if (body === null) throw corrupt('stream ends inside a frame');
  const v = unpackOrUndefined(body);
  if (!Array.isArray(v) || v.length === 0) throw corrupt('frame body is not a msgpack array');
  return v as unknown[];
}

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

function readState(reader: StateReader): {
  data: Map<string, string>;
  clients: Map<number, ClientEntry>;
} {
  const head = readFrame(reader);
  if (head[0] !== KV_STATE_MAGIC) throw corrupt('bad magic');
  if (head[1] !== KV_STATE_VERSION) throw corrupt(`unsupported version ${String(head[1])}`);
  const keyCount = head[2];
  const clientCount = head[3];
  if (head.length !== 4 || !isCount(keyCount) || !isCount(clientCount)) throw corrupt('bad header');
  const data = new Map<string, string>();
  const clients = new Map<number, ClientEntry>();
  for (;;) {
    const f = readFrame(reader);
    if (f[0] === FRAME_DATA) readDataFrame(f, data);
    else if (f[0] === FRAME_CLIENTS) readClientsFrame(f, clients);
    else if (f[0] === FRAME_TRAILER) {
      if (f.length !== 3 || f[1] !== keyCount || f[2] !== clientCount) throw corrupt('bad trailer');
      break;
    } else throw corrupt('unknown frame kind');
  }
  if (data.size !== keyCount || clients.size !== clientCount) throw corrupt('count mismatch');
  if (reader.read(1) !== null) throw corrupt('bytes after the trailer');
  return { data, clients };
}

function readDataFrame(f: unknown[], data: Map<string, string>): void {
  if (f.length % 2 !== 1) throw corrupt('data frame has an odd number of fields');
  for (let i = 1; i < f.length; i += 2) {
    const k = f[i];
    const v = f[i + 1];
    if (!isKeyOk(k) || !isValueOk(v)) throw corrupt('bad key or value');
    if (data.has(k)) throw corrupt('duplicate key');
    data.set(k, v);
  }
}

function readClientsFrame(f: unknown[], clients: Map<number, ClientEntry>): void {
  if ((f.length - 1) % 4 !== 0) throw corrupt('clients frame has a bad field count');
  for (let i = 1; i < f.length; i += 4) {
    const [id, ackedBelow, lastDecree, results] = f.slice(i, i + 4);
    if (!isCount(id) || id >= KV_CLIENT_ID_MAX || clients.has(id)) throw corrupt('bad client id');
    if (!isCount(ackedBelow) || !isCount(lastDecree)) throw corrupt('bad client fields');
    if (!Array.isArray(results) || results.length % 2 !== 0) throw corrupt('bad client results');
    const entry: ClientEntry = { ackedBelow, lastDecree, results: new ResultTable() };
    for (let j = 0; j < results.length; j += 2) {
      const seq: unknown = results[j];
      const r: unknown = results[j + 1];
      if (!isCount(seq) || seq < ackedBelow || entry.results.has(seq)) throw corrupt('bad seq');
      if (!(r instanceof Uint8Array) || r.length > RESULT_BYTES_MAX) throw corrupt('bad result');
      entry.results.set(seq, new Uint8Array(r)); // a copy: r views the frame's buffer
    }
    clients.set(id, entry);
  }
}

/** The factory the apply worker calls (`init.options` is `KvMachineOptions`). */
const createKvMachine: StateMachineFactory = (init: StateMachineInit) =>
  new KvMachine(init.options);
export default createKvMachine;
export { createKvMachine as createStateMachine };
