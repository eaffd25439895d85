/**
 * Smoke test of the memory soak (`paxline bench --soak`, bench/cluster/soak.ts): a 20-second soak
 * through the real CLI — three replica processes, fdatasync on, open loop — must print one JSON
 * line of the documented shape: memory samples per replica, first/last medians and their ratio,
 * the event flags (checkpoint, segment rollover and retention delete, from status counters).
 * Shape only: no memory or throughput threshold is asserted
 * (20 seconds say nothing about leaks, and timing belongs in benchmarks).
 */
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SOAK_WARMUP_S_DEFAULT } from '../bench/cluster/soak.js';
import { benchPointFromFlags } from '../src/cli/bench.js';
import { CLI_PATH } from './support/process-cluster.js';

const SOAK_S = 20;

test('paxline bench --soak --json: one line with per-replica memory samples and the event flags', { timeout: 180_000 }, () => {
  const r = spawnSync(process.execPath, [
    CLI_PATH, 'bench', '--json', '--soak', String(SOAK_S), '--rate', '2000', '--inflight', '256', '--warmup', '2',
    '--sample-every', '2', '--segment-bytes', String(1024 * 1024), '--checkpoint-every', '200',
  ], { encoding: 'utf8', timeout: 150_000 });
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}; stderr:\n${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stdout}`);
  const j = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(j.soak, true);
  assert.equal(j.soakS, SOAK_S);
  assert.equal(j.rateOpsPerSec, 2000);
  assert.equal(j.sampleEveryS, 2);
  assert.equal(typeof j.compareWindowS, 'number');
  assert.equal(typeof j.pass, 'boolean');
  const processes = j.processes as Record<string, unknown>[];
  assert.equal(processes.length, 3);
  assert.equal(processes.filter((p) => p.primary === true).length, 1);
  for (const p of processes) {
    const samples = p.samples as { tS: number; rssBytes: number; heapUsedBytes: number; heapPhysicalBytes: Record<string, number> | null }[];
    assert.ok(samples.length >= 2, `${String(p.name)}: ${samples.length} samples`);
    for (const s of samples) assert.ok(s.rssBytes > 0 && s.heapUsedBytes > 0 && s.tS >= 0);
    // Every thread's physical heap, from the replica status (each stage samples its own).
    for (const s of samples) {
      const h = s.heapPhysicalBytes;
      assert.ok(h !== null && ['main', 'consensus', 'log', 'apply'].every((k) => h[k]! > 0), JSON.stringify(h));
    }
    for (const k of ['stageHeapPhysicalMedianFirstMiB', 'stageHeapPhysicalMedianLastMiB']) {
      const m = p[k] as Record<string, number>;
      assert.ok(['consensus', 'log', 'apply'].every((x) => m[x]! > 0), `${k}: ${JSON.stringify(m)}`);
    }
    for (const k of ['rssMedianFirstMiB', 'rssMedianLastMiB', 'heapUsedMedianFirstMiB', 'heapUsedMedianLastMiB', 'rssRatio', 'checkpointsInWindow', 'rolloversSeenOnDisk', 'retiredSegmentsSeenOnDisk']) {
      assert.equal(typeof p[k], 'number', `${k} should be a number`);
    }
    assert.equal(typeof p.pass, 'boolean');
    assert.ok(Array.isArray(p.logFolder));
  }
  const events = j.events as Record<string, unknown>;
  assert.equal(typeof events.checkpoint, 'boolean');
  assert.equal(typeof events.segmentRollover, 'boolean');
  assert.equal(typeof events.retentionDelete, 'boolean');
  assert.equal(typeof events.segmentRolloverSeenOnDisk, 'boolean');
  assert.equal(typeof events.retentionDeleteSeenOnDisk, 'boolean');
  const bench = j.bench as Record<string, unknown>;
  assert.equal(bench.load, 'embedded');
  assert.equal(bench.rateOpsPerSec, 2000);
  assert.equal(typeof bench.opsPerSec, 'number');
  assert.match(r.stderr, /measure/, 'progress goes to stderr');
});

test('paxline bench: the soak warms up 120 s unless --warmup says otherwise; a plain point 10 s', () => {
  assert.equal(benchPointFromFlags(['--soak', '300', '--rate', '1000']).point.warmupS, SOAK_WARMUP_S_DEFAULT);
  assert.equal(SOAK_WARMUP_S_DEFAULT, 120);
  assert.equal(benchPointFromFlags(['--soak', '300', '--rate', '1000', '--warmup', '5']).point.warmupS, 5);
  assert.equal(benchPointFromFlags(['--inflight', '64']).point.warmupS, 10);
});

test('paxline bench --soak needs --rate', () => {
  const r = spawnSync(process.execPath, [CLI_PATH, 'bench', '--soak', '5'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--rate/);
});
