/**
 * One profiling capture of `npm run profile`: a 3-replica set on 127.0.0.1 (fdatasync on, data
 * in a temporary folder on a real disk) whose PRIMARY is replica 1, run as a stand-alone process
 * (primary-main.ts) under one tool, with embedded load on its main thread:
 *
 *   tool     the primary is started as                                   what it writes
 *   cpu      node --cpu-prof --cpu-prof-dir=D primary-main.js            D/*.cpuprofile, one per
 *            (followers: forked replica-proc.js with the same flags)       thread of every replica
 *   0x       0x --output-dir D -- node primary-main.js                   D/flamegraph.html (main
 *                                                                          thread of the primary)
 *   doctor   clinic doctor --open=false --dest D -- node primary-main.js D/*.clinic-doctor.html
 *   flame    clinic flame  --open=false --dest D -- node primary-main.js D/*.clinic-flame.html
 *
 * Why a stand-alone primary: 0x and clinic start the process they profile themselves, without
 * the fork() IPC channel the cluster benchmark's replica-proc.ts needs; so the primary takes its
 * whole run from a config file and reports to a file. Why replica 1 is the primary: the two
 * followers (replica-proc.ts over IPC, as in the cluster benchmark) run with election timeouts
 * of FOLLOWER_ELECTION_MS, so only replica 1 (default 300–600 ms) campaigns.
 *
 * Shutdown: the primary closes its replica and exits by itself after the window; then each
 * follower is asked to close (its stage workers exit, so --cpu-prof writes every thread's
 * profile). Ctrl-C sends SIGTERM to all, which they handle the same way.
 *
 * What is NOT verified here: that the followers executed everything (no digests) — captures
 * are for reading profiles; figures come from `paxline bench`.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { filesystemOf } from '../micro/log.js';
import { BENCH_NODE_FLAGS, ChildHandle } from '../cluster/ipc.js';
import type { ReplicaStartArg } from '../cluster/replica-proc.js';
import type { PrimaryConfig, PrimaryReport } from './primary-main.js';
import { freePorts } from '../../src/util/free-ports.js';

export type Tool = 'cpu' | '0x' | 'doctor' | 'flame';
export const TOOLS: readonly Tool[] = ['cpu', '0x', 'doctor', 'flame'];

export interface CaptureOptions {
  readonly commandBytes: number;
  readonly inflight: number;
  readonly rateOpsPerSec: number | null;
  readonly warmupS: number;
  readonly captureS: number;
  /** Parent of the temporary data folder (a real disk, not tmpfs). */
  readonly dataParent: string;
}

export interface CaptureResult {
  readonly tool: Tool;
  readonly dir: string;
  readonly report: PrimaryReport | null;
  /** pid → replica id of every replica process of the run (cpu: to name the profiles). */
  readonly replicaPids: Record<number, number>;
  readonly primaryExit: number | null;
  readonly elapsedS: number;
}

const HOST = '127.0.0.1';
const PRIMARY_ID = 1;
const FOLLOWER_ELECTION_MS = 120_000;
const START_TIMEOUT_MS = 90_000;
/** After the window: drain, close, and the tool's own processing (clinic can take minutes). */
const AFTER_WINDOW_MS = 600_000;

let interrupted = false;
/** Whether Ctrl-C stopped a capture (profile.ts then runs no further tool). */
export const wasInterrupted = (): boolean => interrupted;

const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));
const require = createRequire(import.meta.url);


/** The command line that starts the primary under `tool`, and the folder it writes to. */
function primaryCommand(tool: Tool, dir: string, configPath: string): { argv: string[]; env: NodeJS.ProcessEnv } {
  const script = here('./primary-main.js');
  const node = process.execPath;
  switch (tool) {
    case 'cpu':
      return { argv: [node, ...BENCH_NODE_FLAGS, '--cpu-prof', `--cpu-prof-dir=${dir}`, script, configPath], env: process.env };
    case '0x': {
      // --collect-delay (ms): ticks of roughly the start-up and warm-up are left out.
      const delayMs = String(Math.round(readConfig(configPath).warmupS * 1000));
      return { argv: [node, require.resolve('0x/cmd.js'), '--output-dir', join(dir, 'flamegraph'), '--collect-delay', delayMs, '--', 'node', ...BENCH_NODE_FLAGS, script, configPath], env: process.env };
    }
    case 'doctor':
    case 'flame':
      return {
        argv: [node, require.resolve('clinic/bin.js'), tool, '--open=false', '--dest', dir, '--', node, ...BENCH_NODE_FLAGS, script, configPath],
        // clinic 13 asks for telemetry consent through Insight unless NO_INSIGHT is set (Node 20).
        env: { ...process.env, NO_INSIGHT: '1' },
      };
  }
}

