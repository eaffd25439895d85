/**
 * `paxline bench-micro [--json] [--quick] [--filter NAME]`: runs the micro benchmarks
 * (bench/micro/micro.ts) and prints a table, one row per task as it finishes; with --json, only
 * one line `{"results":[…]}` on stdout (progress goes to stderr). --quick runs each task for a
 * few milliseconds (the smoke test's setting: its figures are noise). --filter keeps the tasks
 * whose name contains NAME or whose group is NAME (ring, codec, crc32c, log, core).
 */
import {
  type MicroResult, crc32cImplementation, microTaskNames, runMicroBenchmarks,
} from '../../bench/micro/micro.js';
import { UsageError, parseFlags } from './flags.js';

const NAME_COLUMN = 54;

function formatNs(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(2)} µs`;
  return `${(ns / 1e6).toFixed(2)} ms`;
}

function formatRate(perSec: number): string {
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)} M`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(1)} k`;
  return perSec.toFixed(1);
}

function row(cells: readonly string[]): string {
  const [name = '', ...rest] = cells;
  return name.padEnd(NAME_COLUMN) + rest.map((c) => c.padStart(12)).join('');
}

const HEADER = row(['benchmark', 'ops/s', 'mean', 'p99', 'MB/s', 'samples', 'unit']);

function tableRow(r: MicroResult): string {
  return row([
    r.name, formatRate(r.opsPerSec), formatNs(r.meanNs), formatNs(r.p99Ns),
    r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(1), String(r.samples), r.unit,
  ]);
}

export async function benchMicroCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { json: 'boolean', quick: 'boolean', filter: 'string' });
  const json = f.json === true;
  const filter = f.filter;
  if (microTaskNames(filter).length === 0) {
    throw new UsageError(
      `--filter '${filter ?? ''}' matches no benchmark: give a group ` +
      '(ring, codec, crc32c, log, core) or part of a name (paxline bench-micro --quick lists them)',
    );
  }
  if (!json) {
    const quickNote = f.quick === true ? ', --quick (figures are noise)' : '';
    console.log(`node ${process.version}, crc32c ${crc32cImplementation}${quickNote}`);
    console.log(HEADER);
  }
  const results = await runMicroBenchmarks({
    quick: f.quick === true,
    ...(filter !== undefined ? { filter } : {}),
    onResult: (r) => {
      if (json) process.stderr.write(`${r.name}: ${formatRate(r.opsPerSec)} ops/s\n`);
      else console.log(tableRow(r));
    },
  });
  if (json) {
    console.log(JSON.stringify({ results, node: process.version, crc32c: crc32cImplementation }));
  }
  return 0;
}
