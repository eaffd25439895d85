/**
 * Smoke test of the cluster benchmark (bench/cluster/, `paxline bench`): one very short embedded
 * point through the real CLI — three replica processes, fdatasync on — must print exactly one
 * JSON line of the documented shape, with equal state digests, no election and some progress.
 * No throughput or latency thresholds: timing belongs in benchmarks, not in tests. Also checks
 * that tmpfs is refused and that no replica process outlives the run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CLI_PATH } from './support/process-cluster.js';

const TMPFS_MAGIC = 0x01021994;

function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_PATH, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('paxline bench --json: one embedded point prints one line of the documented shape', { timeout: 150_000 }, () => {
  const r = runCli(['bench', '--json', '--load', 'embedded', '--command-bytes', '16', '--inflight', '64', '--warmup', '1', '--duration', '2']);
  assert.equal(r.status, 0, `exit ${r.status}; stderr:\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stdout}`);
  const j = JSON.parse(lines[0]!) as Record<string, unknown>;
  for (const k of ['opsPerSec', 'p50Ms', 'p99Ms', 'p999Ms', 'decreesPerSec', 'commandsPerFsync', 'fsyncsPerSec', 'fsyncP99Ms', 'elections', 'busyRejected']) {
    assert.equal(typeof j[k], 'number', `${k} should be a number`);
  }
  assert.equal(j.commandBytes, 16);
  assert.equal(j.replicas, 3);
  assert.equal(j.fsync, true);
  assert.equal(j.load, 'embedded');
  assert.equal(j.inflight, 64);
  assert.equal(typeof j.filesystem, 'string');
  assert.ok(Array.isArray(j.maxLagDecrees) && j.maxLagDecrees.length === 3);
  assert.ok(Array.isArray(j.cpuUsPerOp) && j.cpuUsPerOp.length === 3);
  // Window-only tail diagnostics: each replica synced at least once; one entry per second of the
  // window, as long as the window really was (it closes on the coordinator's next tick).
  assert.ok(Array.isArray(j.fsyncMaxMs) && j.fsyncMaxMs.length === 3 && j.fsyncMaxMs.every((x) => typeof x === 'number' && x > 0));
  const perSecond = (j.latencyMaxMsPerSecond as (number | null)[]).filter((x): x is number => x !== null);
  const seconds = (j.latencyMaxMsPerSecond as unknown[]).length;
  assert.ok(seconds >= 1 && seconds <= Math.floor(j.windowS as number) + 1 && perSecond.length >= 1, JSON.stringify(j.latencyMaxMsPerSecond));
  // The histogram's max is exact to its 3 significant figures only.
  const slowest = Math.max(...perSecond);
  const maxMs = j.maxMs as number;
  assert.ok(Math.abs(slowest - maxMs) <= maxMs * 0.002 + 0.002, `slowest second ${slowest} ms, histogram max ${maxMs} ms`);
  // Executed on every replica inside the window (the smallest of the three); a closed loop has no send lag.
  assert.ok(typeof j.executedPerSecMin === 'number' && j.executedPerSecMin > 0, `executedPerSecMin ${j.executedPerSecMin}`);
  assert.equal(j.sendLagP50Ms, null);
  assert.equal(j.sendLagP99Ms, null);
  assert.equal(j.stateDigestsEqual, true);
  assert.equal(j.elections, 0);
  assert.equal(j.valid, true);
  assert.ok((j.opsPerSec as number) > 0);
  assert.ok((j.p50Ms as number) > 0 && (j.p50Ms as number) <= (j.p99Ms as number));
  assert.match(r.stderr, /measure/, 'progress goes to stderr');
});

test('paxline bench refuses a data folder on tmpfs', { skip: !existsSync('/dev/shm') || statfsSync('/dev/shm').type !== TMPFS_MAGIC }, () => {
  const r = runCli(['bench', '--json', '--dir', '/dev/shm', '--duration', '1', '--warmup', '0']);
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /tmpfs/);
});
