/**
 * The KV client protocol, server and client against an in-process fake replica set: three client
 * servers on 127.0.0.1 (port 0), one "primary" executing through a real KvMachine, the others
 * answering PAXLINE_NOT_PRIMARY with a hint. Covers frame splitting, redirects, a server dying
 * mid-call (retried elsewhere with the same seq, executed once), timeouts, stale gets through
 * fastRead, pipelining with a small window, and option validation. No timing thresholds: short
 * timeouts only bound how long a test waits for an error it expects.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CLIENT_FRAME_BYTES_MAX,
  FrameReader,
  decodeResponse,
  encodeFrame,
  parseAddress,
} from '../src/kv/client-protocol.js';
import {
  startClientServer,
  type ClientServer,
  type ReplicaForClients,
} from '../src/kv/client-server.js';
import { connectClient, type ClientOptions, type KvClient } from '../src/kv/client.js';
import { KvMachine } from '../src/kv/kv-machine.js';

function notPrimary(primary: number | null): Error {
  const err = new Error('not the primary') as Error & { code: string; primary?: number };
  err.code = 'PAXLINE_NOT_PRIMARY';
  if (primary !== null) err.primary = primary;
  return err;
}

/** Three client servers over one shared KvMachine; only `primary` executes. */
class FakeReplicaSet {
  readonly machine = new KvMachine();
  primary = 0;
  /** Whether NOT_PRIMARY answers name the primary. */
  hint = true;
  /** The primary's replicate never settles. */
  hang = false;
  /** Called after the primary executes a command (before it answers). */
  afterExecute: ((replica: number) => void) | null = null;
  readonly replicateCalls = [0, 0, 0];
  readonly fastReadCalls = [0, 0, 0];
  readonly servers: ClientServer[] = [];
  readonly addresses: string[] = [];
  private decree = 0;
  private readonly closing: Promise<void>[] = [];

  static async start(): Promise<FakeReplicaSet> {
    const set = new FakeReplicaSet();
    for (let id = 0; id < 3; id++) {
      const server = await startClientServer({
        host: '127.0.0.1',
        port: 0,
        replica: set.replica(id),
        clientAddressOf: (r) => set.addresses[r],
      });
      set.servers.push(server);
      set.addresses.push(`127.0.0.1:${server.port}`);
    }
    return set;
  }

  private replica(id: number): ReplicaForClients {
    return {
      replicate: async (cmd) => {
        this.replicateCalls[id]!++;
        if (id !== this.primary) throw notPrimary(this.hint ? this.primary : null);
        if (this.hang) return new Promise<Uint8Array>(() => {});
        const result = this.machine.execute(cmd, { decree: ++this.decree });
        this.afterExecute?.(id);
        return result;
      },
      fastRead: async (query) => {
        this.fastReadCalls[id]!++;
        return this.machine.executeFastRead(query);
      },
    };
  }

  stop(id: number): void {
    this.closing.push(this.servers[id]!.close());
  }

  async close(): Promise<void> {
    for (const s of this.servers) this.closing.push(s.close());
    await Promise.all(this.closing);
  }
}

async function withSet(
  clientOptions: Omit<ClientOptions, 'replicas'>,
  body: (set: FakeReplicaSet, client: KvClient) => Promise<void>,
): Promise<void> {
  const set = await FakeReplicaSet.start();
  const client = connectClient({ replicas: set.addresses, ...clientOptions });
  try {
    await body(set, client);
  } finally {
    await client.close();
    await set.close();
  }
}

test('client protocol: frames survive any split into chunks; oversize lengths are refused', () => {
  fc.assert(fc.property(
    fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }),
    fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
    (bodies, cuts) => {
      const stream = Buffer.concat(bodies.map((b) => encodeFrame([1, b])));
      const reader = new FrameReader();
      const got: unknown[] = [];
      let at = 0;
      for (let i = 0; at < stream.length; i++) {
        const n = cuts[i % cuts.length] ?? 1;
        const bad = reader.push(stream.subarray(at, at + n), (f) => got.push(f.slice()));
        assert.equal(bad, null);
        at += n;
      }
      assert.deepEqual(got, bodies.map((b) => encodeFrame([1, b]).subarray(4)));
    },
  ), { numRuns: 200 });
  const huge = Buffer.alloc(4);
  huge.writeUInt32LE(CLIENT_FRAME_BYTES_MAX + 1, 0);
  assert.match(new FrameReader().push(huge, () => {}) ?? '', /out of range/);
  assert.deepEqual(parseAddress('127.0.0.1:7101'), { host: '127.0.0.1', port: 7101 });
  assert.deepEqual(parseAddress('[::1]:80'), { host: '::1', port: 80 });
  for (const bad of ['7101', ':7101', 'h:0', 'h:65536', 'h:x']) {
    assert.equal(parseAddress(bad), null);
  }
});

test('client: follows a redirect to the primary, then goes there directly', async () => {
  await withSet({}, async (set, client) => {
    set.primary = 2;
    await client.put('a', '1');
    assert.equal(await client.get('a'), '1');
    assert.equal(await client.cas('a', '1', '2'), true);
    assert.equal(await client.cas('a', '1', '3'), false);
    assert.equal(await client.cas('new', null, 'n'), true);
    assert.equal(client.stats().redirects, 1);
    assert.equal(set.servers[0]!.stats().redirectsTotal, 1);
    assert.equal(set.replicateCalls[2], 5);
    assert.equal(set.machine.get('a'), '2');
  });
});

test('client: without a hint, tries the replicas round-robin', async () => {
  await withSet({}, async (set, client) => {
    set.primary = 1;
    set.hint = false;
    await client.put('k', 'v');
    assert.equal(set.machine.get('k'), 'v');
    assert.equal(set.replicateCalls[0], 1);
    assert.equal(set.replicateCalls[1], 1);
  });
});

