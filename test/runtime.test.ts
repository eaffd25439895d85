/**
 * The worker-thread runtime in one process: three replicas (each: log-fsync, apply and
 * network+consensus workers) on 127.0.0.1 with real files and fdatasync. Election, replicate on
 * the primary, coded rejections elsewhere, fast reads, a secondary closed and restarted from its
 * disk (catches up), a whole-cluster restart (state recovered from log and checkpoint), and the
 * data-directory guards.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createReplica, type PaxlineReplica } from '../src/runtime/replica.js';
import type { ReplicaOptions } from '../src/runtime/options.js';
import { eventually, freePorts } from './support/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const machine = join(here, 'support', 'counter-machine.js');
const base = mkdtempSync(join(tmpdir(), 'paxline-runtime-'));
after(() => rmSync(base, { recursive: true, force: true }));
const dec = new TextDecoder();
const enc = new TextEncoder();

async function cluster(name: string, init: boolean, ports?: number[]): Promise<{ replicas: PaxlineReplica[]; options: ReplicaOptions[]; ports: number[] }> {
  const p = ports ?? await freePorts(3);
  const members = p.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const options = members.map((m): ReplicaOptions => ({
    clusterId: name, replicaId: m.id, members, dataDir: join(base, name, `r${m.id}`), init,
    stateMachine: machine, checkpointEveryDecrees: 50,
  }));
  const replicas = await Promise.all(options.map((o) => createReplica(o)));
  return { replicas, options, ports: p };
}

async function primaryOf(replicas: readonly PaxlineReplica[]): Promise<PaxlineReplica> {
  const p = await eventually('a primary', () => replicas.find((r) => r.role === 'primary'));
  return p!;
}

test('runtime: three replicas elect a primary, replicate, reject elsewhere, serve fast reads, restart from disk', async () => {
  const { replicas, options, ports } = await cluster('c1', true);
  try {
    const primary = await primaryOf(replicas);
    const results = await Promise.all(Array.from({ length: 2000 }, (_, i) => primary.replicate(enc.encode(`cmd${i}`))));
    const counts = results.map((r) => Number(dec.decode(r).split(':')[0]));
    assert.deepEqual([...counts].sort((a, b) => a - b), Array.from({ length: 2000 }, (_, i) => i + 1), 'each command executed once, in some order');

    const secondary = replicas.find((r) => r !== primary)!;
    await assert.rejects(secondary.replicate(enc.encode('x')), (e: { code?: string; primary?: number }) =>
      e.code === 'PAXLINE_NOT_PRIMARY' && e.primary === primary.replicaId);

    for (const r of replicas) {
      await eventually(`replica ${r.replicaId} executes 2000`, async () => dec.decode(await r.fastRead(new Uint8Array(0))) === '2000');
    }
    const s = await primary.status();
    assert.equal(s.role, 'primary');
    assert.ok((await primary.checkpoint()) >= s.decrees.executed, 'checkpoint() writes one at the executed decree');
    assert.ok(s.decrees.committed >= 1 && s.log.fsyncs >= 1 && s.commandsExecuted === 2000);
    // Every stage reports its own V8 heap (sampled about once a second).
    await eventually('every stage has sampled its heap', async () => {
      const h = (await primary.status()).heapUsedBytes;
      return h.main > 0 && h.consensus > 0 && h.log > 0 && h.apply > 0;
    });

    // A secondary stops; the other two keep committing; it restarts from its disk and catches up.
    const idx = replicas.indexOf(secondary);
    await secondary.close();
    await assert.rejects(secondary.replicate(enc.encode('y')), { code: 'PAXLINE_SHUTTING_DOWN' });
    await Promise.all(Array.from({ length: 500 }, (_, i) => primary.replicate(enc.encode(`more${i}`))));
    const restarted = await createReplica({ ...options[idx]!, init: false });
    replicas[idx] = restarted;
    assert.ok(restarted.incarnation >= 2, 'the incarnation was bumped');
    await eventually('the restarted replica catches up', async () => dec.decode(await restarted.fastRead(new Uint8Array(0))) === '2500');
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }

  // The whole cluster restarts from disk: state is recovered (checkpoint + log) and continues.
  const again = await cluster('c1', false, ports);
  try {
    const primary = await primaryOf(again.replicas);
    const r = dec.decode(await primary.replicate(enc.encode('after restart')));
    assert.equal(r.split(':')[0], '2501', 'the count continues after a full restart');
    const st = await Promise.all(again.replicas.map((x) => x.status()));
    assert.ok(st.some((x) => x.decrees.checkpoint > 0), 'a checkpoint was loaded or taken');
  } finally {
    await Promise.all(again.replicas.map((x) => x.close()));
  }
});

test('runtime: data-directory guards and option validation', async () => {
  const [port] = await freePorts(1);
  const members = [{ id: 1, host: '127.0.0.1', port: port! }];
  const o: ReplicaOptions = { clusterId: 'g', replicaId: 1, members, dataDir: join(base, 'guard'), stateMachine: machine };
  await assert.rejects(createReplica(o), { code: 'PAXLINE_DATA_DIR_EMPTY' });
  const r = await createReplica({ ...o, init: true });
  assert.throws(() => r.stalls('yesterday' as unknown as number), (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'sinceMs');
  assert.ok(Array.isArray(r.stalls()));
  await r.close();
  await assert.rejects(createReplica({ ...o, clusterId: 'other' }), { code: 'PAXLINE_DATA_DIR_MISMATCH' });
  await assert.rejects(createReplica({ ...o, replicaId: 7 }), (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'members');
  await assert.rejects(createReplica({ ...o, tickMs: 0 }), (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'tickMs');
  await assert.rejects(createReplica({ ...o, stateMachine: join(here, 'nope.js') }));
  for (const batchDelayMs of [-1, 1.5, 1001]) {
    await assert.rejects(createReplica({ ...o, batchDelayMs }), (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'batchDelayMs');
  }
  for (const stallThresholdMs of [-1, Number.NaN, 60_001]) {
    await assert.rejects(createReplica({ ...o, stallThresholdMs }), (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'stallThresholdMs');
  }
});

test('runtime: batchDelayMs holds proposals so commands sent apart share a decree', async () => {
  const ports = await freePorts(3);
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const replicas = await Promise.all(members.map((m) => createReplica({
    clusterId: 'delay', replicaId: m.id, members, dataDir: join(base, 'delay', `r${m.id}`), init: true,
    stateMachine: machine, batchDelayMs: 300,
  })));
  try {
    const primary = await primaryOf(replicas);
    // The first command in a while is cut at once; the next nine, sent 5 ms apart (well inside
    // the 300 ms delay), wait for the next cut together. Without the delay each would be a
    // decree of its own (the pipeline has room).
    const decreeOf = (r: Uint8Array): number => Number(dec.decode(r).split(':')[2]);
    await primary.replicate(enc.encode('warm'));
    const pending: Promise<Uint8Array>[] = [];
    for (let i = 0; i < 10; i++) {
      pending.push(primary.replicate(enc.encode(`c${i}`)));
      await new Promise((r) => setTimeout(r, 5));
    }
    const decrees = (await Promise.all(pending)).map(decreeOf);
    assert.ok(decrees.every((d, i) => i === 0 || d >= decrees[i - 1]!), `in order: ${decrees}`);
    assert.ok(new Set(decrees.slice(1)).size <= 2, `commands 2–10 in at most two decrees: ${decrees}`);
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
});

test('runtime: batchDelayMs cuts full batches at once, holds only the rest, and holds nothing on a secondary', async () => {
  const ports = await freePorts(3);
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const replicas = await Promise.all(members.map((m) => createReplica({
    clusterId: 'delayfull', replicaId: m.id, members, dataDir: join(base, 'delayfull', `r${m.id}`), init: true,
    stateMachine: machine, batchDelayMs: 1000, batchCountMax: 4,
  })));
  try {
    const primary = await primaryOf(replicas);
    const decreeOf = (r: Uint8Array): number => Number(dec.decode(r).split(':')[2]);
    await primary.replicate(enc.encode('warm')); // a cut now: the next ones come within the delay
    let restSettled = false;
    const burst = Array.from({ length: 10 }, (_, i) => primary.replicate(enc.encode(`b${i}`)));
    const rest = Promise.all(burst.slice(8)).finally(() => { restSettled = true; });
    const full = (await Promise.all(burst.slice(0, 8))).map(decreeOf);
    assert.equal(new Set(full).size, 2, `two full batches of 4: ${full}`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(restSettled, false, 'the last two wait for the delay (1 s after the cut)');
    const tail = (await rest).map(decreeOf);
    assert.equal(tail[0], tail[1]);
    assert.ok(tail[0]! > Math.max(...full));
    // A secondary holds nothing: its commands are refused at once, not after the delay.
    const secondary = replicas.find((r) => r !== primary)!;
    const t0 = performance.now();
    const refused = await Promise.allSettled([1, 2, 3].map((i) => secondary.replicate(enc.encode(`s${i}`))));
    assert.ok(refused.every((x) => x.status === 'rejected' && (x.reason as { code?: string }).code === 'PAXLINE_NOT_PRIMARY'));
    assert.ok(performance.now() - t0 < 900, 'refused without waiting for batchDelayMs (1,000 ms)');
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
});

test('runtime: an apply stage that crashes while the consensus stage starts fails createReplica', { timeout: 30_000 }, async () => {
  // secondaryApplyNice 0: no probe thread, so nothing yields between the factory and "ready" —
  // the crash comes after the apply stage is ready, while the consensus stage is starting.
  const [port] = await freePorts(1);
  const members = [{ id: 1, host: '127.0.0.1', port: port! }];
  await assert.rejects(createReplica({
    clusterId: 'crash', replicaId: 1, members, dataDir: join(base, 'crash'), init: true,
    stateMachine: join(here, 'support', 'crash-after-ready-machine.js'), secondaryApplyNice: 0,
  }), (e: { code?: string; message?: string }) =>
    e.code === 'PAXLINE_STAGE_FAILED' && /apply stage crashed during start: deliberate crash/.test(e.message ?? ''));
});

test('runtime: canBecomePrimary() false keeps a replica from standing for primary', async () => {
  const ports = await freePorts(3);
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const replicas = await Promise.all(members.map((m) => createReplica({
    clusterId: 'cand', replicaId: m.id, members, dataDir: join(base, 'cand', `r${m.id}`), init: true,
    stateMachine: machine, stateMachineOptions: { noCandidacy: [1, 2] },
  })));
  try {
    const primary = await primaryOf(replicas);
    assert.equal(primary.replicaId, 3, 'only replica 3 may become primary');
    assert.equal(dec.decode(await primary.replicate(enc.encode('a'))).split(':')[0], '1');
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
});

test('runtime: retention retires log segments below the checkpoints and the retention floor; restart still recovers', async () => {
  const ports = await freePorts(3);
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const options = members.map((m): ReplicaOptions => ({
    clusterId: 'ret', replicaId: m.id, members, dataDir: join(base, 'ret', `r${m.id}`), init: true,
    stateMachine: machine, segmentBytes: 128 * 1024, batchBytesMax: 8192, checkpointEveryDecrees: 25, checkpointsKept: 2,
    stallThresholdMs: 1e-6, // the stall journal keeps every log group and checkpoint
  }));
  let replicas = await Promise.all(options.map((o) => createReplica(o)));
  try {
    const primary = await primaryOf(replicas);
    for (let i = 0; i < 150; i++) {
      // Eight at a time: many small decrees, so the log rolls over and checkpoints are taken.
      await Promise.all(Array.from({ length: 8 }, (_, j) => primary.replicate(enc.encode(`retained ${i}/${j} `.padEnd(200, '.')))));
    }
    for (const r of replicas) {
      const s = await eventually(`replica ${r.replicaId} retires segments`, async () => {
        const st = await r.status();
        return st.log.segmentsRetired > 0 ? st : null;
      }, 30_000, 100);
      assert.ok(s!.log.retentionFloor > 0 && s!.log.segmentsCreated > s!.log.segmentsRetired);
      // The stall journal saw the log groups, the rollovers among them and the checkpoint writes.
      const stalls = r.stalls();
      const count = (kind: string, thread: string): number => stalls.filter((e) => e.kind === kind && e.thread === thread).length;
      assert.ok(count('fsync', 'log') > 0 && count('checkpoint', 'checkpoint') > 0, `replica ${r.replicaId}: log groups and checkpoints`);
      assert.ok(count('rollover', 'log') >= 1, `replica ${r.replicaId}: rollovers`);
      assert.ok(stalls.every((e, i) => e.ms > 0 && (i === 0 || e.atMs >= stalls[i - 1]!.atMs)));
    }
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
  // Everything restarts from disk: newest checkpoint plus the segments kept after it.
  replicas = await Promise.all(options.map((o) => createReplica({ ...o, init: false })));
  try {
    const primary = await primaryOf(replicas);
    assert.equal(dec.decode(await primary.replicate(enc.encode('after'))).split(':')[0], '1201');
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
});
