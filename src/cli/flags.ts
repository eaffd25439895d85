/**
 * A small, strict flag parser for the paxline CLI: every flag must be declared with its type;
 * unknown flags and malformed values are usage errors that name the flag.
 */
export class UsageError extends Error {
  readonly code = 'PAXLINE_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type FlagType = 'number' | 'string' | 'boolean';
type FlagValues<S extends Record<string, FlagType>> = {
  [K in keyof S]?: S[K] extends 'number' ? number : S[K] extends 'boolean' ? boolean : string;
};

export function parseFlags<S extends Record<string, FlagType>>(argv: readonly string[], spec: S): FlagValues<S> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const type = spec[name];
    if (type === undefined) throw new UsageError(`unknown flag --${name}`);
    if (type === 'boolean') {
      out[name] = inline === undefined ? true : inline !== 'false';
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    if (type === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${raw}'`);
      out[name] = n;
    } else {
      out[name] = raw;
    }
  }
  return out as FlagValues<S>;
}

/** parseFlags for commands that also take positional arguments (`paxline kv put KEY VALUE`). */
export function parseFlagsAndArgs<S extends Record<string, FlagType>>(
  argv: readonly string[],
  spec: S,
): { flags: FlagValues<S>; args: string[] } {
  const flagArgs: string[] = [];
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      args.push(arg);
      continue;
    }
    flagArgs.push(arg);
    const name = arg.slice(2).split('=', 1)[0]!;
    if (!arg.includes('=') && spec[name] !== undefined && spec[name] !== 'boolean' && i + 1 < argv.length) flagArgs.push(argv[++i]!);
  }
  return { flags: parseFlags(flagArgs, spec), args };
}
