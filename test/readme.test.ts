/**
 * Keeps the README's promises true: the embedding example printed in the README is the file
 * examples/embedded.mjs, verbatim, and it runs as written (here for one second).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

test('README: the embedding example is examples/embedded.mjs verbatim, and it runs', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const example = readFileSync(join(root, 'examples', 'embedded.mjs'), 'utf8').trimEnd();
  assert.ok(readme.includes(`\`\`\`js\n${example}\n\`\`\``), 'README shows examples/embedded.mjs verbatim');
  const r = spawnSync(process.execPath, [join(root, 'examples', 'embedded.mjs')], {
    cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SECONDS_TO_RUN: '1' },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /replica \d is primary/);
  assert.match(r.stdout, /\d+ puts committed and executed in 1 s: \d+ ops\/s \(1024 in flight\)/);
});

test('README: opens with the set-up-and-run command and the test command', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  assert.match(firstBlock, /^npm install && npm run bench/m);
  assert.match(firstBlock, /^npm test/m);
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.bench, 'package.json has the bench script the README names');
});
