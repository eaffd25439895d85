/**
 * `paxline start --config cluster.json --id N [--init] [--json]`: runs one replica of the
 * built-in key-value service in this process — the replica (three stage workers) plus the client
 * endpoint on the main thread. SIGINT / SIGTERM close it gracefully, then the process exits.
 *
 * Prints one line once the replica is up (with --json: {"id","pid","peer","client"}); errors
 * name the config file and field, or the data directory.
 */
import { fileURLToPath } from 'node:url';
import { startClientServer } from '../kv/client-server.js';
import { createReplica } from '../runtime/replica.js';
import { ConfigError, formatAddress, loadClusterConfig, type ClusterConfig } from './cluster-config.js';
import { UsageError, parseFlags } from './flags.js';

export const KV_MACHINE_PATH = fileURLToPath(new URL('../kv/kv-machine.js', import.meta.url));

export function replicaOptionsFor(config: ClusterConfig, id: number, init: boolean): Parameters<typeof createReplica>[0] {
  const me = config.replicas.find((r) => r.id === id);
  if (!me) throw new UsageError(`--id ${id}: not a replica of ${config.path} (ids: ${config.replicas.map((r) => r.id).join(', ')})`);
  return {
    ...config.options,
    clusterId: config.clusterId,
    replicaId: id,
    members: config.replicas.map((r) => ({ id: r.id, host: r.peer.host, port: r.peer.port })),
    dataDir: me.dataDir,
    init,
    stateMachine: KV_MACHINE_PATH,
  };
}

export async function startCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { config: 'string', id: 'number', init: 'boolean', json: 'boolean' });
  if (f.config === undefined) throw new UsageError('start needs --config FILE');
  if (f.id === undefined) throw new UsageError('start needs --id N');
  const config = loadClusterConfig(f.config);
  const options = replicaOptionsFor(config, f.id, f.init === true);
  const me = config.replicas.find((r) => r.id === f.id)!;
  let replica: Awaited<ReturnType<typeof createReplica>>;
  try {
    replica = await createReplica(options);
  } catch (e) {
    const err = e as Error & { code?: string; field?: string };
    // An option from the config file: name the file and the field.
    if (err.code === 'PAXLINE_BAD_OPTION' && err.field !== undefined) {
      throw new ConfigError(config.path, `options.${err.field}`, err.message.replace(/^options\.[^:]*: /, ''));
    }
    throw e;
  }
  let clients: Awaited<ReturnType<typeof startClientServer>>;
  try {
    clients = await startClientServer({
      host: me.client.host,
      port: me.client.port,
      replica,
      clientAddressOf: (id) => {
        const r = config.replicas.find((x) => x.id === id);
        return r ? formatAddress(r.client) : undefined;
      },
    });
  } catch (e) {
    await replica.close();
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(config.path, `replicas[id ${f.id}].client`, `cannot listen on ${formatAddress(me.client)}: ${err.code ?? err.message}`);
  }
  let stopping: Promise<void> | null = null;
  const stop = (why: string, code: number): Promise<void> => {
    stopping ??= (async () => {
      process.stderr.write(`paxline: replica ${f.id} stopping (${why})\n`);
      await clients.close();
      await replica.close();
      process.exitCode = code;
    })();
    return stopping;
  };
  replica.on('error', (e: Error) => {
    process.stderr.write(`paxline: replica ${f.id} failed: ${e.message}\n`);
    void stop('failure', 1);
  });
  replica.on('logError', (e: Error) => process.stderr.write(`paxline: replica ${f.id} log: ${e.message}\n`));
  replica.on('role', (r: { role: string; primary: number }) => {
    process.stderr.write(`paxline: replica ${f.id} is ${r.role}${r.primary >= 0 ? ` (primary: ${r.primary})` : ''}\n`);
  });
  const line = { id: f.id, pid: process.pid, peer: formatAddress(me.peer), client: formatAddress(me.client), incarnation: replica.incarnation };
  console.log(f.json ? JSON.stringify(line) : `paxline: replica ${f.id} up (incarnation ${replica.incarnation}): peers on ${line.peer}, clients on ${line.client}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => void stop('SIGINT', 0).then(resolve));
    process.once('SIGTERM', () => void stop('SIGTERM', 0).then(resolve));
    replica.once('error', () => void stop('failure', 1).then(resolve));
  });
  return Number(process.exitCode ?? 0);
}
