/**
 * The key-value client: `connectClient({ replicas })` → get / put / cas over client-protocol.ts.
 *
 * Exactly once. A client session is (clientId, next seq): the id is drawn at random
 * (crypto.randomInt, below KV_CLIENT_ID_MAX), seqs start at 1 and grow by one per command. A
 * command's bytes are encoded once, so every retry carries the SAME (clientId, seq) and the state
 * machine runs it at most once, returning the first result to every retry. Each command also
 * carries ackedBelow, the session's lowest seq still unanswered (or the next seq when none is):
 * every seq below it has been answered or abandoned, so the state machine may forget its result
 * and refuses to run it later. Until the session has had its first answer it sends ackedBelow 1,
 * which keeps a brand-new session from looking like an evicted one (see kv-machine.ts). When the
 * state machine reports PAXLINE_KV_CLIENT_EXPIRED the client starts a new session.
 *
 * Window: a session never has a command with seq ≥ lowestUnanswered + windowMax; a call waits
 * (its timeout running) until there is room. This bounds the results the state machine keeps per
 * client, so windowMax must stay below the machine's resultsPerClientMax (default 4096).
 *
 * Routing and retries, within each call's timeout (timeoutMs, from the call's start):
 *  - a call goes to the last known primary, else the replicas in round-robin order;
 *  - a redirect with an address goes there; without one, to the next replica;
 *  - a lost connection or a refused / timed-out connect goes to the next replica;
 *  - PAXLINE_BUSY, PAXLINE_OUTCOME_UNKNOWN and PAXLINE_TIMEOUT from a replica are retried there;
 *    PAXLINE_SHUTTING_DOWN at the next replica;
 *  - after every replica has been tried once, retries back off (5 ms doubling, at most
 *    retryDelayMsMax).
 * When the timeout passes, a command that may have run (it reached a replica whose answer was
 * lost, or was answered OUTCOME_UNKNOWN / TIMEOUT / SHUTTING_DOWN) rejects with
 * PAXLINE_OUTCOME_UNKNOWN; anything else with PAXLINE_TIMEOUT. Reads never report
 * OUTCOME_UNKNOWN (they change nothing).
 *
 * `get` goes through the log (linearizable); `get(k, { stale: true })` uses the replica's
 * fastRead (local state, possibly stale; bounded by the maxLagDecrees option when given).
 */
import { randomInt } from 'node:crypto';
import * as net from 'node:net';
import {
  FrameReader,
  OP_FAST_READ,
  OP_REPLICATE,
  decodeResponse,
  encodeRequest,
  parseAddress,
  type ClientResponse,
} from './client-protocol.js';
import {
  KV_CLIENT_ID_MAX,
  KV_KEY_BYTES_MAX,
  KV_VALUE_BYTES_MAX,
  decodeKvResult,
  encodeKvCommand,
  encodeKvQuery,
  isKeyOk,
  isValueOk,
  type KvCommand,
  type KvResult,
} from './kv-codec.js';
import { writeCoalesced } from './corked-write.js';
import { KvError } from './kv-error.js';

export interface ClientOptions {
  /** Client endpoints of the replica set, 'host:port' each (at least one). */
  readonly replicas: readonly string[];
  /** Per-call timeout, milliseconds (default 5000). */
  readonly timeoutMs?: number;
  /** Per-connection connect timeout, milliseconds (default 1000). */
  readonly connectTimeoutMs?: number;
  /** Largest spread between the lowest unanswered seq and the next seq (default 1024). */
  readonly windowMax?: number;
  /** Calls pending at once (waiting ones too); more reject with PAXLINE_BUSY (default 65536). */
  readonly callsMax?: number;
  /** Largest delay between retries, milliseconds (default 200). */
  readonly retryDelayMsMax?: number;
  /** For stale gets: how many decrees behind the replica may be (default: the replica's). */
  readonly maxLagDecrees?: number;
}

export interface GetOptions {
  /** Read the contacted replica's local state (fastRead) instead of going through the log. */
  readonly stale?: boolean;
}

export interface KvClientStats {
  readonly callsPending: number;
  readonly connections: number;
  readonly redirects: number;
  readonly retries: number;
}