function readConfig(path: string): PrimaryConfig {
  return JSON.parse(readFileSync(path, 'utf8')) as PrimaryConfig;
}

function waitExit(child: import('node:child_process').ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { child.kill('SIGTERM'); }, timeoutMs);
    child.once('exit', (code) => { clearTimeout(t); resolve(code); });
  });
}

export async function capture(tool: Tool, o: CaptureOptions, dir: string, log: (line: string) => void): Promise<CaptureResult> {
  const t0 = performance.now();
  mkdirSync(dir, { recursive: true });
  const base = mkdtempSync(join(o.dataParent, 'paxline-profile-'));
  const fs = filesystemOf(base);
  if (fs === 'tmpfs') {
    rmSync(base, { recursive: true, force: true });
    throw new Error(`${o.dataParent} is on tmpfs: fdatasync there measures memory, not a disk (use --dir)`);
  }
  const ports = await freePorts(5);
  const ids = [1, 2, 3];
  const members = ids.map((id, i) => ({ id, host: HOST, port: ports[i]! }));
  const inflightMax = Math.max(65_536, o.inflight);
  const configPath = join(dir, 'primary-config.json');
  const reportPath = join(dir, 'primary-report.json');
  const config: PrimaryConfig = {
    start: { clusterId: 'paxline-profile', replicaId: PRIMARY_ID, members, dataDir: join(base, 'r1'), tuning: { inflightMax } },
    commandBytes: o.commandBytes, inflight: o.inflight, rateOpsPerSec: o.rateOpsPerSec, warmupS: o.warmupS, captureS: o.captureS,
    reportPath, electionTimeoutMs: START_TIMEOUT_MS,
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const cmd = primaryCommand(tool, dir, configPath);
  const out = createWriteStream(join(dir, 'primary-output.txt'));
  // 0x leaves the worker threads' isolate logs in its working directory: keep them in `dir`.
  const primary = spawn(cmd.argv[0]!, cmd.argv.slice(1), { cwd: dir, env: cmd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  primary.stdout.pipe(out);
  primary.stderr.pipe(out);
  const primaryExited = waitExit(primary, START_TIMEOUT_MS + (o.warmupS + o.captureS) * 1000 + AFTER_WINDOW_MS);
  const followerArgv = tool === 'cpu' ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
  const followers = ids.slice(1).map((id) => new ChildHandle(`replica ${id}`, here('../cluster/replica-proc.js'), () => {}, followerArgv));
  const onSignal = (): void => {
    interrupted = true;
    primary.kill('SIGTERM');
    for (const f of followers) f.child.kill('SIGTERM');
  };
  process.once('SIGINT', onSignal);
  try {
    log(`${tool}: replicas starting (primary pid ${primary.pid ?? '?'}); warm-up ${o.warmupS} s, capture ${o.captureS} s`);
    await Promise.all(followers.map((h, k) => h.call('start', {
      clusterId: 'paxline-profile', replicaId: ids[k + 1]!, members, dataDir: join(base, `r${ids[k + 1]!}`),
      clientHost: HOST, clientPort: ports[3 + k]!, clientAddresses: {},
      tuning: { inflightMax, electionTimeoutMsMin: FOLLOWER_ELECTION_MS, electionTimeoutMsMax: FOLLOWER_ELECTION_MS + 30_000 },
    } satisfies ReplicaStartArg, START_TIMEOUT_MS)));
    const code = await primaryExited;
    log(`${tool}: primary exited (${code ?? 'signal'}); closing the followers`);
    await Promise.all(followers.map(async (h) => {
      try { await Promise.race([h.call('close', null, 30_000).then(() => h.exited), new Promise((r) => setTimeout(r, 30_000).unref())]); } catch { /* killed below */ }
      await h.kill();
    }));
    const report = existsSync(reportPath) ? JSON.parse(readFileSync(reportPath, 'utf8')) as PrimaryReport : null;
    const replicaPids: Record<number, number> = {};
    if (report?.pid !== undefined) replicaPids[report.pid] = PRIMARY_ID;
    followers.forEach((h, k) => { if (h.child.pid !== undefined) replicaPids[h.child.pid] = ids[k + 1]!; });
    writeFileSync(join(dir, 'replica-pids.json'), JSON.stringify({ primary: PRIMARY_ID, replicaPids }, null, 2));
    return { tool, dir, report, replicaPids, primaryExit: code, elapsedS: (performance.now() - t0) / 1000 };
  } finally {
    process.off('SIGINT', onSignal);
    if (primary.exitCode === null && primary.signalCode === null) primary.kill('SIGKILL');
    await Promise.all(followers.map((h) => h.kill()));
    rmSync(base, { recursive: true, force: true });
  }
}
