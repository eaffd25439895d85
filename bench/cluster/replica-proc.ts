/**
 * One replica process of the cluster benchmark (forked by cluster-bench.ts, controlled over IPC):
 * a real replica of the built-in KV machine (createReplica: three stage workers, fdatasync on)
 * plus its client endpoint (startClientServer) on the main thread — what `paxline start` runs.
 *
 * For embedded load the coordinator asks the primary's process to run the load loop HERE, on
 * this main thread, calling replica.replicate() as an application embedding paxline would: its
 * CPU is then part of this process's cpuUsage, as it would be in such an application.
 *
 * IPC ops: start, status, stalls, digest, cpu, mem, loadStart, loadMarkStart, loadMarkEnd, loadDrain, close.
 * Events: 'role' on every role change, 'failed' when the replica fails.
 *
 * SIGTERM / SIGINT close the replica (its stage workers exit) before the process exits, so a
 * process started with --cpu-prof writes the profiles of all its threads (bench/profile).
 */
import { startClientServer, type ClientServer } from '../../src/kv/client-server.js';
import { decodeKvResult, encodeKvQuery } from '../../src/kv/kv-codec.js';
import { createReplica, type PaxlineReplica } from '../../src/runtime/replica.js';
import type { MemberAddress, ReplicaOptions } from '../../src/runtime/options.js';
import { KV_MACHINE_PATH } from '../../src/index.js';
import { emitEvent, serveIpc } from './ipc.js';
import { LoadDriver, loadHandlers } from './load-driver.js';
import { SLOTS_MAX, embeddedPuts, encodedPutBytes } from './workload.js';

export interface ReplicaStartArg {
  readonly clusterId: string;
  readonly replicaId: number;
  readonly members: readonly MemberAddress[];
  readonly dataDir: string;
  readonly clientHost: string;
  readonly clientPort: number;
  /** Client endpoint 'host:port' per replica id, for redirects. */
  readonly clientAddresses: Readonly<Record<number, string>>;
  /** Runtime tuning passed through to createReplica (only the fields given). */
  readonly tuning: ReplicaTuning;
}

/** The createReplica options the benchmarks may set (soak: segment size, checkpoint interval). */
export type ReplicaTuning = Partial<Pick<ReplicaOptions,
  'pipelineDepth' | 'batchCountMax' | 'batchBytesMax' | 'batchDelayMs' | 'inflightMax' | 'segmentBytes' | 'checkpointEveryDecrees' | 'secondaryApplyNice'
  | 'electionTimeoutMsMin' | 'electionTimeoutMsMax'>>;

export interface EmbeddedLoadArg {
  readonly commandBytes: number;
  readonly inflight: number;
  readonly rateOpsPerSec: number | null;
}

let replica: PaxlineReplica | null = null;
let clients: ClientServer | null = null;
let driver: LoadDriver<Uint8Array> | null = null;

function need<T>(x: T | null, what: string): T {
  if (x === null) throw new Error(`${what} not started`);
  return x;
}

async function start(a: ReplicaStartArg): Promise<unknown> {
  if (replica !== null) throw new Error('already started');
  const r = await createReplica({
    clusterId: a.clusterId, replicaId: a.replicaId, members: a.members, dataDir: a.dataDir, init: true,
    stateMachine: KV_MACHINE_PATH, ...a.tuning,
  });
  replica = r;
  r.on('role', (x: { role: string; primary: number; ballot: number }) => emitEvent('role', { replicaId: a.replicaId, ...x }));
  r.on('error', (e: Error) => emitEvent('failed', { replicaId: a.replicaId, message: e.message }));
  r.on('logError', (e: Error) => emitEvent('logError', { replicaId: a.replicaId, message: e.message }));
  clients = await startClientServer({
    host: a.clientHost, port: a.clientPort, replica: r,
    clientAddressOf: (id) => a.clientAddresses[id],
  });
  return { pid: process.pid, peerPort: r.peerPort, clientPort: clients.port, incarnation: r.incarnation, role: r.role };
}

function startEmbeddedLoad(a: EmbeddedLoadArg): unknown {
  const r = need(replica, 'replica');
  if (driver !== null) throw new Error('load already started');
  if (a.inflight > SLOTS_MAX) throw new Error(`inflight ${a.inflight} exceeds ${SLOTS_MAX} KV sessions`);
  driver = new LoadDriver({ inflight: a.inflight, rateOpsPerSec: a.rateOpsPerSec }, embeddedPuts((c) => r.replicate(c), a.inflight, a.commandBytes));
  driver.start();
  return { encodedCommandBytes: encodedPutBytes(a.commandBytes) };
}

async function status(): Promise<unknown> {
  const s = await need(replica, 'replica').status();
  const { consensus: _omitted, ...counters } = s;
  return counters;
}

async function digest(): Promise<string> {
  const res = decodeKvResult(await need(replica, 'replica').fastRead(encodeKvQuery({ op: 'digest' }), { timeoutMs: 30_000 }));
  if (res.kind !== 'value' || res.value === null) throw new Error(`digest query answered ${JSON.stringify(res)}`);
  return res.value;
}

async function close(): Promise<null> {
  await clients?.close();
  await replica?.close();
  setImmediate(() => process.exit(0));
  return null;
}

/** Memory of this process: RSS covers every thread; the heap figures are the main thread's. */
function mem(): unknown {
  const m = process.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal, externalBytes: m.external };
}

let signalled = false;
const onSignal = (signal: NodeJS.Signals): void => {
  if (signalled) return;
  signalled = true;
  const code = signal === 'SIGINT' ? 130 : 143;
  void close().then(() => process.exit(code), () => process.exit(code));
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

serveIpc({
  start: (a) => start(a as ReplicaStartArg),
  status,
  stalls: (since) => need(replica, 'replica').stalls(typeof since === 'number' ? since : 0),
  digest,
  mem,
  loadStart: (a) => startEmbeddedLoad(a as EmbeddedLoadArg),
  ...loadHandlers(() => need(driver, 'load')),
  close,
});
