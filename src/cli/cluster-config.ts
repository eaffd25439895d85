/**
 * The cluster configuration file of `paxline start` / `status` / `kv`:
 *
 *   {
 *     "clusterId": "demo",
 *     "replicas": [
 *       { "id": 1, "peer": "127.0.0.1:7001", "client": "127.0.0.1:7101", "dataDir": "r1" },
 *       ...
 *     ],
 *     "options": { "electionTimeoutMsMin": 300, ... }      // optional ReplicaOptions tuning
 *   }
 *
 * `peer` is where replicas reach each other (the replica protocol — unauthenticated: bind it to a
 * private network), `client` where clients reach the key-value service. A relative dataDir is
 * relative to the file. Every error names the file and the field (code PAXLINE_BAD_CONFIG).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface ReplicaEntry {
  readonly id: number;
  readonly peer: { readonly host: string; readonly port: number };
  readonly client: { readonly host: string; readonly port: number };
  readonly dataDir: string;
}

export interface ClusterConfig {
  readonly path: string;
  readonly clusterId: string;
  readonly replicas: readonly ReplicaEntry[];
  readonly options: Readonly<Record<string, number | boolean | string>>;
}

/** ReplicaOptions a config file may tune (numbers and booleans; secondaryApplyNice may be 'auto'). */
const TUNABLE = new Set([
  'tickMs', 'electionTimeoutMsMin', 'electionTimeoutMsMax', 'heartbeatMs', 'pipelineDepth', 'batchCountMax',
  'batchBytesMax', 'batchDelayMs', 'inflightMax', 'stallThresholdMs', 'retainDecrees', 'checkpointEveryBytes', 'checkpointEveryDecrees', 'checkpointsKept', 'ringBytes', 'segmentBytes',
  'secondaryApplyNice',
]);

export class ConfigError extends Error {
  readonly code = 'PAXLINE_BAD_CONFIG';
  constructor(readonly file: string, readonly field: string, message: string) {
    super(`${file}: ${field}: ${message}`);
    this.name = 'ConfigError';
  }
}

export function parseAddress(s: unknown): { host: string; port: number } | null {
  if (typeof s !== 'string') return null;
  const m = /^(.+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

export function formatAddress(a: { host: string; port: number }): string {
  return `${a.host}:${a.port}`;
}

export function parseClusterConfig(path: string, text: string): ClusterConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, '(file)', `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(path, '(file)', 'must be a JSON object');
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!['clusterId', 'replicas', 'options'].includes(k)) throw new ConfigError(path, k, 'unknown field');
  }
  if (typeof o.clusterId !== 'string' || o.clusterId.length === 0) throw new ConfigError(path, 'clusterId', 'must be a non-empty string');
  if (!Array.isArray(o.replicas) || o.replicas.length === 0) throw new ConfigError(path, 'replicas', 'must be a non-empty array');
  const base = dirname(resolve(path));
  const ids = new Set<number>();
  const replicas = o.replicas.map((r: unknown, i): ReplicaEntry => {
    const f = `replicas[${i}]`;
    if (typeof r !== 'object' || r === null) throw new ConfigError(path, f, 'must be an object { id, peer, client, dataDir }');
    const e = r as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!['id', 'peer', 'client', 'dataDir'].includes(k)) throw new ConfigError(path, `${f}.${k}`, 'unknown field');
    if (typeof e.id !== 'number' || !Number.isInteger(e.id) || e.id < 0 || e.id > 1023) throw new ConfigError(path, `${f}.id`, 'must be an integer in [0, 1023]');
    if (ids.has(e.id)) throw new ConfigError(path, `${f}.id`, `duplicate id ${e.id}`);
    ids.add(e.id);
    const peer = parseAddress(e.peer);
    if (!peer) throw new ConfigError(path, `${f}.peer`, `must be "host:port" with a port in 1..65535, got ${JSON.stringify(e.peer)}`);
    const client = parseAddress(e.client);
    if (!client) throw new ConfigError(path, `${f}.client`, `must be "host:port" with a port in 1..65535, got ${JSON.stringify(e.client)}`);
    if (typeof e.dataDir !== 'string' || e.dataDir.length === 0) throw new ConfigError(path, `${f}.dataDir`, 'must be a non-empty path');
    return { id: e.id, peer, client, dataDir: resolve(base, e.dataDir) };
  });
  const options: Record<string, number | boolean | string> = {};
  if (o.options !== undefined) {
    if (typeof o.options !== 'object' || o.options === null) throw new ConfigError(path, 'options', 'must be an object');
    for (const [k, v] of Object.entries(o.options)) {
      if (!TUNABLE.has(k)) throw new ConfigError(path, `options.${k}`, `unknown option (known: ${[...TUNABLE].join(', ')})`);
      const auto = k === 'secondaryApplyNice' && v === 'auto';
      if (typeof v !== 'number' && typeof v !== 'boolean' && !auto) {
        throw new ConfigError(path, `options.${k}`, k === 'secondaryApplyNice' ? "must be a number or 'auto'" : 'must be a number or boolean');
      }
      options[k] = v;
    }
  }
  return { path: resolve(path), clusterId: o.clusterId, replicas, options };
}

export function loadClusterConfig(path: string): ClusterConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, '(file)', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseClusterConfig(path, text);
}
