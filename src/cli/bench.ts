/**
 * `paxline bench [--json] [--load embedded|client] [--command-bytes N] [--inflight N]
 *  [--duration S] [--warmup S] [--rate R] [--dir D] [--pipeline-depth N] [--batch-count-max N]
 *  [--batch-bytes-max N] [--batch-delay-ms N] [--secondary-apply-nice N|auto]`: one point of the cluster benchmark (bench/cluster/cluster-bench.ts) —
 * three replica processes on 127.0.0.1, fdatasync on, KV puts of --command-bytes VALUE bytes
 * (16-byte keys). With --json, exactly one JSON line on stdout; otherwise a short summary.
 * Progress goes to stderr (a bar on a terminal, a line every few seconds otherwise).
 *
 * Exit status: 0 for a valid run; 1 when the run is invalid (an election in the window, digests
 * differ, nothing completed) — the line is printed either way; 2 for a usage error.
 *
 * `--soak S --rate R [--sample-every S] [--segment-bytes N] [--checkpoint-every N]`: the memory
 * soak (bench/cluster/soak.ts) — S seconds open loop at R ops/s, RSS of each replica sampled;
 * exit 1 also when the memory check fails.
 */
import { BenchError, runClusterBench, type BenchPoint, type Progress } from '../../bench/cluster/cluster-bench.js';
import { SOAK_WARMUP_S_DEFAULT, formatSoak, runSoak } from '../../bench/cluster/soak.js';
import { secondaryApplyNiceOption } from '../runtime/options.js';
import { UsageError, parseFlags } from './flags.js';

export const BENCH_USAGE = `  bench       one point of the cluster benchmark: 3 replica processes, fdatasync on, KV puts
              --load embedded|client (default embedded)  --command-bytes N (value size; default
              16 embedded, 128 client)  --inflight N (default 1024)  --duration S (default 30)
              --warmup S (default 10)  --rate R (open loop, R ops/s)  --dir D  --json
              --pipeline-depth N  --batch-count-max N  --batch-bytes-max N  --batch-delay-ms N
              --secondary-apply-nice N|auto (a secondary's apply thread; default auto)
              --soak S --rate R: memory soak for S s (RSS per replica every --sample-every S,
              default 5; --segment-bytes N, --checkpoint-every N decrees; warm-up default 120)`;

