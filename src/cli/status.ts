/**
 * `paxline status [--config FILE] [--json] [--timeout-ms N]`: asks every replica of the set for
 * its status over the client protocol (op 3) and prints one line per replica — or, with --json,
 * one line {"primary": id|null, "replicas":[{"id","up","role","primary","committed","executed",…}]}.
 * A replica that does not answer within the timeout is reported as down.
 */
import { connect } from 'node:net';
import { FrameReader, OP_STATUS, decodeResponse, encodeRequest } from '../kv/client-protocol.js';
import type { ReplicaStatus } from '../runtime/replica.js';
import { formatAddress, loadClusterConfig } from './cluster-config.js';
import { parseFlags } from './flags.js';
import { resolveConfigPath } from './kv.js';

export function queryStatus(host: string, port: number, timeoutMs: number): Promise<ReplicaStatus | { error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const reader = new FrameReader();
    const done = (v: ReplicaStatus | { error: string }): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done({ error: `no answer in ${timeoutMs} ms` }), timeoutMs);
    socket.on('error', (e: NodeJS.ErrnoException) => done({ error: e.code ?? e.message }));
    socket.on('connect', () => {
      socket.write(encodeRequest({ requestId: 1, op: OP_STATUS, payload: new Uint8Array(0), maxLagDecrees: null, timeoutMs: null }));
    });
    socket.on('data', (chunk: Buffer) => {
      const bad = reader.push(chunk, (body) => {
        const r = decodeResponse(body);
        if (r?.status === 'result') done(JSON.parse(new TextDecoder().decode(r.result)) as ReplicaStatus);
        else done({ error: r?.status === 'error' ? `${r.code}: ${r.message}` : 'unexpected answer' });
      });
      if (bad !== null) done({ error: bad });
    });
  });
}

export async function statusCommand(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, { config: 'string', json: 'boolean', 'timeout-ms': 'number' });
  const config = loadClusterConfig(resolveConfigPath(f.config));
  const timeoutMs = f['timeout-ms'] ?? 2000;
  const answers = await Promise.all(config.replicas.map((r) => queryStatus(r.client.host, r.client.port, timeoutMs)));
  const rows = config.replicas.map((r, i) => {
    const a = answers[i]!;
    if ('error' in a) return { id: r.id, client: formatAddress(r.client), up: false, error: a.error };
    return {
      id: r.id, client: formatAddress(r.client), up: true, role: a.role, primary: a.primary, ballot: a.ballot,
      incarnation: a.incarnation, committed: a.decrees.committed, executed: a.decrees.executed,
      checkpoint: a.decrees.checkpoint, durableSeq: a.log.durableSeq, fsyncs: a.log.fsyncs,
      fsyncP99Ms: a.log.fsyncP99Ms, logReadsServed: a.log.readsServed, elections: a.elections,
    };
  });
  const primary = rows.find((r) => r.up && 'role' in r && r.role === 'primary')?.id ?? null;
  if (f.json) {
    console.log(JSON.stringify({ config: config.path, primary, replicas: rows }));
  } else {
    console.log(`cluster ${config.clusterId} (${config.path}): primary ${primary ?? 'unknown'}`);
    for (const r of rows) {
      console.log(r.up && 'role' in r
        ? `  replica ${r.id}  ${r.role.padEnd(9)}  committed ${r.committed}  executed ${r.executed}  checkpoint ${r.checkpoint}  fsync p99 ${r.fsyncP99Ms} ms  clients ${r.client}`
        : `  replica ${r.id}  down (${'error' in r ? r.error : ''})  clients ${r.client}`);
    }
  }
  return rows.some((r) => r.up) ? 0 : 1;
}
