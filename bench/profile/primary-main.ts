/**
 * The profiled PRIMARY of `npm run profile` (bench/profile/profile.ts), as a stand-alone process:
 * `node primary-main.js <config.json>`. It has no IPC channel on purpose, so that a profiler
 * that starts the process itself (0x, clinic doctor, clinic flame, or plain node --cpu-prof) can
 * wrap it: those tools spawn their own child without the parent's fork() channel.
 *
 * It starts one replica of the built-in KV machine (createReplica: three stage workers, fdatasync
 * on), waits until it is elected (its peers run with long election timeouts, so it is the only
 * candidate), then runs the embedded load on this main thread as replica-proc.ts does (closed
 * loop with `inflight` KV puts outstanding, or open loop at `rateOpsPerSec` with at most
 * `inflight` outstanding; 16-byte keys): warm-up, then the capture window. It
 * writes a report (its pid, the window in monotonic µs, ops and latency, its status counters at
 * the window's ends) and CLOSES the replica before exiting — every thread exits normally, so
 * --cpu-prof writes a profile for each, and 0x / clinic see a normal exit.
 *
 * What is measured: ops/s and latency of the window, as load-driver.ts counts them, under the
 *  profiler's overhead — not a benchmark figure. What is NOT: whether the followers executed the
 *  commands (the coordinator does not verify digests; use `paxline bench` for figures).
 */
import { readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createReplica, type PaxlineReplica } from '../../src/runtime/replica.js';
import { KV_MACHINE_PATH } from '../../src/index.js';
import { LoadDriver, type WindowReport } from '../cluster/load-driver.js';
import type { ReplicaStartArg } from '../cluster/replica-proc.js';
import { embeddedPuts } from '../cluster/workload.js';

export interface PrimaryConfig {
  readonly start: Omit<ReplicaStartArg, 'clientHost' | 'clientPort' | 'clientAddresses'>;
  readonly commandBytes: number;
  readonly inflight: number;
  /** Open loop at this many ops/s (inflight caps what is outstanding); null: closed loop. */
  readonly rateOpsPerSec: number | null;
  readonly warmupS: number;
  readonly captureS: number;
  /** Where the report (PrimaryReport, JSON) is written. */
  readonly reportPath: string;
  readonly electionTimeoutMs: number;
}

export interface PrimaryReport {
  readonly pid: number;
  readonly replicaId: number;
  /** The capture window in the monotonic clock of .cpuprofile files, µs. */
  readonly windowStartUs: number;
  readonly windowEndUs: number;
  readonly window: WindowReport;
  readonly opsPerSec: number;
  readonly statusAtStart: unknown;
  readonly statusAtEnd: unknown;
  readonly error: string | null;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

function waitForPrimary(r: PaxlineReplica, timeoutMs: number): Promise<void> {
  if (r.role === 'primary') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`not elected within ${timeoutMs} ms`)), timeoutMs);
    r.on('role', (x: { role: string }) => {
      if (x.role !== 'primary') return;
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * Under `node --prof` (0x, clinic flame) every thread writes its own isolate-<addr>-<pid>-v8.log
 * and 0x renders the FIRST one it finds in its folder — often a worker's — then deletes the rest.
 * So before exiting, with the workers gone and their logs complete, the worker threads' logs are
 * renamed (…-v8.log → …-v8.worker-log: kept, but no longer matched), leaving the main thread's.
 * A worker's log is recognised by its own entry module (workers/<kind>.worker.js) in its code
 * entries; the main thread only names those files in strings.
 */
function hideWorkerIsolateLogs(): void {
  if (!process.execArgv.includes('--prof')) return;
  const logfile = process.execArgv.find((a) => a.startsWith('--logfile='));
  const dir = logfile === undefined ? process.cwd() : dirname(logfile.slice('--logfile='.length));
  const mine = new RegExp(`^isolate-(0x)?[0-9a-fA-F]+(-${process.pid})?-${process.pid}-v8\\.log$`);
  for (const name of readdirSync(dir).filter((n) => mine.test(n))) {
    const path = join(dir, name);
    if (/\/workers\/(log|apply|consensus)\.worker\.js/.test(readFileSync(path, 'latin1'))) {
      renameSync(path, path.replace(/-v8\.log$/, '-v8.worker-log'));
    }
  }
}

function startLoad(r: PaxlineReplica, c: PrimaryConfig): LoadDriver<Uint8Array> {
  const driver = new LoadDriver({ inflight: c.inflight, rateOpsPerSec: c.rateOpsPerSec }, embeddedPuts((cmd) => r.replicate(cmd), c.inflight, c.commandBytes));
  driver.start();
  return driver;
}

async function run(c: PrimaryConfig): Promise<void> {
  const s = c.start;
  const replica = await createReplica({
    clusterId: s.clusterId, replicaId: s.replicaId, members: s.members, dataDir: s.dataDir, init: true,
    stateMachine: KV_MACHINE_PATH, ...s.tuning,
  });
  let closing = false;
  const closeAndExit = (code: number): void => {
    if (closing) return;
    closing = true;
    void replica.close().finally(() => {
      try { hideWorkerIsolateLogs(); } catch (e) { console.error(`cannot set worker isolate logs aside: ${String(e)}`); }
      process.exit(code);
    });
  };
  process.on('SIGTERM', () => closeAndExit(143));
  process.on('SIGINT', () => closeAndExit(130));
  let error: string | null = null;
  try {
    await waitForPrimary(replica, c.electionTimeoutMs);
    const driver = startLoad(replica, c);
    await sleep(c.warmupS * 1000);
    const statusAtStart = await replica.status();
    const windowStartUs = monotonicUs();
    driver.markStart();
    await sleep(c.captureS * 1000);
    const window = driver.markEnd();
    const windowEndUs = monotonicUs();
    const statusAtEnd = await replica.status();
    await driver.drain(60_000).catch((e: unknown) => { error = String(e); });
    const report: PrimaryReport = {
      pid: process.pid, replicaId: s.replicaId, windowStartUs, windowEndUs, window,
      opsPerSec: window.windowMs > 0 ? Math.round((window.ops * 1000) / window.windowMs) : 0,
      statusAtStart: { ...statusAtStart, consensus: undefined }, statusAtEnd: { ...statusAtEnd, consensus: undefined }, error,
    };
    writeFileSync(c.reportPath, JSON.stringify(report));
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
    writeFileSync(c.reportPath, JSON.stringify({ pid: process.pid, replicaId: s.replicaId, error }));
  }
  closeAndExit(error === null ? 0 : 1);
}

const configPath = process.argv[2];
if (configPath === undefined) {
  console.error('usage: node primary-main.js <config.json>');
  process.exit(2);
}
await run(JSON.parse(readFileSync(configPath, 'utf8')) as PrimaryConfig);