/** Renders progress on stderr: a redrawn bar on a terminal, otherwise a line every 5 s. */
export function progressPrinter(label: string): (p: Progress) => void {
  const tty = process.stderr.isTTY === true;
  let lastLineMs = -Infinity;
  let lastPhase = '';
  return (p) => {
    const width = 24;
    const filled = Math.max(0, Math.min(width, Math.round(p.fraction * width)));
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.text}`;
    if (tty) {
      process.stderr.write(`\r\x1b[K${line}${p.phase === 'done' ? '\n' : ''}`);
      return;
    }
    const now = performance.now();
    if (p.phase !== lastPhase || now - lastLineMs >= 5000) {
      lastPhase = p.phase;
      lastLineMs = now;
      process.stderr.write(`${line}\n`);
    }
  };
}

export function benchPointFromFlags(argv: readonly string[]): { point: BenchPoint; json: boolean; soak: { sampleEveryS: number } | null } {
  const f = parseFlags(argv, {
    json: 'boolean', load: 'string', 'command-bytes': 'number', inflight: 'number', duration: 'number',
    warmup: 'number', rate: 'number', dir: 'string', 'pipeline-depth': 'number', 'batch-count-max': 'number', 'batch-delay-ms': 'number',
    'batch-bytes-max': 'number', soak: 'number', 'sample-every': 'number', 'segment-bytes': 'number',
    'checkpoint-every': 'number', 'secondary-apply-nice': 'string',
  });
  const niceFlag = f['secondary-apply-nice'];
  let secondaryApplyNice: number | 'auto' | undefined;
  if (niceFlag !== undefined) {
    // Checked here by the replica option's own validation, so a bad value is a usage error.
    try {
      secondaryApplyNice = secondaryApplyNiceOption(niceFlag === 'auto' ? 'auto' : /^\d+$/.test(niceFlag) ? Number(niceFlag) : NaN, process.platform);
    } catch (e) {
      throw new UsageError(`--secondary-apply-nice must be auto or an integer in [0, 19], got '${niceFlag}' (${(e as Error).message})`);
    }
  }
  if (f.soak !== undefined && f.duration !== undefined) throw new UsageError('--soak S sets the window length: drop --duration');
  if (f.soak !== undefined && f.rate === undefined) throw new UsageError('--soak runs open loop: give --rate R (e.g. 70 % of the peak ops/s)');
  const load = f.load ?? 'embedded';
  if (load !== 'embedded' && load !== 'client') throw new UsageError(`--load must be embedded or client, got '${load}'`);
  const point: BenchPoint = {
    load,
    inflight: f.inflight ?? 1024,
    durationS: f.soak ?? f.duration ?? 30,
    warmupS: f.warmup ?? (f.soak !== undefined ? SOAK_WARMUP_S_DEFAULT : 10),
    ...(f['command-bytes'] !== undefined ? { commandBytes: f['command-bytes'] } : {}),
    ...(f.rate !== undefined ? { rateOpsPerSec: f.rate } : {}),
    ...(f.dir !== undefined ? { dir: f.dir } : {}),
    ...(f['pipeline-depth'] !== undefined ? { pipelineDepth: f['pipeline-depth'] } : {}),
    ...(secondaryApplyNice !== undefined ? { secondaryApplyNice } : {}),
    ...(f['batch-count-max'] !== undefined ? { batchCountMax: f['batch-count-max'] } : {}),
    ...(f['batch-bytes-max'] !== undefined ? { batchBytesMax: f['batch-bytes-max'] } : {}),
    ...(f['batch-delay-ms'] !== undefined ? { batchDelayMs: f['batch-delay-ms'] } : {}),
    ...(f['segment-bytes'] !== undefined ? { segmentBytes: f['segment-bytes'] } : {}),
    ...(f['checkpoint-every'] !== undefined ? { checkpointEveryDecrees: f['checkpoint-every'] } : {}),
  };
  const soak = f.soak === undefined ? null : { sampleEveryS: f['sample-every'] ?? 5 };
  return { point, json: f.json === true, soak };
}

async function soakCommand(point: BenchPoint, json: boolean, sampleEveryS: number): Promise<number> {
  let result;
  try {
    result = await runSoak({ point, sampleEveryS }, progressPrinter('soak'));
  } catch (e) {
    if (e instanceof BenchError && e.code === 'PAXLINE_USAGE') throw new UsageError(e.message);
    if (e instanceof BenchError) {
      console.error(`paxline bench --soak: ${e.message}`);
      return 1;
    }
    throw e;
  }
  console.log(json ? JSON.stringify(result) : formatSoak(result));
  return result.bench.valid && result.pass ? 0 : 1;
}

export async function benchCommand(argv: readonly string[]): Promise<number> {
  const { point, json, soak } = benchPointFromFlags(argv);
  if (soak !== null) return soakCommand(point, json, soak.sampleEveryS);
  let result;
  try {
    result = await runClusterBench(point, progressPrinter('bench'));
  } catch (e) {
    if (e instanceof BenchError && e.code === 'PAXLINE_USAGE') throw new UsageError(e.message);
    if (e instanceof BenchError) {
      console.error(`paxline bench: ${e.message}`);
      return 1;
    }
    throw e;
  }
  if (json) {
    console.log(JSON.stringify(result));
  } else {
    const r = result;
    console.log(`${r.load} load, ${r.commandBytes}-byte values (${r.encodedCommandBytes}-byte commands), ${r.inflight} in flight${r.rateOpsPerSec !== null ? `, open loop at ${r.rateOpsPerSec} ops/s` : ''}:`);
    console.log(`  ${r.opsPerSec.toLocaleString('en-US')} ops/s over ${r.windowS} s; latency p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, p99.9 ${r.p999Ms} ms`);
    console.log(`  ${r.decreesPerSec} decrees/s, ${r.commandsPerFsync} commands per fsync, ${r.fsyncsPerSec} fsyncs/s, fsync p99 ${r.fsyncP99Ms} ms (${r.filesystem})`);
    console.log(`  max lag ${r.maxLagDecrees.join(' / ')} decrees; elections ${r.elections}; busy ${r.busyRejected}; errors ${r.errors}`);
    console.log(`  CPU µs per op: ${r.cpuProcesses.map((n, i) => `${n} ${r.cpuUsPerOp[i]}`).join(', ')}`);
    console.log(`  state digests ${r.stateDigestsEqual ? 'equal' : 'DIFFER'}; ${r.valid ? 'valid' : `INVALID: ${r.invalidReasons.join('; ')}`}`);
  }
  return result.valid ? 0 : 1;
}
