/**
 * `paxline local [--replicas 3] [--json] [--dir DIR]`: a whole replica set on this machine — the
 * embedded default a new user tries first. Writes a cluster config into a fresh temporary folder
 * (or DIR; a DIR an earlier `paxline local` used is started again from its data, without --init),
 * starts `paxline start --init` for each replica as a child process bound to 127.0.0.1
 * only, and prints where each listens (with --json, once all are up, one line
 * {"config","replicas":[{"id","pid","peer","client"}]}). It records the config as the default
 * for `paxline kv` / `paxline status` in the current-cluster file (see currentClusterFile), and
 * stops its replicas on SIGINT / SIGTERM, removing the temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { UsageError, parseFlags } from './flags.js';
import { freePorts } from '../util/free-ports.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** Where `paxline local` records the running cluster's config path. */
export function currentClusterFile(): string {
  return join(process.env.PAXLINE_HOME ?? join(homedir(), '.paxline'), 'current-cluster');
}


interface Up { id: number; pid: number; peer: string; client: string }

function startChild(config: string, id: number, init: boolean): { child: ChildProcess; up: Promise<Up> } {
  const child = spawn(process.execPath, [MAIN, 'start', '--config', config, '--id', String(id), ...(init ? ['--init'] : []), '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const up = new Promise<Up>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as Up);
      } catch {
        reject(new Error(`replica ${id} printed '${line}'`));
      }
    });
    child.once('exit', (code, signal) => reject(new Error(`replica ${id} exited (${signal ?? code}) before it was up`)));
  });
  child.stderr!.on('data', (b: Buffer) => process.stderr.write(b));
  return { child, up };
}

export async function localCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { replicas: 'number', json: 'boolean', dir: 'string' });
  const n = f.replicas ?? 3;
  if (!Number.isInteger(n) || n < 1 || n > 9 || n % 2 === 0) throw new UsageError('--replicas must be 1, 3, 5, 7 or 9');
  const owned = f.dir === undefined;
  const dir = f.dir ?? mkdtempSync(join(tmpdir(), 'paxline-local-'));
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'cluster.json');
  // --dir of an earlier `paxline local`: start that replica set again from its data (no --init).
  const again = !owned && existsSync(config);
  let replicas: { id: number; peer: string; client: string; dataDir: string }[];
  if (again) {
    replicas = (JSON.parse(readFileSync(config, 'utf8')) as { replicas: typeof replicas }).replicas;
    if (replicas.length !== n && f.replicas !== undefined) throw new UsageError(`${config} has ${replicas.length} replicas, not ${n}`);
  } else {
    const ports = await freePorts(2 * n);
    replicas = Array.from({ length: n }, (_, i) => ({
      id: i + 1, peer: `127.0.0.1:${ports[2 * i]}`, client: `127.0.0.1:${ports[2 * i + 1]}`, dataDir: `r${i + 1}`,
    }));
    writeFileSync(config, `${JSON.stringify({ clusterId: `local-${process.pid}`, replicas }, null, 2)}\n`);
  }
  const children = replicas.map((r) => ({ id: r.id, ...startChild(config, r.id, !again) }));
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    stopping = true;
    await Promise.all(children.map(({ child }) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    })));
    rmSync(currentClusterFile(), { force: true });
    if (owned) rmSync(dir, { recursive: true, force: true });
  };
  let ups: Up[];
  try {
    ups = await Promise.all(children.map((c) => c.up));
  } catch (e) {
    await stopAll();
    throw e;
  }
  mkdirSync(join(currentClusterFile(), '..'), { recursive: true });
  writeFileSync(currentClusterFile(), `${config}\n`);
  if (f.json) {
    console.log(JSON.stringify({ config, replicas: ups.map(({ id, pid, peer, client }) => ({ id, pid, peer, client })) }));
  } else {
    console.log(`paxline local: ${n} replicas up, data in ${dir}`);
    for (const u of ups) console.log(`  replica ${u.id}  pid ${u.pid}  peers ${u.peer}  clients ${u.client}`);
    console.log(`config: ${config}\ntry, from another terminal:  paxline kv put a 1  then  paxline kv get a\nCtrl-C stops the replicas.`);
  }
  for (const c of children) {
    c.child.once('exit', (code, signal) => {
      if (!stopping) process.stderr.write(`paxline local: replica ${c.id} exited (${signal ?? code})\n`);
    });
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => void stopAll().then(resolve);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
