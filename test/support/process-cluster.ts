/**
 * Real replica processes for tests: writes a cluster config in a temporary folder and runs
 * `paxline start` per replica (the built CLI), with helpers to kill -9, SIGSTOP/SIGCONT, stop
 * gracefully and restart. Loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePorts } from './ports.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');

export interface ProcReplica {
  readonly id: number;
  readonly peer: string;
  readonly client: string;
  child: ChildProcess | null;
  stderr: string;
}

export class ProcessCluster {
  readonly dir: string;
  readonly config: string;
  readonly replicas: ProcReplica[];

  private constructor(dir: string, config: string, replicas: ProcReplica[]) {
    this.dir = dir;
    this.config = config;
    this.replicas = replicas;
  }

  static async create(n: number, options: Record<string, number> = {}): Promise<ProcessCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'paxline-procs-'));
    const ports = await freePorts(2 * n);
    const replicas = Array.from({ length: n }, (_, i): ProcReplica => ({
      id: i + 1, peer: `127.0.0.1:${ports[2 * i]}`, client: `127.0.0.1:${ports[2 * i + 1]}`, child: null, stderr: '',
    }));
    const config = join(dir, 'cluster.json');
    writeFileSync(config, JSON.stringify({
      clusterId: 'proc-test',
      replicas: replicas.map((r) => ({ id: r.id, peer: r.peer, client: r.client, dataDir: `r${r.id}` })),
      options,
    }, null, 2));
    return new ProcessCluster(dir, config, replicas);
  }

  get clientAddresses(): string[] {
    return this.replicas.map((r) => r.client);
  }

  /** Starts replica `id`; resolves once it printed its "up" line. */
  start(id: number, init: boolean): Promise<void> {
    const r = this.replicas[id - 1]!;
    const args = [CLI, 'start', '--config', this.config, '--id', String(id), '--json', ...(init ? ['--init'] : [])];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    r.child = child;
    r.stderr = '';
    child.stderr!.on('data', (b: Buffer) => { r.stderr += b.toString(); });
    return new Promise((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', () => resolve());
      child.once('exit', (code, signal) => reject(new Error(`replica ${id} exited (${signal ?? code}) before it was up: ${r.stderr}`)));
    });
  }

  async startAll(init: boolean): Promise<void> {
    await Promise.all(this.replicas.map((r) => this.start(r.id, init)));
  }

  signal(id: number, sig: NodeJS.Signals): void {
    const c = this.replicas[id - 1]!.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) throw new Error(`replica ${id} is not running`);
    c.kill(sig);
  }

  /** Sends `sig` and waits for the exit; resolves with the exit code (null when killed). */
  async stop(id: number, sig: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const r = this.replicas[id - 1]!;
    const c = r.child;
    if (!c) return { code: null, signal: null };
    if (c.exitCode !== null || c.signalCode !== null) return { code: c.exitCode, signal: c.signalCode };
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      c.once('exit', (code, signal) => resolve({ code, signal }));
    });
    c.kill(sig);
    const res = await exited;
    r.child = null;
    return res;
  }

  async destroy(): Promise<void> {
    for (const r of this.replicas) {
      if (r.child && r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGCONT');
        await this.stop(r.id, 'SIGKILL');
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const CLI_PATH = CLI;
