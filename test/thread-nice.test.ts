/**
 * The apply thread's priority on secondaries (option secondaryApplyNice, src/runtime/thread-nice.ts):
 * the option, the role policy with a fake setter, the probe of whether a priority can be put back,
 * the Linux premise that a nice value set through os.setPriority(0, n) belongs to the calling
 * thread only, and a replica set whose secondaries' apply threads (and only those threads) run
 * at the raised value while the primary's does not — put back on the replica that becomes
 * primary after a failover.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseClusterConfig } from '../src/cli/cluster-config.js';
import { resolveReplicaOptions, secondaryApplyNiceOption } from '../src/runtime/options.js';
import { createReplica, type PaxlineReplica } from '../src/runtime/replica.js';
import {
  BEHIND_FILL, CAUGHT_UP_FILL, SECONDARY_APPLY_NICE_AUTO, SecondaryNice, probeNiceRestore, resolveSecondaryApplyNice,
} from '../src/runtime/thread-nice.js';
import { eventually, freePorts } from './support/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const machine = join(here, 'support', 'counter-machine.js');
const base = mkdtempSync(join(tmpdir(), 'paxline-nice-'));
after(() => rmSync(base, { recursive: true, force: true }));
const linux = process.platform === 'linux';

test('thread-nice: the increment an option resolves to', () => {
  assert.equal(resolveSecondaryApplyNice('auto', 'linux', true), SECONDARY_APPLY_NICE_AUTO);
  assert.equal(resolveSecondaryApplyNice('auto', 'linux', false), 0, 'auto is off when the priority could not be put back');
  assert.equal(resolveSecondaryApplyNice(7, 'linux', false), 7, 'an explicit value is taken as given');
  assert.equal(resolveSecondaryApplyNice('auto', 'darwin', true), 0);
  assert.equal(resolveSecondaryApplyNice(7, 'win32', true), 0);
  assert.equal(secondaryApplyNiceOption(undefined, 'darwin'), 'auto');
  assert.equal(secondaryApplyNiceOption(0, 'darwin'), 0);
  assert.equal(secondaryApplyNiceOption(7, 'linux'), 7);
  assert.throws(() => secondaryApplyNiceOption(7, 'darwin'),
    (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'secondaryApplyNice');
  const o = { clusterId: 'x', replicaId: 1, members: [{ id: 1, host: '127.0.0.1', port: 1 }], dataDir: '/tmp/x', stateMachine: 'm' };
  assert.equal(resolveReplicaOptions(o).secondaryApplyNice, 'auto');
  assert.equal(resolveReplicaOptions({ ...o, secondaryApplyNice: 0 }).secondaryApplyNice, 0);
  for (const bad of [-1, 20, 1.5, 'high']) {
    assert.throws(() => resolveReplicaOptions({ ...o, secondaryApplyNice: bad as number }),
      (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_OPTION' && e.field === 'secondaryApplyNice');
  }
  // A cluster config file may set it, 'auto' included (the only string option).
  const config = (v: unknown): string => JSON.stringify({
    clusterId: 'c', replicas: [{ id: 1, peer: '127.0.0.1:7001', client: '127.0.0.1:8001', dataDir: 'r1' }],
    options: { secondaryApplyNice: v },
  });
  assert.equal(parseClusterConfig('/tmp/c.json', config('auto')).options.secondaryApplyNice, 'auto');
  assert.equal(parseClusterConfig('/tmp/c.json', config(5)).options.secondaryApplyNice, 5);
  assert.throws(() => parseClusterConfig('/tmp/c.json', config('high')),
    (e: { code?: string; field?: string; message?: string }) => e.code === 'PAXLINE_BAD_CONFIG' && e.field === 'options.secondaryApplyNice' && /'auto'/.test(e.message ?? ''));
});

test('thread-nice: the role policy (lowered as a secondary with a known primary, put back as primary)', () => {
  const sets: number[] = [];
  const warnings: string[] = [];
  let failing = false;
  const n = new SecondaryNice(2, 3, 10, true, (v) => {
    if (failing) throw new Error('EACCES');
    sets.push(v);
  }, (m) => warnings.push(m));
  assert.equal(n.nice, 3);
  n.follow(0, -1, 0); // secondary, no primary known (just started): unchanged
  n.follow(1, -1, 0); // preparing: unchanged
  n.follow(0, 2, 0); // secondary that names itself (not a real state): unchanged
  assert.deepEqual(sets, []);
  n.follow(0, 1, 0);
  assert.deepEqual(sets, [13]);
  assert.equal(n.nice, 13);
  n.follow(0, 3, 0); // another primary, still secondary: no new call
  n.follow(1, -1, 0); // standing for election: unchanged
  assert.deepEqual(sets, [13]);
  n.follow(2, 2, 0);
  assert.deepEqual(sets, [13, 3]);
  assert.equal(n.nice, 3);
  // Lowering back is refused (no privilege): one warning, no retry until the wanted value changes.
  n.follow(0, 1, 0);
  failing = true;
  n.follow(2, 2, 0);
  n.follow(2, 2, 0);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /from 13 to 3 \(EACCES\); it stays at 13/);
  assert.equal(n.nice, 13);
  failing = false;
  n.follow(0, 1, 0); // wanted 13 again: already there
  n.follow(2, 2, 0); // wanted 3 again after a different want: retried
  assert.deepEqual(sets, [13, 3, 13, 3]);
  // A secondary whose input ring fills up runs at full priority until it has caught up.
  const behind: number[] = [];
  const b = new SecondaryNice(3, 0, 19, true, (v) => behind.push(v), () => undefined);
  b.follow(0, 1, 0.2);
  b.follow(0, 1, BEHIND_FILL - 0.01);
  assert.deepEqual(behind, [19]);
  b.follow(0, 1, BEHIND_FILL);
  assert.deepEqual(behind, [19, 0], 'behind: back to base');
  b.follow(0, 1, 0.3);
  b.follow(0, 1, CAUGHT_UP_FILL + 0.01);
  assert.deepEqual(behind, [19, 0], 'still catching up');
  b.follow(0, 1, CAUGHT_UP_FILL);
  assert.deepEqual(behind, [19, 0, 19], 'caught up: lowered again');
  b.follow(2, 3, 1);
  assert.deepEqual(behind, [19, 0, 19, 0]);
  // Capped at 19; an increment of 0 changes nothing.
  const capped: number[] = [];
  new SecondaryNice(1, 15, 19, true, (v) => capped.push(v), () => undefined).follow(0, 2, 0);
  assert.deepEqual(capped, [19]);
  const none: number[] = [];
  const offWarnings: string[] = [];
  const off = new SecondaryNice(1, 0, 0, false, (v) => none.push(v), (m) => offWarnings.push(m));
  off.follow(0, 2, 0);
  off.follow(2, 1, 0);
  assert.deepEqual(none, []);
  assert.deepEqual(offWarnings, [], 'nothing to warn about when nothing changes');
  // Without the right to put it back: one warning at the start; falling behind changes nothing.
  const stuck: number[] = [];
  const stuckWarnings: string[] = [];
  const u = new SecondaryNice(1, 0, 5, false, (v) => stuck.push(v), (m) => stuckWarnings.push(m));
  assert.equal(stuckWarnings.length, 1);
  assert.match(stuckWarnings[0]!, /secondaryApplyNice 5: .*CAP_SYS_NICE.*RLIMIT_NICE of at least 20.*nice 5.*falls behind/);
  u.follow(0, 2, 0);
  u.follow(0, 2, 1);
  u.follow(0, 2, 0);
  assert.deepEqual(stuck, [5], 'no attempt to put it back while behind');
  assert.equal(stuckWarnings.length, 1);
});

/** The nice value of each thread of this process, by thread id (Linux /proc). */
function threadNices(): Map<number, number> {
  const out = new Map<number, number>();
  for (const t of readdirSync('/proc/self/task')) {
    try {
      const st = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      out.set(Number(t), Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[16]));
    } catch { /* the thread ended */ }
  }
  return out;
}

