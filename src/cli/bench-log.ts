/**
 * `paxline bench-log`: the storage benchmark (group commit vs the raw fdatasync floor, 16-byte
 * commands through the log stage, recovery verification speed). Prints progress to stderr and,
 * with --json, one summary line on stdout.
 */
import { runLogBench } from '../../bench/micro/log.js';
import { UsageError, parseFlags } from './flags.js';

export async function benchLogCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, {
    json: 'boolean', dir: 'string', 'phase-ms': 'number', rounds: 'number', 'commands-ms': 'number',
    'recovery-mb': 'number', quick: 'boolean',
  });
  const quick = f.quick === true;
  const recoveryMb = f['recovery-mb'] ?? (quick ? 64 : 1024);
  if (!(recoveryMb >= 1)) throw new UsageError('--recovery-mb must be ≥ 1');
  const result = await runLogBench({
    ...(f.dir !== undefined ? { dir: f.dir } : {}),
    phaseMs: f['phase-ms'] ?? (quick ? 300 : 2000),
    rounds: f.rounds ?? (quick ? 1 : 3),
    commandsMs: f['commands-ms'] ?? (quick ? 500 : 4000),
    recoveryBytes: Math.round(recoveryMb * 1024 * 1024),
  }, (line) => process.stderr.write(`${line}\n`));
  console.log(f.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
  return 0;
}
