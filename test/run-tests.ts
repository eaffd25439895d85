/**
 * Runs every compiled test file (dist/test/**\/*.test.js) with node's built-in runner.
 * Node 20's `--test` takes no glob, so this script finds the files and passes them explicitly.
 * Extra arguments are passed through (e.g. `--test-name-pattern=sim`).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findTests(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const here = dirname(fileURLToPath(import.meta.url));
const files = findTests(here, []);
if (files.length === 0) {
  console.error('no test files found under', here);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', ...process.argv.slice(2), ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
