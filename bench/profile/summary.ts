/**
 * The per-thread summary of a `cpu` capture (bench/profile/capture.ts): for every .cpuprofile in
 * the folder, the thread's name (main-rN, paxline-log-rN, paxline-apply-rN,
 * paxline-consensus-rN — the runtime's worker names), its time split and its top functions by
 * self time; plus window-only copies of the primary's profiles rendered as flamegraphs with
 * `0x --visualize-cpu-profile`.
 *
 * Naming: the file name gives pid and thread id (Node's CPU.<date>.<time>.<pid>.<tid>.<seq>);
 * replica-pids.json (written by the capture) maps pid → replica id; a worker's kind comes from
 * the modules in its frames (cpuprofile.ts threadKindOf).
 *
 * What is summarised: only the samples inside the capture window recorded by the primary
 *  (primary-report.json, monotonic µs) — start-up, warm-up, drain and close are left out — for
 *  every process, followers included (same clock). Without a report, whole profiles.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  pidTidOf, readProfile, summarizeProfile, threadKindOf, trimProfile, type ProfileSummary, type ThreadKind, type WindowUs,
} from './cpuprofile.js';
import type { PrimaryReport } from './primary-main.js';

export interface ThreadProfile {
  readonly file: string;
  readonly name: string;
  readonly pid: number;
  readonly tid: number;
  readonly replicaId: number | null;
  readonly primary: boolean;
  readonly kind: ThreadKind;
  readonly summary: ProfileSummary;
}

const KIND_ORDER: Record<ThreadKind, number> = { main: 0, consensus: 1, log: 2, apply: 3, unknown: 4 };
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`.padStart(6);

function readJson<T>(path: string): T | null {
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) as T : null;
}

export function threadName(kind: ThreadKind, replicaId: number | null, tid: number): string {
  const r = replicaId === null ? '?' : String(replicaId);
  if (kind === 'main') return `main-r${r}`;
  if (kind === 'unknown') return `thread${tid}-r${r}`;
  return `paxline-${kind}-r${r}`;
}

export function windowOf(dir: string): WindowUs | null {
  const report = readJson<PrimaryReport>(join(dir, 'primary-report.json'));
  return report !== null && report.windowStartUs !== undefined ? { startUs: report.windowStartUs, endUs: report.windowEndUs } : null;
}

export function readThreads(dir: string, topN: number): ThreadProfile[] {
  const pids = readJson<{ primary: number; replicaPids: Record<string, number> }>(join(dir, 'replica-pids.json'));
  const window = windowOf(dir);
  const out: ThreadProfile[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort()) {
    const id = pidTidOf(file);
    if (id === null) continue;
    const p = readProfile(join(dir, file));
    const kind = threadKindOf(p, id.tid);
    const replicaId = pids?.replicaPids[String(id.pid)] ?? null;
    out.push({
      file, pid: id.pid, tid: id.tid, replicaId, kind, name: threadName(kind, replicaId, id.tid),
      primary: replicaId !== null && replicaId === pids?.primary,
      summary: summarizeProfile(p, window, topN),
    });
  }
  return out.sort((a, b) => Number(b.primary) - Number(a.primary) || (a.replicaId ?? 99) - (b.replicaId ?? 99) || KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}

export function formatSummary(dir: string, threads: readonly ThreadProfile[], topN: number): string {
  const lines: string[] = [];
  const report = readJson<PrimaryReport>(join(dir, 'primary-report.json'));
  const window = windowOf(dir);
  lines.push(`paxline profile summary: ${dir}`);
  if (report !== null && window !== null) {
    const l = report.window.latency;
    lines.push(`capture window ${((window.endUs - window.startUs) / 1e6).toFixed(1)} s; primary = replica ${report.replicaId} (pid ${report.pid}): ${report.opsPerSec.toLocaleString('en-US')} ops/s under the profiler, p50 ${l.p50Ms.toFixed(2)} ms, p99 ${l.p99Ms.toFixed(2)} ms`);
    lines.push('Every profile is cut to that window (same monotonic clock in every process).');
  } else {
    lines.push('no primary-report.json: whole profiles (start-up and shutdown included)');
  }
  lines.push('Shares of each thread\'s sampled time. on-CPU = GC + program + JS. Off-CPU: idle = in the event');
  lines.push('loop; blocked = in Atomics.wait (self time of waitSync / wait); sync I/O = in fdatasync.');
  lines.push('');
  lines.push(`${'thread'.padEnd(32)} ${'pid.tid'.padEnd(10)} ${'sampled ms'.padStart(10)} on-CPU     GC program     JS   idle blocked sync-I/O`);
  for (const t of threads) {
    const s = t.summary;
    const onCpu = s.gcShare + s.programShare + s.jsShare;
    lines.push(`${(t.name + (t.primary ? ' (primary)' : '')).padEnd(32)} ${`${t.pid}.${t.tid}`.padEnd(10)} ${s.sampledMs.toFixed(0).padStart(10)} ${pct(onCpu)} ${pct(s.gcShare)}  ${pct(s.programShare)} ${pct(s.jsShare)} ${pct(s.idleShare)}  ${pct(s.blockedShare)}   ${pct(s.syncIoShare)}`);
  }
  for (const t of threads) {
    lines.push('');
    lines.push(`== ${t.name}${t.primary ? ' (primary)' : ''} (${t.file}): top ${topN} by self time ==`);
    for (const f of t.summary.top) {
      lines.push(`  ${f.selfMs.toFixed(1).padStart(9)} ms ${pct(f.selfShare)}  ${f.name}${f.where ? `  ${f.where}` : ''}`);
    }
  }
  return lines.join('\n');
}

/**
 * Window-only copies of the primary's thread profiles, each in flame/<thread>/ and rendered
 * there by `0x --visualize-cpu-profile` (it writes flamegraph.html beside its input).
 * Returns the HTML paths written.
 */
export function renderFlamegraphs(dir: string, threads: readonly ThreadProfile[], log: (line: string) => void): string[] {
  const window = windowOf(dir);
  const zeroX = createRequire(import.meta.url).resolve('0x/cmd.js');
  const written: string[] = [];
  for (const t of threads.filter((x) => x.primary)) {
    const folder = join(dir, 'flame', t.name);
    mkdirSync(folder, { recursive: true });
    const p = readProfile(join(dir, t.file));
    const input = join(folder, `${t.name}.cpuprofile`);
    writeFileSync(input, JSON.stringify(window === null ? p : trimProfile(p, window)));
    const r = spawnSync(process.execPath, [zeroX, '--visualize-cpu-profile', input], { cwd: folder, encoding: 'utf8', timeout: 120_000 });
    const html = join(folder, 'flamegraph.html');
    if (r.status === 0 && existsSync(html)) written.push(html);
    else log(`flamegraph of ${t.name} failed: ${(r.stderr || r.stdout || String(r.error)).slice(-400)}`);
  }
  return written;
}