export interface KvClient {
  get(key: string, o?: GetOptions): Promise<string | null>;
  put(key: string, value: string): Promise<void>;
  /** Sets key to value if its current value is `expected` (null: absent); true when it did. */
  cas(key: string, expected: string | null, value: string): Promise<boolean>;
  /** Rejects pending calls with PAXLINE_CLOSED and closes every connection. */
  close(): Promise<void>;
  /** The current session's client id. */
  readonly clientId: number;
  stats(): KvClientStats;
}

interface ResolvedClientOptions {
  readonly replicas: readonly string[];
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly windowMax: number;
  readonly callsMax: number;
  readonly retryDelayMsMax: number;
  readonly maxLagDecrees: number | null;
}

const TIMER_MS_MAX = 2 ** 31 - 1;

function badOption(field: string, message: string): KvError {
  return new KvError('PAXLINE_BAD_OPTION', `${field} ${message}`, field);
}

function resolveOptions(o: ClientOptions): ResolvedClientOptions {
  if (typeof o !== 'object' || o === null) throw badOption('options', 'must be an object');
  if (!Array.isArray(o.replicas) || o.replicas.length === 0) {
    throw badOption('replicas', 'must be a non-empty array of \'host:port\'');
  }
  o.replicas.forEach((a: unknown, i) => {
    if (typeof a !== 'string' || parseAddress(a) === null) {
      throw badOption(`replicas[${i}]`, `must be 'host:port', got ${JSON.stringify(a)}`);
    }
  });
  const int = (name: keyof ClientOptions, dflt: number, min: number, max: number): number => {
    const v = o[name] ?? dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw badOption(name, `must be an integer in [${min}, ${max}]`);
    }
    return v;
  };
  return Object.freeze({
    replicas: Object.freeze([...o.replicas]),
    timeoutMs: int('timeoutMs', 5000, 1, TIMER_MS_MAX),
    connectTimeoutMs: int('connectTimeoutMs', 1000, 1, TIMER_MS_MAX),
    windowMax: int('windowMax', 1024, 1, 2 ** 20),
    callsMax: int('callsMax', 65_536, 1, 2 ** 30),
    retryDelayMsMax: int('retryDelayMsMax', 200, 1, TIMER_MS_MAX),
    maxLagDecrees: o.maxLagDecrees === undefined ? null
      : int('maxLagDecrees', 0, 0, Number.MAX_SAFE_INTEGER),
  });
}

/** Creates a client; connections open lazily, on the first call. */
export function connectClient(options: ClientOptions): KvClient {
  return new KvClientImpl(resolveOptions(options));
}

class Session {
  readonly id = randomInt(KV_CLIENT_ID_MAX);
  nextSeq = 1;
  /** Unanswered seqs; insertion order is increasing seq order (seqs are handed out in order). */
  readonly pending = new Set<number>();
  /** Set once the state machine has answered a command of this session. */
  established = false;

  lowestUnanswered(): number {
    const first = this.pending.values().next();
    return first.done === true ? this.nextSeq : first.value;
  }

  ackedBelow(): number {
    return this.established ? this.lowestUnanswered() : 1;
  }
}

type Outcome =
  | { readonly type: 'response'; readonly response: ClientResponse }
  | { readonly type: 'lost'; readonly maySent: boolean }
  | { readonly type: 'ended' };

const ENDED: Outcome = { type: 'ended' };

/** One call (get / put / cas) from start to its end by answer, timeout or close. */
class Call {
  /** The command may have run (only tracked for commands that change state). */
  maybeRan = false;
  endedBy: 'timeout' | 'close' | null = null;
  readonly ended: Promise<Outcome>;
  private endNow: () => void = () => {};
  private readonly timer: NodeJS.Timeout;
  private readonly deadlineMs: number;

  constructor(readonly isWrite: boolean, timeoutMs: number) {
    this.deadlineMs = performance.now() + timeoutMs;
    this.ended = new Promise((resolve) => { this.endNow = () => resolve(ENDED); });
    this.timer = setTimeout(() => this.end('timeout'), timeoutMs);
  }

