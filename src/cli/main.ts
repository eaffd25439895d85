#!/usr/bin/env node
/**
 * The `paxline` command. Subcommands so far: `sim` (the deterministic simulator).
 */
import { benchLogCommand } from './bench-log.js';
import { simCommand } from './sim.js';

const USAGE = `usage: paxline <command> [flags]

commands:
  sim   run the deterministic simulator
        --seeds N        number of seeds (default 100), starting at --start (default 1)
        --seed N         replay one seed (also SEED=N); prints its trace hash
        --replicas 3|5   cluster size (default: drawn per seed)
        --mutation NAME  inject a deliberate bug, to prove the checkers catch it
        --json           print one summary JSON line
        --verbose        one line per seed
  bench-log   measure the log: group commit vs the fdatasync floor, 16-byte commands
              through the log stage, recovery speed (--json, --dir, --quick, --recovery-mb N)`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'sim':
      return simCommand(rest);
    case 'bench-log':
      return benchLogCommand(rest);
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
  if (e.code === 'PAXLINE_USAGE') {
    console.error(`paxline: ${e.message}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