test('client: a primary dying after executing → retried elsewhere with the same seq, run once',
  async () => {
    await withSet({ timeoutMs: 10_000 }, async (set, client) => {
      await client.put('x', 'before');
      set.afterExecute = (id) => {
        // The command ran, but its answer is lost: the server dies, another replica takes over.
        set.afterExecute = null;
        set.stop(id);
        set.primary = 1;
      };
      // A cas that may run only once: a second run would answer false.
      assert.equal(await client.cas('x', 'before', 'after'), true);
      assert.equal(set.machine.get('x'), 'after');
      const s = set.machine.stats();
      assert.equal(s.executed, 2);
      assert.equal(s.duplicates, 1);
      assert.equal(set.replicateCalls[1], 1);
      assert.ok(client.stats().retries >= 1);
      // The client keeps working against the new primary.
      await client.put('y', '1');
      assert.equal(await client.get('y'), '1');
    });
  });

test('client: timeouts reject with coded errors', async () => {
  await withSet({ timeoutMs: 300 }, async (set, client) => {
    set.hang = true;
    // Proposed and never answered: it may have run.
    await assert.rejects(client.put('a', '1'), { code: 'PAXLINE_OUTCOME_UNKNOWN' });
    // A read changes nothing: a plain timeout.
    await assert.rejects(client.get('a'), { code: 'PAXLINE_TIMEOUT' });
    set.hang = false;
    await client.put('a', '2'); // a later call still works; the abandoned seq is acked below
    assert.equal(await client.get('a'), '2');
  });
  await withSet({ timeoutMs: 300, connectTimeoutMs: 100 }, async (set, client) => {
    await set.close(); // every replica down: nothing can have been sent
    await assert.rejects(client.put('a', '1'), { code: 'PAXLINE_TIMEOUT' });
  });
});

test('client: a stale get uses fastRead, a plain get goes through the log', async () => {
  await withSet({}, async (set, client) => {
    await client.put('s', 'v');
    const replicateBefore = set.replicateCalls.reduce((a, b) => a + b, 0);
    assert.equal(await client.get('s', { stale: true }), 'v');
    assert.equal(await client.get('missing', { stale: true }), null);
    assert.equal(set.fastReadCalls.reduce((a, b) => a + b, 0), 2);
    assert.equal(set.replicateCalls.reduce((a, b) => a + b, 0), replicateBefore);
    assert.equal(await client.get('s'), 'v');
    assert.equal(set.replicateCalls.reduce((a, b) => a + b, 0), replicateBefore + 1);
  });
});

test('client: many calls in flight with a small window; acked results are forgotten', async () => {
  await withSet({ windowMax: 4 }, async (set, client) => {
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 100; i++) calls.push(client.put(`p${i}`, String(i)));
    await Promise.all(calls);
    for (let i = 0; i < 100; i++) assert.equal(set.machine.get(`p${i}`), String(i));
    await client.put('last', '1');
    const info = set.machine.clientInfo(client.clientId);
    assert.ok(info !== null);
    assert.ok(info.liveResults <= 4, `${info.liveResults} results kept`);
    assert.equal(info.ackedBelow, 101);
  });
});

test('client and server: options are validated, naming the field', async () => {
  assert.throws(() => connectClient({ replicas: [] }),
    { code: 'PAXLINE_BAD_OPTION', field: 'replicas' });
  assert.throws(() => connectClient({ replicas: ['127.0.0.1:1', 'nope'] }),
    { code: 'PAXLINE_BAD_OPTION', field: 'replicas[1]' });
  assert.throws(() => connectClient({ replicas: ['127.0.0.1:1'], timeoutMs: 0 }),
    { code: 'PAXLINE_BAD_OPTION', field: 'timeoutMs' });
  const replica: ReplicaForClients = {
    replicate: async () => new Uint8Array(0),
    fastRead: async () => new Uint8Array(0),
  };
  await assert.rejects(startClientServer({ host: '127.0.0.1', port: -1, replica,
    clientAddressOf: () => undefined }), { code: 'PAXLINE_BAD_OPTION', field: 'port' });
  const client = connectClient({ replicas: ['127.0.0.1:1'] });
  await assert.rejects(client.put('k'.repeat(2000), 'v'),
    { code: 'PAXLINE_INVALID_ARGUMENT', field: 'key' });
  await client.close();
  await assert.rejects(client.get('k'), { code: 'PAXLINE_CLOSED' });
});

test('server: a malformed request is answered PAXLINE_PROTOCOL; an unreadable stream is closed',
  async () => {
    const set = await FakeReplicaSet.start();
    const socket = net.connect({ host: '127.0.0.1', port: set.servers[0]!.port });
    try {
      const reader = new FrameReader();
      const frames: Buffer[] = [];
      const got = new Promise<void>((resolve) => {
        socket.on('data', (chunk: Buffer) => {
          reader.push(chunk, (f) => frames.push(Buffer.from(f)));
          if (frames.length > 0) resolve();
        });
      });
      socket.write(encodeFrame([99, 5, 1, new Uint8Array(1), null, null])); // bad version
      await got;
      assert.deepEqual(decodeResponse(frames[0]!), { requestId: 5, status: 'error',
        code: 'PAXLINE_PROTOCOL', message: 'unsupported protocol version 99' });
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write(Buffer.from([0xff, 0xff, 0xff, 0xff])); // a length past the limit
      await closed;
      assert.equal(set.servers[0]!.stats().protocolErrorsTotal, 2);
    } finally {
      socket.destroy();
      await set.close();
    }
  });
