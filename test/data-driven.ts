/**
 * A small data-driven test runner in the style of etcd-io/raft's `datadriven` package.
 *
 * A script is a sequence of blocks. Each block is a command line, a `----` line, and the expected
 * output, which ends at the first blank line (or at the end of the file). Lines starting with `#`
 * and blank lines between blocks are commentary and are kept verbatim when the file is rewritten.
 *
 * ```
 * # a comment
 * tick r=0 n=10
 * ----
 * r0 tick 10
 *   r0 role preparing b=1.0
 * ```
 *
 * A command line is a name followed by `key=value` arguments separated by spaces; values hold no
 * spaces. The expected output may not contain blank lines: a handler that produces nothing must
 * say so (the runner prints `ok`), so a block always has at least one line of output.
 *
 * With `REWRITE=1` in the environment the runner writes the actual output back into the file
 * instead of comparing; the diff must then be read in review — the expected output is what the
 * code SHOULD do, not whatever it happens to do.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Block {
  /** Comment and blank lines before the command, verbatim. */
  readonly preamble: readonly string[];
  readonly command: string;
  /** 1-based line number of the command line in its file. */
  readonly line: number;
  readonly expected: readonly string[];
}

export interface Script {
  readonly blocks: readonly Block[];
  /** Comment and blank lines after the last block, verbatim. */
  readonly trailer: readonly string[];
}

export interface Command {
  readonly name: string;
  readonly args: ReadonlyMap<string, string>;
}

export class ScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScriptError';
  }
}

const SEPARATOR = '----';

export function parseScript(text: string, file: string): Script {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const blocks: Block[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      preamble.push(line);
      i++;
      continue;
    }
    const commandLine = i + 1;
    if (lines[i + 1] !== SEPARATOR) {
      throw new ScriptError(`${file}:${commandLine + 1}: expected '${SEPARATOR}' after a command`);
    }
    i += 2;
    const expected: string[] = [];
    while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    blocks.push({ preamble, command: line, line: commandLine, expected });
    preamble = [];
  }
  return { blocks, trailer: preamble };
}

export function parseCommand(line: string): Command {
  const [name, ...rest] = line.trim().split(/\s+/);
  const args = new Map<string, string>();
  for (const token of rest) {
    const eq = token.indexOf('=');
    if (eq <= 0) throw new ScriptError(`argument '${token}' is not key=value`);
    const key = token.slice(0, eq);
    if (args.has(key)) throw new ScriptError(`argument '${key}' given twice`);
    args.set(key, token.slice(eq + 1));
  }
  return { name: name ?? '', args };
}

export function formatScript(script: Script, outputs: readonly (readonly string[])[]): string {
  const out: string[] = [];
  script.blocks.forEach((b, i) => {
    out.push(...b.preamble, b.command, SEPARATOR, ...(outputs[i] ?? []));
  });
  out.push(...script.trailer);
  return out.join('\n') + '\n';
}

export interface Mismatch {
  readonly line: number;
  readonly command: string;
  readonly expected: readonly string[];
  readonly actual: readonly string[];
}

/**
 * Runs one script: `run` is called once per block, in order, and returns the block's output
 * lines (an empty result becomes `ok`). Returns the blocks whose output differs; with REWRITE=1
 * the file is rewritten with the actual output and the result is empty.
 */
export function runScript(path: string, run: (command: string) => string[]): Mismatch[] {
  const script = parseScript(readFileSync(path, 'utf8'), path);
  const outputs: string[][] = [];
  const mismatches: Mismatch[] = [];
  for (const block of script.blocks) {
    let actual: string[];
    try {
      actual = run(block.command);
    } catch (err) {
      // Core assertion failures propagate too (they end the test), named with their block.
      const where = `${path}:${block.line}: ${block.command}`;
      if (err instanceof ScriptError) throw new ScriptError(`${where}: ${err.message}`);
      throw new Error(`${where}: ${String(err)}`, { cause: err });
    }
    if (actual.length === 0) actual = ['ok'];
    outputs.push(actual);
    if (actual.join('\n') !== block.expected.join('\n')) {
      const { line, command, expected } = block;
      mismatches.push({ line, command, expected, actual });
    }
  }
  if (process.env['REWRITE'] === '1') {
    writeFileSync(path, formatScript(script, outputs));
    return [];
  }
  return mismatches;
}

export function describeMismatches(path: string, mismatches: readonly Mismatch[]): string {
  return mismatches
    .map((m) => [
      `${path}:${m.line}: ${m.command}`,
      '  expected:', ...m.expected.map((l) => `    ${l}`),
      '  actual:', ...m.actual.map((l) => `    ${l}`),
    ].join('\n'))
    .join('\n\n') + '\n(run with REWRITE=1 to accept the actual output, then review the diff)';
}

export function listScripts(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.txt')).sort().map((f) => join(dir, f));
}
