/**
 * `npm run profile` (node dist/bench/profile/profile.js [flags]): captures the PRIMARY replica
 * under embedded load, once per tool, one after the other (never two profilers at once):
 *
 *   cpu     --cpu-prof on every thread of all three replica processes → cpu/*.cpuprofile, the
 *           per-thread summary (summary.txt) and flamegraphs of the primary's threads, cut to
 *           the capture window (cpu/flame/<thread>/flamegraph.html, by 0x --visualize-cpu-profile)
 *   0x      a flamegraph of the primary's MAIN thread (0x sees no worker thread) → 0x/flamegraph/
 *   doctor  clinic doctor of the primary process (event-loop delay, CPU, memory, handles)
 *   flame   clinic flame of the primary (0x underneath: main thread only)
 *
 * Flags: --tools cpu,0x,doctor,flame (default all) --command-bytes N (16) --inflight N (4096)
 *        --rate R (open loop at R ops/s, --inflight capping what is outstanding; default closed loop)
 *        --warmup S (5) --capture S (15) --dir D (data parent, default os.tmpdir(); a real disk)
 *        --out D (default profiles/raw/<timestamp>) --top N (15)
 *        --summarize D: only print (and save) the summary of an existing capture's cpu/ folder.
 *
 * Raw output goes under profiles/raw/ (git-ignored). What is measured and what is not: see
 * capture.ts (how the set is run) and summary.ts (what the summary counts); profiles/README.md
 * says how to read them. The three replicas and the load share this machine's 2 cores, so a
 * profile shows where the CPU goes under contention, not a replica on a machine of its own.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, parseFlags } from '../../src/cli/flags.js';
import { SLOTS_MAX } from '../cluster/workload.js';
import { TOOLS, capture, wasInterrupted, type CaptureResult, type Tool } from './capture.js';
import { formatSummary, readThreads, renderFlamegraphs } from './summary.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const log = (line: string): void => { process.stderr.write(`profile: ${line}\n`); };

function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
}

function summarize(cpuDir: string, outFile: string, topN: number, flamegraphs: boolean): string {
  const threads = readThreads(cpuDir, topN);
  if (threads.length === 0) throw new Error(`no .cpuprofile in ${cpuDir}`);
  const text = formatSummary(cpuDir, threads, topN);
  writeFileSync(outFile, `${text}\n`);
  if (flamegraphs) {
    const html = renderFlamegraphs(cpuDir, threads, log);
    log(`${html.length} window-only flamegraph(s) of the primary's threads under ${join(cpuDir, 'flame')}`);
  }
  return text;
}

function parse(argv: readonly string[]): {
  tools: Tool[]; commandBytes: number; inflight: number; rateOpsPerSec: number | null; warmupS: number; captureS: number; dataParent: string;
  out: string; topN: number; summarizeOnly: string | null;
} {
  const f = parseFlags(argv, {
    tools: 'string', 'command-bytes': 'number', inflight: 'number', warmup: 'number', capture: 'number',
    dir: 'string', out: 'string', top: 'number', summarize: 'string', rate: 'number',
  });
  const tools = (f.tools ?? TOOLS.join(',')).split(',').map((t) => t.trim()).filter((t) => t !== '');
  for (const t of tools) if (!(TOOLS as readonly string[]).includes(t)) throw new UsageError(`--tools: unknown tool '${t}' (cpu, 0x, doctor, flame)`);
  const inflight = f.inflight ?? 4096;
  if (!Number.isSafeInteger(inflight) || inflight < 1 || inflight > SLOTS_MAX) throw new UsageError(`--inflight must be an integer in [1, ${SLOTS_MAX}]`);
  const rateOpsPerSec = f.rate ?? null;
  if (rateOpsPerSec !== null && !(rateOpsPerSec > 0)) throw new UsageError('--rate must be > 0 ops/s');
  const warmupS = f.warmup ?? 5;
  const captureS = f.capture ?? 15;
  if (!(warmupS >= 0) || !(captureS > 0)) throw new UsageError('--warmup must be ≥ 0 and --capture > 0 seconds');
  return {
    tools: tools as Tool[], commandBytes: f['command-bytes'] ?? 16, inflight, rateOpsPerSec, warmupS, captureS,
    dataParent: f.dir ?? tmpdir(), out: resolve(f.out ?? join(REPO, 'profiles', 'raw', timestamp())),
    topN: f.top ?? 15, summarizeOnly: f.summarize ?? null,
  };
}

function describe(r: CaptureResult): string {
  const rep = r.report;
  const what = rep === null ? 'no report' : rep.error !== null ? `error: ${rep.error}` : `${rep.opsPerSec.toLocaleString('en-US')} ops/s under the profiler`;
  return `${r.tool}: ${what}; primary exit ${r.primaryExit ?? 'signal'}; ${r.elapsedS.toFixed(0)} s; output in ${r.dir}`;
}

async function main(argv: readonly string[]): Promise<number> {
  const o = parse(argv);
  if (o.summarizeOnly !== null) {
    const dir = resolve(o.summarizeOnly);
    console.log(summarize(dir, join(dir, 'summary.txt'), o.topN, false));
    return 0;
  }
  mkdirSync(o.out, { recursive: true });
  log(`output in ${o.out}`);
  const results: CaptureResult[] = [];
  for (const tool of o.tools) {
    const r = await capture(tool, { commandBytes: o.commandBytes, inflight: o.inflight, rateOpsPerSec: o.rateOpsPerSec, warmupS: o.warmupS, captureS: o.captureS, dataParent: o.dataParent }, join(o.out, tool), log);
    log(describe(r));
    results.push(r);
    if (wasInterrupted()) {
      log('interrupted (Ctrl-C): no further capture');
      break;
    }
  }
  let failed = results.some((r) => r.report === null || r.report.error !== null || r.primaryExit !== 0);
  const cpu = results.find((r) => r.tool === 'cpu');
  if (cpu !== undefined) {
    try {
      console.log(summarize(cpu.dir, join(o.out, 'summary.txt'), o.topN, true));
      log(`summary saved as ${join(o.out, 'summary.txt')}`);
    } catch (e) {
      log(`no summary: ${(e as Error).message}`);
      failed = true;
    }
  }
  for (const r of results) console.log(describe(r));
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: unknown) => {
  if (e instanceof UsageError) {
    console.error(`profile: ${e.message}`);
    process.exit(2);
  }
  console.error(e);
  process.exit(1);
});
