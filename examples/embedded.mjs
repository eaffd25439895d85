// Three replicas of the built-in key-value state machine in one Node process (each replica runs
// its own log-fsync, apply and network+consensus worker threads, and writes real files with
// fdatasync), then 16-byte puts through the library API on the primary, many in flight.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReplica, decodeKvResult, encodeKvCommand, KV_MACHINE_PATH } from 'paxline';

const seconds = Number(process.env.SECONDS_TO_RUN ?? 5);
const inflight = 1024;
const dir = mkdtempSync(join(tmpdir(), 'paxline-example-'));
const members = [1, 2, 3].map((id) => ({ id, host: '127.0.0.1', port: 17400 + id }));
const replicas = await Promise.all(members.map((m) => createReplica({
  clusterId: 'example', replicaId: m.id, members, dataDir: join(dir, `r${m.id}`),
  init: true, // a new cluster: empty data directories are allowed
  stateMachine: KV_MACHINE_PATH,
})));
const primary = await new Promise((resolve) => {
  const found = replicas.find((r) => r.role === 'primary');
  if (found) return resolve(found);
  for (const r of replicas) r.once('primary', () => resolve(r));
});
console.log(`replica ${primary.replicaId} is primary`);

let done = 0;
const until = Date.now() + seconds * 1000;
async function client(clientId) {
  for (let seq = 1; Date.now() < until; seq++) {
    // A put of a 16-byte value. The KV machine de-duplicates by (clientId, seq); ackedBelow says
    // every earlier seq of this client has its answer, so their results can be forgotten.
    const cmd = encodeKvCommand({ op: 'put', clientId, seq, ackedBelow: seq, key: `k${clientId}`, value: 'v'.repeat(16) });
    const result = decodeKvResult(await primary.replicate(cmd));
    if (result.kind !== 'ok') throw new Error(`put failed: ${JSON.stringify(result)}`);
    done++;
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: inflight }, (_, i) => client(i + 1)));
const opsPerSec = done / ((performance.now() - started) / 1000);
console.log(`${done} puts committed and executed in ${seconds} s: ${Math.round(opsPerSec)} ops/s (${inflight} in flight)`);
await Promise.all(replicas.map((r) => r.close()));
rmSync(dir, { recursive: true, force: true });
