/**
 * Checkpoints written off the apply thread (src/runtime/checkpoint-writer.ts, decision 0010):
 * the in-memory capture, the writer thread (real files, fdatasync), its coded failures, and a
 * replica that checkpoints by bytes of log (checkpointEveryBytes) and restarts from one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listCheckpoints, openNewestValidCheckpoint } from '../src/log/checkpoint.js';
import { KV_MACHINE_PATH } from '../src/index.js';
import { encodeKvCommand } from '../src/kv/kv-codec.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { checkpointDirOf } from '../src/runtime/apply-stage.js';
import { CheckpointWriterHost, StateBuffer } from '../src/runtime/checkpoint-writer.js';
import { createReplica, type PaxlineReplica } from '../src/runtime/replica.js';
import type { ReplicaOptions } from '../src/runtime/options.js';
import { eventually, freePorts } from './support/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const machine = join(here, 'support', 'counter-machine.js');
const base = mkdtempSync(join(tmpdir(), 'paxline-ckpt-writer-'));
after(() => rmSync(base, { recursive: true, force: true }));
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Deterministic bytes: b[i] = (i·31 + seed) mod 251. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) % 251;
  return b;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), at += p.length;
  return out;
}

function readAll(dir: string): { decree: number; bytes: Uint8Array } | null {
  let got: Uint8Array[] = [];
  const r = openNewestValidCheckpoint(new NodeFileLayer(), dir, (reader) => {
    got = [];
    for (let c = reader.read(1 << 20); c !== null; c = reader.read(1 << 20)) got.push(c);
    return true;
  });
  return r.loaded === null ? null : { decree: r.loaded.decree, bytes: concat(got) };
}

test('StateBuffer keeps the stream in order across its 4 MiB chunks and copies what it is given', () => {
  const buf = new StateBuffer();
  const parts = [pattern(10, 1), pattern(4 * 1024 * 1024 - 3, 2), pattern(9 * 1024 * 1024, 3), new Uint8Array(0), pattern(1, 4)];
  const reused = new Uint8Array(5);
  for (const p of parts) buf.write(p);
  reused.fill(7);
  buf.write(reused);
  reused.fill(9); // the buffer copied it: this must not show
  const total = parts.reduce((s, p) => s + p.length, 0) + 5;
  assert.equal(buf.bytesWritten, total);
  const chunks = buf.take();
  assert.equal(chunks.length, 4, 'ceil(total / 4 MiB) chunks');
  assert.ok(chunks.slice(0, -1).every((c) => c.length === 4 * 1024 * 1024), 'every chunk but the last is full');
  assert.deepEqual(concat(chunks), concat([...parts, new Uint8Array(5).fill(7)]));
  assert.equal(buf.bytesWritten, 0, 'take() empties the buffer');
  assert.deepEqual(buf.take(), []);
});

test('the writer thread makes the capture a durable, verifiable checkpoint and keeps the newest ones', async () => {
  const dir = join(base, 'host');
  const host = new CheckpointWriterHost(dir, 2);
  try {
    const states = new Map<number, Uint8Array>();
    for (const decree of [10, 20, 30]) {
      const buf = new StateBuffer();
      const state = pattern(5 * 1024 * 1024 + decree, decree);
      buf.write(state);
      states.set(decree, state);
      const w = await host.write({ decree, ballot: 7, configNumber: 1, members: [1, 2, 3] }, buf.take());
      assert.equal(w.decree, decree);
      assert.equal(w.oldestKept, decree === 10 ? 10 : decree - 10, 'the oldest of the two kept');
      const back = readAll(dir);
      assert.equal(back?.decree, decree, 'the newest checkpoint is the one just written');
      assert.deepEqual(back?.bytes, state, 'its stream is the captured state, byte for byte');
    }
    assert.deepEqual(listCheckpoints(new NodeFileLayer(), dir).map((c) => c.decree), [20, 30], 'older ones removed');
    assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temp file left');
  } finally {
    await host.close();
  }
});

test('a checkpoint the writer thread cannot write rejects with a coded error; the host stays usable', async () => {
  const blocker = join(base, 'a-file');
  writeFileSync(blocker, 'not a directory');
  const host = new CheckpointWriterHost(join(blocker, 'checkpoints'), 2);
  try {
    for (let i = 0; i < 2; i++) {
      const buf = new StateBuffer();
      buf.write(pattern(100, i));
      await assert.rejects(host.write({ decree: 5 + i, ballot: 1, configNumber: 1, members: [1] }, buf.take()),
        (e: { code?: string; message?: string }) => typeof e.code === 'string' && e.code.startsWith('PAXLINE_') && /checkpoints/.test(e.message ?? ''));
    }
  } finally {
    await host.close();
  }
});

/** Options of a one-member replica set on a free port, data under `base/name`. */
async function singleMember(name: string, more: Partial<ReplicaOptions>): Promise<ReplicaOptions> {
  const [port] = await freePorts(1);
  const members = [{ id: 1, host: '127.0.0.1', port: port! }];
  return { clusterId: name, replicaId: 1, members, dataDir: join(base, name), init: true, stateMachine: machine, ...more };
}