/** Whether this process may lower a nice value to `nice`: root in the initial user namespace, or RLIMIT_NICE. */
function mayLower(nice: number): boolean {
  const uidMap = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
  const initialNs = uidMap.join(' ') === '0 0 4294967295';
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!}`);
  const limit = /^Max nice priority\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))![1]!;
  return (initialNs && ((capEff >> 23n) & 1n) === 1n) || limit === 'unlimited' || 20 - nice <= Number(limit);
}

test('thread-nice: the probe says whether a thread may put its priority back', { skip: !linux && 'Linux only' }, async () => {
  const base = getPriority(0);
  assert.equal(await probeNiceRestore(base), base < 19 && mayLower(base));
  assert.equal(await probeNiceRestore(19), false, 'nothing above 19 to raise to');
  assert.equal(getPriority(0), base, 'the probe changed nothing on this thread');
});

test('thread-nice: os.setPriority(0, n) in a worker changes that thread only (Linux)', { skip: (!linux && 'Linux only') || (getPriority(0) >= 19 && 'already at nice 19') }, async () => {
  const mainNice = getPriority(0);
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const os = require('node:os');
    const fs = require('node:fs');
    os.setPriority(0, 19);
    parentPort.postMessage({ tid: Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), nice: os.getPriority(0) });
    parentPort.once('message', () => process.exit(0));
  `, { eval: true });
  try {
    const m = await new Promise<{ tid: number; nice: number }>((resolve) => w.once('message', resolve));
    const nices = threadNices();
    assert.equal(nices.get(m.tid), 19, 'the worker thread took the new value');
    assert.equal(nices.get(process.pid), mainNice, 'the main thread kept its own');
    assert.equal(getPriority(0), mainNice);
    assert.equal(m.nice, 19);
  } finally {
    w.postMessage('exit');
    await new Promise((r) => w.once('exit', r));
  }
});

