/**
 * Real replica processes on loopback (`paxline start` × 3), driven through the key-value client
 * protocol, with every client history checked by the linearizability checker:
 *  - writes through every replica (followers redirect to the primary);
 *  - kill -9 of the primary under load → a new primary commits within 2× the election timeout;
 *    the killed replica restarts from its disk and catches up;
 *  - SIGSTOP of a secondary for 10 s under load → commits continue; after SIGCONT it catches up;
 *  - a replica restarted after the others moved far ahead catches up;
 *  - graceful shutdown (SIGTERM → exit code 0); bad config and CLI input give clear errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkLinearizable } from '../src/check/linearizability.js';
import type { KvOperation } from '../src/check/history.js';
import { queryStatus } from '../src/cli/status.js';
import { connectClient, type KvClient } from '../src/kv/client.js';
import { eventually } from './support/ports.js';
import { CLI_PATH, ProcessCluster } from './support/process-cluster.js';

const ELECTION_MS_MAX = 1000;
const TIMING = { electionTimeoutMsMin: 500, electionTimeoutMsMax: ELECTION_MS_MAX, heartbeatMs: 50, tickMs: 25 };

const nowUs = (): number => Math.round(performance.now() * 1000);

/** The replica that most recently announced itself primary, from the replicas' stderr. */
function currentPrimary(cluster: ProcessCluster, exclude: number[] = []): number | null {
  for (const r of cluster.replicas) {
    if (exclude.includes(r.id) || !r.child) continue;
    const roles = [...r.stderr.matchAll(/replica (\d+) is (primary|secondary|preparing)/g)];
    if (roles.at(-1)?.[2] === 'primary') return r.id;
  }
  return null;
}

/** Closed-loop virtual clients doing put/get/cas on a few keys, recording a history. */
class Load {
  readonly history: KvOperation[] = [];
  acked = 0;
  lastAckUs = 0;
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly clients: KvClient[] = [];
  private nextId = 0;

  constructor(addresses: string[], clients: number, keys: number) {
    for (let c = 0; c < clients; c++) {
      // Each virtual client starts at a different replica, so writes enter through every one.
      const rotated = [...addresses.slice(c % addresses.length), ...addresses.slice(0, c % addresses.length)];
      const client = connectClient({ replicas: rotated, timeoutMs: 8000 });
      this.clients.push(client);
      this.loops.push(this.run(client, c, keys));
    }
  }

