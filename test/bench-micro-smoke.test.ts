/**
 * Smoke test of the micro benchmarks (bench/micro/micro.ts): every benchmark runs in quick mode
 * (a few milliseconds each) and reports finite positive figures, and none has gone missing. It
 * asserts no speed: timing thresholds on a shared machine would only make the suite flaky. The
 * point is that the benchmarks never rot — each still builds its inputs, drives the code it
 * measures through that code's current API, and checks what it gets back.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MicroResult, runMicroBenchmarks } from '../bench/micro/micro.js';

const EXPECTED_NAMES = [
  'ring push+drain 16 B ×1',
  'ring push+drain 16 B ×64 batched',
  'ring push+drain 1 KiB ×1',
  'ring push+drain 1 KiB ×64 batched',
  'ring 2-thread 16 B',
  'ring 2-thread 1 KiB',
  'codec encodeMessage accept 1024×16 B',
  'codec decodeMessage accept 1024×16 B',
  'codec encodeMessage heartbeat',
  'codec decodeMessage heartbeat',
  'codec encodeRecord accept 1024×16 B',
  'codec decodeRecord accept 1024×16 B',
  'codec encodeKvCommand put 16 B key 128 B value',
  'codec decodeKvCommand put 16 B key 128 B value',
  'crc32c 64 B',
  'crc32cJs 64 B',
  'crc32c 4 KiB',
  'crc32cJs 4 KiB',
  'crc32c 64 KiB',
  'crc32cJs 64 KiB',
  'log append+sync 16 KiB (SimFs: CPU only, no disk)',
  'core commit 1 decree (1024×16 B commands, 3 members)',
];

const positive = (x: number): boolean => Number.isFinite(x) && x > 0;

function checkResult(r: MicroResult): void {
  for (const field of ['opsPerSec', 'meanNs', 'p99Ns'] as const) {
    assert.ok(positive(r[field]), `${r.name}: ${field} = ${r[field]}`);
  }
  assert.ok(Number.isInteger(r.samples) && r.samples >= 1, `${r.name}: samples = ${r.samples}`);
  const product = r.opsPerSec * r.meanNs;
  assert.ok(Math.abs(product - 1e9) < 1e3, `${r.name}: opsPerSec is not 1e9 / meanNs`);
  assert.ok(r.unit.length > 0, `${r.name}: no unit`);
  if (r.mbPerSec !== null) assert.ok(positive(r.mbPerSec), `${r.name}: mbPerSec = ${r.mbPerSec}`);
}

test('every micro benchmark runs in quick mode and reports finite positive figures', async () => {
  const progress: string[] = [];
  const results = await runMicroBenchmarks({ quick: true, onResult: (r) => progress.push(r.name) });
  assert.deepEqual(results.map((r) => r.name), EXPECTED_NAMES);
  assert.deepEqual(progress, EXPECTED_NAMES);
  for (const r of results) checkResult(r);
  for (const group of ['ring', 'codec', 'crc32c', 'log', 'core']) {
    assert.ok(results.some((r) => r.group === group), `no ${group} benchmark`);
  }
});

test('--filter keeps the benchmarks whose name contains it or whose group it names', async () => {
  const crc = await runMicroBenchmarks({ quick: true, filter: 'crc32c' });
  assert.deepEqual(crc.map((r) => r.name), EXPECTED_NAMES.filter((n) => n.startsWith('crc32c')));
  const heartbeat = await runMicroBenchmarks({ quick: true, filter: 'HEARTBEAT' });
  assert.deepEqual(
    heartbeat.map((r) => r.name),
    ['codec encodeMessage heartbeat', 'codec decodeMessage heartbeat'],
  );
  assert.deepEqual(await runMicroBenchmarks({ quick: true, filter: 'no such benchmark' }), []);
});

test('paxline bench-micro --quick --json prints one line of results', () => {
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');
  const paxline = (...args: string[]) =>
    spawnSync(process.execPath, [main, 'bench-micro', '--quick', ...args], {
      encoding: 'utf8', timeout: 60_000,
    });
  const run = paxline('--json', '--filter', 'ring');
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, run.stdout);
  const out = JSON.parse(lines[0]!) as { results: MicroResult[] };
  const ringNames = EXPECTED_NAMES.filter((n) => n.startsWith('ring'));
  assert.deepEqual(out.results.map((r) => r.name), ringNames);
  for (const r of out.results) checkResult(r);

  const bad = paxline('--filter', 'nothing-matches');
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /matches no benchmark/);
});
