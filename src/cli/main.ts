#!/usr/bin/env node
/**
 * The `paxline` command: run replicas (`start`, `local`), talk to them (`kv`, `status`), and the
 * simulator and benchmarks.
 */
import { BENCH_USAGE, benchCommand } from './bench.js';
import { benchLogCommand } from './bench-log.js';
import { benchMicroCommand } from './bench-micro.js';
import { kvCommand } from './kv.js';
import { localCommand } from './local.js';
import { simCommand } from './sim.js';
import { startCommand } from './start.js';
import { statusCommand } from './status.js';

const USAGE = `usage: paxline <command> [flags]

commands:
  local       start a whole replica set on 127.0.0.1 in a temporary folder (Ctrl-C stops it)
              --replicas N (default 3)  --json  --dir DIR
  start       run one replica of the key-value service
              --config FILE --id N  [--init: new cluster, empty data directory]  [--json]
  status      role and decrees of every replica  [--config FILE] [--json]
  kv          get KEY | put KEY VALUE | cas KEY EXPECTED VALUE | cas --absent KEY VALUE
              [--config FILE (default: $PAXLINE_CONFIG, else the last 'paxline local')]
              [--stale: read a replica's local state]  [--json]  [--timeout-ms N]
  sim   run the deterministic simulator
        --seeds N        number of seeds (default 100), starting at --start (default 1)
        --seed N         replay one seed (also SEED=N); prints its trace hash
        --replicas 3|5   cluster size (default: drawn per seed)
        --mutation NAME  inject a deliberate bug, to prove the checkers catch it
        --json           print one summary JSON line
        --verbose        one line per seed
${BENCH_USAGE}
  bench-log   measure the log: group commit vs the fdatasync floor, 16-byte commands
              through the log stage, recovery speed (--json, --dir, --quick, --recovery-mb N)
  bench-micro micro benchmarks: rings, codecs, CRC32C, log append, the core's commit
              computation (--json, --quick, --filter NAME)`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sim':
      return simCommand(rest);
    case 'start':
      return startCommand(rest);
    case 'local':
      return localCommand(rest);
    case 'kv':
      return kvCommand(rest);
    case 'status':
      return statusCommand(rest);
    case 'bench':
      return benchCommand(rest);
    case 'bench-log':
      return benchLogCommand(rest);
    case 'bench-micro':
      return benchMicroCommand(rest);
    case undefined:
    case '--help':
    case 'help':
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    default:
      console.error(`paxline: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const e = err as Error & { code?: string };
  if (e.code === 'PAXLINE_USAGE' || e.code === 'PAXLINE_BAD_CONFIG' || e.code === 'PAXLINE_BAD_OPTION' ||
      e.code === 'PAXLINE_INVALID_OPTION' ||
      e.code === 'PAXLINE_DATA_DIR_EMPTY' || e.code === 'PAXLINE_DATA_DIR_MISMATCH') {
    console.error(`paxline: ${e.message}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