  private async run(client: KvClient, c: number, keys: number): Promise<void> {
    let n = 0;
    while (!this.stopped) {
      const key = `k${(c + n) % keys}`;
      const kind = n % 5;
      n++;
      const callTime = nowUs();
      const id = this.nextId++;
      let input: KvOperation['input'];
      let run: () => Promise<KvOperation['output']>;
      if (kind === 1 || kind === 3) {
        input = { kind: 'get' };
        run = () => client.get(key);
      } else if (kind === 4) {
        const expected = `c${c}-${n - 2}`;
        input = { kind: 'cas', expected, value: `c${c}-${n}` };
        run = () => client.cas(key, expected, `c${c}-${n}`);
      } else {
        input = { kind: 'put', value: `c${c}-${n}` };
        run = async () => (await client.put(key, `c${c}-${n}`), 'ok');
      }
      try {
        const output = await run();
        const returnTime = nowUs();
        this.history.push({ id, clientId: c, key, input, callTime, returnTime, output });
        this.acked++;
        this.lastAckUs = returnTime;
      } catch (e) {
        const code = (e as { code?: string }).code;
        // Never proposed: it did not happen. Anything else may have happened.
        if (code !== 'PAXLINE_NOT_PRIMARY' && code !== 'PAXLINE_BUSY') {
          this.history.push({ id, clientId: c, key, input, callTime, returnTime: null, output: null });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.close()));
  }
}

async function ackedSince(load: Load, sinceUs: number, count: number, what: string, timeoutMs = 30_000): Promise<void> {
  await eventually(what, () => load.history.filter((o) => o.returnTime !== null && o.callTime >= sinceUs).length >= count, timeoutMs);
}

/** Waits until replica `id`'s local state (a stale read) shows `key` = `value`. */
async function caughtUp(cluster: ProcessCluster, id: number, key: string, value: string): Promise<void> {
  const local = connectClient({ replicas: [cluster.replicas[id - 1]!.client], timeoutMs: 2000 });
  try {
    await eventually(`replica ${id} catches up to ${key}=${value}`, async () => (await local.get(key, { stale: true })) === value, 60_000, 100);
  } finally {
    await local.close();
  }
}

test('processes: kill -9 of the primary, restart and catch-up, SIGSTOP of a secondary; history linearizable', { timeout: 240_000 }, async () => {
  const cluster = await ProcessCluster.create(3, TIMING);
  const admin = connectClient({ replicas: cluster.clientAddresses, timeoutMs: 10_000 });
  let load: Load | null = null;
  try {
    await cluster.startAll(true);
    load = new Load(cluster.clientAddresses, 6, 4);
    await ackedSince(load, 0, 300, 'first writes');

    // kill -9 the primary.
    const primary = await eventually('a primary', () => currentPrimary(cluster));
    const killedAt = nowUs();
    await cluster.stop(primary!, 'SIGKILL');
    await ackedSince(load, killedAt, 1, 'a write after the kill');
    const firstAck = Math.min(...load.history.filter((o) => o.returnTime !== null && o.callTime >= killedAt).map((o) => o.returnTime!));
    const failoverMs = (firstAck - killedAt) / 1000;
    const newPrimary = await eventually('a new primary', () => currentPrimary(cluster, [primary!]));
    assert.notEqual(newPrimary, primary);
    process.stderr.write(`failover: first write committed by the new primary ${failoverMs.toFixed(0)} ms after kill -9\n`);
    assert.ok(failoverMs <= 2 * ELECTION_MS_MAX, `a new primary committed ${failoverMs.toFixed(0)} ms after kill -9 (limit ${2 * ELECTION_MS_MAX})`);
    await ackedSince(load, killedAt, 200, 'writes continue on the new primary');

    // The killed replica restarts from its disk (no --init) and catches up.
    await cluster.start(primary!, false);
    await admin.put('mark1', 'after-restart');
    await caughtUp(cluster, primary!, 'mark1', 'after-restart');

    // SIGSTOP a secondary for 10 s under load: commits continue; after SIGCONT it catches up.
    const leader = await eventually('the primary', () => currentPrimary(cluster));
    const frozen = cluster.replicas.find((r) => r.id !== leader)!.id;
    cluster.signal(frozen, 'SIGSTOP');
    const stoppedAt = nowUs();
    await new Promise((r) => setTimeout(r, 10_000));
    const duringStop = load.history.filter((o) => o.returnTime !== null && o.callTime >= stoppedAt).length;
    cluster.signal(frozen, 'SIGCONT');
    assert.ok(duringStop >= 100, `commits continued while replica ${frozen} was stopped (${duringStop} acknowledged)`);
    await admin.put('mark2', 'after-sigcont');
    await caughtUp(cluster, frozen, 'mark2', 'after-sigcont');

    await load.stop();
    const history = load.history;
    load = null;
    // Every key read once more through the log, so lost writes would show up as violations.
    for (let k = 0; k < 4; k++) {
      const callTime = nowUs();
      const output = await admin.get(`k${k}`);
      history.push({ id: 1e9 + k, clientId: 99, key: `k${k}`, input: { kind: 'get' }, callTime, returnTime: nowUs(), output });
    }
    const known = history.filter((o) => o.returnTime !== null).length;
    process.stderr.write(`history: ${history.length} operations, ${known} with known outcome\n`);
    const lin = checkLinearizable(history);
    assert.ok(lin.ok, `linearizable: ${JSON.stringify(lin).slice(0, 500)}`);

    // Graceful shutdown: SIGTERM → exit code 0.
    for (const r of cluster.replicas) {
      const res = await cluster.stop(r.id, 'SIGTERM');
      assert.equal(res.code, 0, `replica ${r.id} exits 0 on SIGTERM (stderr: ${r.stderr.slice(-300)})`);
    }
  } finally {
    await load?.stop();
    await admin.close();
    await cluster.destroy();
  }
});

test('processes: a replica restarted after the others moved far ahead catches up (served from their logs)', { timeout: 180_000 }, async () => {
  // retainDecrees 8: the others keep only 8 decrees below their commit point in memory, so the
  // lagging replica's catch-up is answered from their logs on disk.
  const cluster = await ProcessCluster.create(3, { ...TIMING, retainDecrees: 8 });
  const client = connectClient({ replicas: cluster.clientAddresses, timeoutMs: 10_000 });
  try {
    await cluster.startAll(true);
    await client.put('x', '0');
    const primary = await eventually('a primary', () => currentPrimary(cluster));
    const lagger = cluster.replicas.find((r) => r.id !== primary)!.id;
    assert.equal((await cluster.stop(lagger, 'SIGTERM')).code, 0);
    // 20,000 writes while it is down, 500 in flight.
    for (let batch = 0; batch < 40; batch++) {
      await Promise.all(Array.from({ length: 500 }, (_, i) => client.put(`key${i}`, `v${batch}`)));
    }
    await client.put('x', 'last');
    await cluster.start(lagger, false);
    await caughtUp(cluster, lagger, 'x', 'last');
    const served = await Promise.all(cluster.replicas.filter((r) => r.id !== lagger).map((r) => {
      const [host, port] = r.client.split(':');
      return queryStatus(host!, Number(port), 5000);
    }));
    const reads = served.reduce((n, s) => n + ('error' in s ? 0 : s.log.readsServed), 0);
    assert.ok(reads > 0, 'the catch-up was answered from the others\' logs');
    const local = connectClient({ replicas: [cluster.replicas[lagger - 1]!.client] });
    try {
      assert.equal(await local.get('key499', { stale: true }), 'v39');
    } finally {
      await local.close();
    }
  } finally {
    await client.close();
    await cluster.destroy();
  }
});

test('processes: bad config and CLI input give clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paxline-badcfg-'));
  try {
    const run = (...args: string[]): { status: number | null; stderr: string } => {
      const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 30_000 });
      return { status: r.status, stderr: r.stderr };
    };
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ clusterId: 'b', replicas: [{ id: 1, peer: '127.0.0.1', client: '127.0.0.1:7', dataDir: 'r1' }] }));
    let r = run('start', '--config', cfg, '--id', '1');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.json: replicas\[0\]\.peer: must be "host:port"/);
    writeFileSync(cfg, '{ "clusterId": "b", ');
    r = run('start', '--config', cfg, '--id', '1');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.json: \(file\): not valid JSON/);
    writeFileSync(cfg, JSON.stringify({ clusterId: 'b', replicas: [{ id: 1, peer: '127.0.0.1:1', client: '127.0.0.1:2', dataDir: 'r1' }], options: { tickMz: 3 } }));
    r = run('start', '--config', cfg, '--id', '1');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /options\.tickMz: unknown option/);
    writeFileSync(cfg, JSON.stringify({ clusterId: 'b', replicas: [{ id: 1, peer: '127.0.0.1:1', client: '127.0.0.1:2', dataDir: 'r1' }] }));
    r = run('start', '--config', cfg, '--id', '2');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--id 2: not a replica/);
    r = run('start', '--config', cfg, '--id', '1');
    assert.equal(r.status, 2, 'an empty data directory without --init is refused');
    assert.match(r.stderr, /holds no replica metadata.*--init/);
    r = run('start', '--config', cfg, '--idd', '1');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown flag --idd/);
    r = run('kv', '--config', cfg, 'put', 'onlykey');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /kv put: expected 2 argument/);
    r = run('frobnicate');
    assert.equal(r.status, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