  end(by: 'timeout' | 'close'): void {
    if (this.endedBy !== null) return;
    this.endedBy = by;
    clearTimeout(this.timer);
    this.endNow();
  }

  /** Milliseconds left before the timeout (at least 1). */
  remainingMs(): number {
    return Math.max(1, Math.ceil(this.deadlineMs - performance.now()));
  }

  settle(): void {
    clearTimeout(this.timer);
  }

  endError(): KvError {
    if (this.endedBy === 'close') return new KvError('PAXLINE_CLOSED', 'the client was closed');
    if (this.isWrite && this.maybeRan) {
      return new KvError('PAXLINE_OUTCOME_UNKNOWN', 'timed out; the command may have run');
    }
    return new KvError('PAXLINE_TIMEOUT', 'timed out; the call had no effect');
  }
}

/** A connection to one replica's client endpoint, with its requests in flight. */
class Connection {
  readonly socket: net.Socket;
  connected = false;
  closed = false;
  readonly closedPromise: Promise<void>;
  private readonly reader = new FrameReader();
  private readonly pending = new Map<number, (o: Outcome) => void>();

  constructor(host: string, port: number, connectTimeoutMs: number, onClose: () => void) {
    this.socket = net.connect({ host, port });
    this.socket.setNoDelay(true);
    const connectTimer = setTimeout(() => this.socket.destroy(), connectTimeoutMs);
    this.socket.on('connect', () => {
      this.connected = true;
      clearTimeout(connectTimer);
    });
    this.socket.on('data', (chunk: Buffer) => {
      if (this.reader.push(chunk, (body) => this.onFrame(body)) !== null) this.socket.destroy();
    });
    this.socket.on('error', () => { /* 'close' follows */ });
    this.closedPromise = new Promise((resolve) => {
      this.socket.on('close', () => {
        clearTimeout(connectTimer);
        this.closed = true;
        const lost: Outcome = { type: 'lost', maySent: this.connected };
        for (const r of this.pending.values()) r(lost);
        this.pending.clear();
        onClose();
        resolve();
      });
    });
  }

  request(requestId: number, frame: Buffer): Promise<Outcome> {
    if (this.closed) return Promise.resolve({ type: 'lost', maySent: false });
    return new Promise((resolve) => {
      this.pending.set(requestId, resolve);
      writeCoalesced(this.socket, frame);
    });
  }

  cancel(requestId: number): void {
    this.pending.delete(requestId);
  }

  private onFrame(body: Buffer): void {
    const response = decodeResponse(body);
    if (response === null) {
      this.socket.destroy(); // a peer speaking something else: drop it, retry elsewhere
      return;
    }
    const r = this.pending.get(response.requestId);
    if (r === undefined) return; // cancelled by its call's timeout
    this.pending.delete(response.requestId);
    r({ type: 'response', response });
  }
}

interface WindowWaiter {
  active: boolean;
  readonly wake: () => void;
}

function sleep(ms: number): Promise<Outcome> {
  return new Promise((resolve) => setTimeout(() => resolve(ENDED), ms).unref());
}

class KvClientImpl implements KvClient {
  private session = new Session();
  private readonly connections = new Map<string, Connection>();
  private readonly calls = new Set<Call>();
  private readonly windowWaiters: WindowWaiter[] = [];
  private primaryHint: string | null = null;
  private roundRobin = -1;
  private nextRequestId = 0;
  private redirects = 0;
  private retries = 0;
  private closed = false;

  constructor(private readonly o: ResolvedClientOptions) {}

  get clientId(): number {
    return this.session.id;
  }

  async get(key: string, o: GetOptions = {}): Promise<string | null> {
    checkKey(key);
    const r = o.stale === true ? await this.fastRead(key)
      : await this.command(false, (c) => ({ op: 'get', ...c, key }));
    if (r.kind !== 'value') throw unexpected(r);
    return r.value;
  }

  async put(key: string, value: string): Promise<void> {
    checkKey(key);
    checkValue(value, 'value');
    const r = await this.command(true, (c) => ({ op: 'put', ...c, key, value }));
    if (r.kind !== 'ok') throw unexpected(r);
  }

