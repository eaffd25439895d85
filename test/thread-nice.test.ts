/**
 * The apply thread's priority on secondaries (option secondaryApplyNice, src/runtime/thread-nice.ts):
 * parsing /proc, the restore rule, the role policy with a fake setter, the Linux premise that a
 * nice value set through os.setPriority(0, n) belongs to the calling thread only, and a replica
 * set whose secondaries' apply threads run at the raised value while the primary's does not —
 * put back on the replica that becomes primary after a failover.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseClusterConfig } from '../src/cli/cluster-config.js';
import { resolveReplicaOptions } from '../src/runtime/options.js';
import { createReplica, type PaxlineReplica } from '../src/runtime/replica.js';
import {
  BEHIND_FILL, CAUGHT_UP_FILL, SECONDARY_APPLY_NICE_AUTO, SecondaryNice, effectiveCapabilities, mayLowerNiceTo, mayRestoreNice, niceSoftLimit,
  resolveSecondaryApplyNice,
} from '../src/runtime/thread-nice.js';
import { eventually, freePorts } from './support/ports.js';

const here = dirname(fileURLToPath(import.meta.url));
const machine = join(here, 'support', 'counter-machine.js');
const base = mkdtempSync(join(tmpdir(), 'paxline-nice-'));
after(() => rmSync(base, { recursive: true, force: true }));
const linux = process.platform === 'linux';

test('thread-nice: /proc parsing and the rule for lowering a nice value back', () => {
  assert.equal(effectiveCapabilities('Name:\tnode\nCapPrm:\t0000000000000000\nCapEff:\t000001fffeffffff\n'), 0x1fffeffffffn);
  assert.equal(effectiveCapabilities('Name:\tnode\n'), 0n);
  const limits = (soft: string): string =>
    `Limit                     Soft Limit           Hard Limit           Units\nMax nice priority         ${soft}                    0                    \n`;
  assert.equal(niceSoftLimit(limits('0')), 0);
  assert.equal(niceSoftLimit(limits('20')), 20);
  assert.equal(niceSoftLimit(limits('unlimited')), Infinity);
  assert.equal(niceSoftLimit('Max open files 1024 1024 files\n'), 0);
  const capSysNice = 1n << 23n;
  assert.equal(mayLowerNiceTo(0, capSysNice, 0), true, 'CAP_SYS_NICE may set any value');
  assert.equal(mayLowerNiceTo(0, capSysNice - 1n, 0), false, 'every other capability, no RLIMIT_NICE');
  assert.equal(mayLowerNiceTo(0, 0n, 20), true, 'RLIMIT_NICE 20 reaches nice 0');
  assert.equal(mayLowerNiceTo(0, 0n, 19), false);
  assert.equal(mayLowerNiceTo(5, 0n, 15), true);
  assert.equal(mayLowerNiceTo(5, 0n, Infinity), true);
});

test('thread-nice: the increment an option resolves to', () => {
  assert.equal(resolveSecondaryApplyNice('auto', 0, 'linux', () => true), SECONDARY_APPLY_NICE_AUTO);
  assert.equal(resolveSecondaryApplyNice('auto', 0, 'linux', () => false), 0, 'auto is off when the priority could not be put back');
  assert.equal(resolveSecondaryApplyNice(7, 0, 'linux', () => false), 7, 'an explicit value is taken as given');
  assert.equal(resolveSecondaryApplyNice('auto', 0, 'darwin', () => true), 0);
  assert.equal(resolveSecondaryApplyNice(7, 0, 'win32', () => true), 0);
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
    (e: { code?: string; field?: string }) => e.code === 'PAXLINE_BAD_CONFIG' && e.field === 'options.secondaryApplyNice');
});

test('thread-nice: the role policy (lowered as a secondary with a known primary, put back as primary)', () => {
  const sets: number[] = [];
  const warnings: string[] = [];
  let failing = false;
  const n = new SecondaryNice(2, 3, 10, (v) => {
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
  assert.match(warnings[0]!, /from 13 to 3.*CAP_SYS_NICE/);
  assert.equal(n.nice, 13);
  failing = false;
  n.follow(0, 1, 0); // wanted 13 again: already there
  n.follow(2, 2, 0); // wanted 3 again after a different want: retried
  assert.deepEqual(sets, [13, 3, 13, 3]);
  // A secondary whose input ring fills up runs at full priority until it has caught up.
  const behind: number[] = [];
  const b = new SecondaryNice(3, 0, 19, (v) => behind.push(v), () => undefined);
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
  new SecondaryNice(1, 15, 19, (v) => capped.push(v), () => undefined).follow(0, 2, 0);
  assert.deepEqual(capped, [19]);
  const none: number[] = [];
  const off = new SecondaryNice(1, 0, 0, (v) => none.push(v), () => undefined);
  off.follow(0, 2, 0);
  off.follow(2, 1, 0);
  assert.deepEqual(none, []);
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

test('thread-nice: os.setPriority(0, n) in a worker changes that thread only (Linux)', { skip: !linux && 'Linux only' }, async () => {
  const mainNice = getPriority(0);
  const w = new Worker(`
    const { parentPort } = require('node:worker_threads');
    const os = require('node:os');
    const fs = require('node:fs');
    os.setPriority(0, Math.min(19, os.getPriority(0) + 4));
    parentPort.postMessage({ tid: Number(fs.readlinkSync('/proc/thread-self').split('/').pop()), nice: os.getPriority(0) });
    parentPort.once('message', () => process.exit(0));
  `, { eval: true });
  try {
    const m = await new Promise<{ tid: number; nice: number }>((resolve) => w.once('message', resolve));
    const nices = threadNices();
    assert.equal(nices.get(m.tid), Math.min(19, mainNice + 4), 'the worker thread took the new value');
    assert.equal(nices.get(process.pid), mainNice, 'the main thread kept its own');
    assert.equal(getPriority(0), mainNice);
    assert.equal(m.nice, Math.min(19, mainNice + 4));
  } finally {
    w.postMessage('exit');
    await new Promise((r) => w.once('exit', r));
  }
});

test('runtime: secondaries run their apply thread at the raised nice value; a new primary puts it back', { skip: !linux && 'Linux only' }, async () => {
  const mainNice = getPriority(0);
  const raised = Math.min(19, mainNice + 7);
  const ports = await freePorts(3);
  const members = ports.map((port, i) => ({ id: i + 1, host: '127.0.0.1', port }));
  const replicas: PaxlineReplica[] = await Promise.all(members.map((m) => createReplica({
    clusterId: 'nice', replicaId: m.id, members, dataDir: join(base, `r${m.id}`), init: true,
    stateMachine: machine, secondaryApplyNice: 7,
  })));
  const open = new Set(replicas);
  try {
    const first = (await eventually('a primary', () => replicas.find((r) => r.role === 'primary')))!;
    await first.replicate(new TextEncoder().encode('a'));
    await eventually('secondaries raised, the primary not', async () => {
      const s = await Promise.all(replicas.map((r) => r.status()));
      return s.every((x) => x.applyNice === (x.replicaId === first.replicaId ? mainNice : raised));
    });
    await first.close();
    open.delete(first);
    const rest = replicas.filter((r) => r !== first);
    const second = (await eventually('a new primary', () => rest.find((r) => r.role === 'primary')))!;
    await second.replicate(new TextEncoder().encode('b'));
    // Putting the priority back needs CAP_SYS_NICE or RLIMIT_NICE; without, it stays (and warns).
    const expected = mayRestoreNice(mainNice) ? mainNice : raised;
    await eventually('the new primary\'s apply thread at the expected value', async () => (await second.status()).applyNice === expected);
    const other = rest.find((r) => r !== second)!;
    assert.equal((await other.status()).applyNice, raised, 'the remaining secondary stays raised');
  } finally {
    await Promise.all([...open].map((r) => r.close()));
  }
});