test('runtime: checkpointEveryBytes takes checkpoints by bytes of log; a restart loads the newest', async () => {
  const o = await singleMember('bytes', { checkpointEveryBytes: 16 * 1024, checkpointEveryDecrees: 0, checkpointsKept: 2 });
  await assert.rejects(createReplica({ ...o, checkpointEveryBytes: -1 }),
    (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'checkpointEveryBytes');
  let r: PaxlineReplica = await createReplica(o);
  try {
    await eventually('replica 1 is primary', () => r.role === 'primary');
    // 64 rounds of 16 commands of ~200 bytes: ~200 KiB of records, so several checkpoints.
    const payload = 'x'.repeat(200);
    for (let round = 0; round < 64; round++) {
      await Promise.all(Array.from({ length: 16 }, (_, i) => r.replicate(enc.encode(`${payload}${round}.${i}`))));
    }
    const s = await eventually('checkpoints were written', async () => {
      const st = await r.status();
      return st.checkpoints >= 3 ? st : undefined;
    });
    assert.ok(s!.decrees.checkpoint > 0);
    // While a write is in flight there may be one more (the new file appears before the oldest
    // goes); once the writes triggered by the load are done, checkpointsKept bounds the files.
    await eventually('checkpointsKept bounds the files', () => {
      const n = listCheckpoints(new NodeFileLayer(), checkpointDirOf(o.dataDir)).length;
      return n >= 1 && n <= 2;
    });
    // checkpoint() after the automatic ones: a new one at (at least) what has executed.
    const executed = (await r.status()).decrees.executed;
    assert.ok((await r.checkpoint()) >= executed);
  } finally {
    await r.close();
  }
  r = await createReplica({ ...o, init: false });
  try {
    await eventually('replica 1 is primary again', () => r.role === 'primary');
    const st = await r.status();
    assert.ok(st.decrees.checkpoint > 0, 'started from a checkpoint');
    assert.equal(dec.decode(await r.replicate(enc.encode('after'))).split(':')[0], String(64 * 16 + 1), 'the count continues');
  } finally {
    await r.close();
  }
});

test('runtime: close() while checkpoints are being written and asked for leaves no temp file; every call settles', async () => {
  // The KV machine with ~16 MiB of values: each checkpoint takes long enough to write that
  // close() arrives while one is in flight and others wait behind it.
  const o = await singleMember('closing', { stateMachine: KV_MACHINE_PATH });
  const r = await createReplica(o);
  await eventually('replica 1 is primary', () => r.role === 'primary');
  const value = 'v'.repeat(8000);
  for (let round = 0; round < 16; round++) {
    await Promise.all(Array.from({ length: 128 }, (_, i) => r.replicate(encodeKvCommand({
      op: 'put', clientId: 7, seq: round * 128 + i + 1, ackedBelow: 1, key: `k${round}.${i}`, value,
    }))));
  }
  // Several at once: the apply stage writes one and queues the others behind it, then close()
  // arrives while they wait.
  const settling = Promise.allSettled(Array.from({ length: 4 }, () => r.checkpoint()));
  await r.close();
  const settled = await settling;
  for (const s of settled) {
    if (s.status === 'fulfilled') assert.ok(s.value >= 1, 'a checkpoint at an executed decree');
    else assert.match(String((s.reason as { code?: string }).code), /^PAXLINE_/, 'a coded rejection');
  }
  const dir = checkpointDirOf(o.dataDir);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no half-written checkpoint left behind');
  for (const c of listCheckpoints(new NodeFileLayer(), dir)) assert.ok(c.decree >= 1);
});