  async cas(key: string, expected: string | null, value: string): Promise<boolean> {
    checkKey(key);
    if (expected !== null) checkValue(expected, 'expected');
    checkValue(value, 'value');
    const r = await this.command(true, (c) => ({ op: 'cas', ...c, key, expected, value }));
    if (r.kind !== 'cas') throw unexpected(r);
    return r.swapped;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const call of this.calls) call.end('close');
    const closing = [...this.connections.values()].map((c) => {
      c.socket.destroy();
      return c.closedPromise;
    });
    await Promise.all(closing);
  }

  stats(): KvClientStats {
    return {
      callsPending: this.calls.size,
      connections: this.connections.size,
      redirects: this.redirects,
      retries: this.retries,
    };
  }

  private startCall(isWrite: boolean): Call {
    if (this.closed) throw new KvError('PAXLINE_CLOSED', 'the client was closed');
    if (this.calls.size >= this.o.callsMax) {
      throw new KvError('PAXLINE_BUSY', `callsMax (${this.o.callsMax}) calls already pending`);
    }
    const call = new Call(isWrite, this.o.timeoutMs);
    this.calls.add(call);
    return call;
  }

  private endCall(call: Call): void {
    call.settle();
    this.calls.delete(call);
  }

  private async fastRead(key: string): Promise<KvResult> {
    const call = this.startCall(false);
    try {
      return resultOrThrow(decodeKvResult(await this.send(call, OP_FAST_READ, encodeKvQuery({
        op: 'get', key }))));
    } finally {
      this.endCall(call);
    }
  }

  /** Runs one command of the current session: takes a seq, sends, retries, answers. */
  private async command(
    isWrite: boolean,
    make: (c: { clientId: number; seq: number; ackedBelow: number }) => KvCommand,
  ): Promise<KvResult> {
    const call = this.startCall(isWrite);
    try {
      await this.waitForWindow(call);
      const session = this.session;
      const seq = session.nextSeq++;
      session.pending.add(seq);
      try {
        const payload = encodeKvCommand(make({ clientId: session.id, seq,
          ackedBelow: session.ackedBelow() }));
        const r = decodeKvResult(await this.send(call, OP_REPLICATE, payload));
        if (r.kind === 'error' && r.code === 'PAXLINE_KV_CLIENT_EXPIRED') {
          if (this.session === session) this.session = new Session();
          if (call.isWrite && call.maybeRan) {
            throw new KvError('PAXLINE_OUTCOME_UNKNOWN',
              'client session expired; the command may have run');
          }
        } else {
          session.established = true;
        }
        return resultOrThrow(r);
      } finally {
        session.pending.delete(seq);
        this.wakeWindowWaiters();
      }
    } finally {
      this.endCall(call);
    }
  }

  private hasWindowRoom(): boolean {
    const s = this.session;
    return s.nextSeq - s.lowestUnanswered() < this.o.windowMax;
  }

  private async waitForWindow(call: Call): Promise<void> {
    while (!this.hasWindowRoom()) {
      let waiter: WindowWaiter | null = null;
      const woken = new Promise<Outcome>((resolve) => {
        waiter = { active: true, wake: () => resolve(ENDED) };
        this.windowWaiters.push(waiter);
      });
      await Promise.race([woken, call.ended]);
      if (waiter !== null) (waiter as WindowWaiter).active = false;
      if (call.endedBy !== null) throw call.endError();
    }
  }

  /** Wakes as many waiting calls as there is room (each re-checks before taking a seq). */
  private wakeWindowWaiters(): void {
    const s = this.session;
    let room = this.o.windowMax - (s.nextSeq - s.lowestUnanswered());
    while (room > 0 && this.windowWaiters.length > 0) {
      const w = this.windowWaiters.shift();
      if (w?.active !== true) continue;
      w.active = false;
      w.wake();
      room--;
    }
  }

  /** Sends one request until it is answered with a result, or the call ends. */
  private async send(call: Call, op: typeof OP_REPLICATE | typeof OP_FAST_READ,
    payload: Uint8Array): Promise<Uint8Array> {
    let target = this.primaryHint ?? this.nextReplica();
    for (let failures = 0; ; failures++) {
      if (call.endedBy !== null) throw call.endError();
      if (failures > 0) this.retries++;
      if (failures >= this.o.replicas.length) {
        const doublings = Math.min(failures - this.o.replicas.length, 16);
        const delayMs = Math.min(this.o.retryDelayMsMax, 5 * 2 ** doublings);
        await Promise.race([sleep(delayMs), call.ended]);
        if (call.endedBy !== null) throw call.endError();
      }
      const conn = this.connectionTo(target);
      const requestId = this.nextRequestId++;
      const frame = encodeRequest({ requestId, op, payload, maxLagDecrees: this.o.maxLagDecrees,
        timeoutMs: op === OP_FAST_READ ? call.remainingMs() : null });
      const outcome = await Promise.race([conn.request(requestId, frame), call.ended]);
      if (outcome.type === 'ended') {
        conn.cancel(requestId);
        if (call.isWrite && conn.connected) call.maybeRan = true;
        throw call.endError();
      }
      if (outcome.type === 'lost') {
        if (call.isWrite && outcome.maySent) call.maybeRan = true;
        if (this.primaryHint === target) this.primaryHint = null;
        target = this.nextReplica();
        continue;
      }
      const next = this.route(call, op, target, outcome.response);
      if (next instanceof Uint8Array) return next;
      target = next;
    }
  }

  /** The result bytes, or the address to try next; throws for errors that end the call. */
  private route(call: Call, op: number, target: string, r: ClientResponse): Uint8Array | string {
    if (r.status === 'result') {
      if (op === OP_REPLICATE) this.primaryHint = target; // any replica may answer a fastRead
      return r.result;
    }
    if (r.status === 'redirect') {
      this.redirects++;
      if (r.primaryAddress !== null && parseAddress(r.primaryAddress) !== null &&
        r.primaryAddress !== target) {
        this.primaryHint = r.primaryAddress;
        return r.primaryAddress;
      }
      if (this.primaryHint === target) this.primaryHint = null;
      return this.nextReplica();
    }
    switch (r.code) {
      case 'PAXLINE_BUSY':
        return target;
      case 'PAXLINE_OUTCOME_UNKNOWN':
      case 'PAXLINE_TIMEOUT':
        if (call.isWrite) call.maybeRan = true;
        return target;
      case 'PAXLINE_SHUTTING_DOWN':
        if (call.isWrite) call.maybeRan = true;
        if (this.primaryHint === target) this.primaryHint = null;
        return this.nextReplica();
      default:
        throw new KvError(r.code, r.message);
    }
  }

  private nextReplica(): string {
    this.roundRobin = (this.roundRobin + 1) % this.o.replicas.length;
    const a = this.o.replicas[this.roundRobin];
    if (a === undefined) throw new KvError('PAXLINE_BAD_OPTION', 'replicas is empty', 'replicas');
    return a;
  }

  private connectionTo(address: string): Connection {
    const existing = this.connections.get(address);
    if (existing !== undefined && !existing.closed) return existing;
    const parsed = parseAddress(address);
    if (parsed === null) throw new KvError('PAXLINE_PROTOCOL', `bad replica address ${address}`);
    const onClose = (): void => {
      if (this.connections.get(address) === conn) this.connections.delete(address);
    };
    const conn = new Connection(parsed.host, parsed.port, this.o.connectTimeoutMs, onClose);
    this.connections.set(address, conn);
    return conn;
  }
}

function checkKey(key: unknown): void {
  if (!isKeyOk(key)) {
    throw new KvError('PAXLINE_INVALID_ARGUMENT',
      `key must be a string of at most ${KV_KEY_BYTES_MAX} UTF-8 bytes`, 'key');
  }
}

function checkValue(value: unknown, field: string): void {
  if (!isValueOk(value)) {
    throw new KvError('PAXLINE_INVALID_ARGUMENT',
      `${field} must be a string of at most ${KV_VALUE_BYTES_MAX} UTF-8 bytes`, field);
  }
}

function resultOrThrow(r: KvResult): KvResult {
  if (r.kind === 'error') throw new KvError(r.code, r.message);
  return r;
}

function unexpected(r: KvResult): KvError {
  return new KvError('PAXLINE_PROTOCOL', `unexpected result kind ${r.kind}`);
}