test('runtime: secondaries run their apply thread (only it) at the raised nice value; a new primary puts it back',
  { skip: (!linux && 'Linux only') || (getPriority(0) >= 19 && 'already at nice 19') }, async () => {
    const mainNice = getPriority(0);
    const raised = Math.min(19, mainNice + 7);
    const canRestore = await probeNiceRestore(mainNice);
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }): void => {
      if (w.code === 'PAXLINE_APPLY_NICE') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    const ports = await freePorts(3);
    const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
    const replicas: PaxlineReplica[] = await Promise.all(members.map((m) => createReplica({
      clusterId: 'nice', replicaId: m.id, members, dataDir: join(base, `r${m.id}`), init: true,
      stateMachine: machine, secondaryApplyNice: 7, checkpointEveryDecrees: 5,
    })));
    const open = new Set(replicas);
    const enc = new TextEncoder();
    const atRaised = (): number => [...threadNices().values()].filter((n) => n === raised).length;
    try {
      const first = (await eventually('a primary', () => replicas.find((r) => r.role === 'primary')))!;
      for (let i = 0; i < 30; i++) await first.replicate(enc.encode(`a${i}`));
      await eventually('secondaries raised, the primary not', async () => {
        const s = await Promise.all(replicas.map((r) => r.status()));
        return s.every((x) => x.applyNice === (x.replicaId === first.replicaId ? mainNice : raised) && x.checkpoints > 0);
      });
      // The threads themselves: the two secondaries' apply threads, and no other (the checkpoint
      // writers, which every replica has used by now, run at the base value).
      assert.equal(atRaised(), 2);
      // Without the right to put a priority back, each replica said so once at its start.
      await eventually('warnings delivered', () => warnings.length === (canRestore ? 0 : 3));

      await first.close();
      open.delete(first);
      const rest = replicas.filter((r) => r !== first);
      const second = (await eventually('a new primary', () => rest.find((r) => r.role === 'primary')))!;
      for (let i = 0; i < 10; i++) await second.replicate(enc.encode(`b${i}`));
      const expected = canRestore ? mainNice : raised;
      await eventually('the new primary\'s apply thread at the expected value', async () => (await second.status()).applyNice === expected);
      const other = rest.find((r) => r !== second)!;
      assert.equal((await other.status()).applyNice, raised, 'the remaining secondary stays raised');
      assert.equal(atRaised(), canRestore ? 1 : 2);
      if (!canRestore) await eventually('the failed restore is reported', () => warnings.some((w) => /could not set its nice value/.test(w)));
    } finally {
      process.off('warning', onWarning);
      await Promise.all([...open].map((r) => r.close()));
    }
  });
