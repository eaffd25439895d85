/**
 * `paxline kv [--config FILE] [--json] [--stale] [--timeout-ms N] get KEY | put KEY VALUE |
 * cas KEY EXPECTED VALUE` — one call against the replica set's key-value service. Without
 * --config it uses $PAXLINE_CONFIG, else the cluster `paxline local` started last. For cas,
 * `--absent` means "expect the key to be absent" (EXPECTED is then omitted).
 */
import { existsSync, readFileSync } from 'node:fs';
import { connectClient } from '../kv/client.js';
import { formatAddress, loadClusterConfig, type ClusterConfig } from './cluster-config.js';
import { UsageError, parseFlagsAndArgs } from './flags.js';
import { currentClusterFile } from './local.js';

export function resolveConfigPath(flag: string | undefined): string {
  if (flag !== undefined) return flag;
  if (process.env.PAXLINE_CONFIG) return process.env.PAXLINE_CONFIG;
  const current = currentClusterFile();
  if (existsSync(current)) return readFileSync(current, 'utf8').trim();
  throw new UsageError('no cluster: pass --config FILE (or set PAXLINE_CONFIG, or run `paxline local` first)');
}

export function clientAddresses(config: ClusterConfig): string[] {
  return config.replicas.map((r) => formatAddress(r.client));
}

export async function kvCommand(argv: readonly string[]): Promise<number> {
  const { flags: f, args } = parseFlagsAndArgs(argv, {
    config: 'string', json: 'boolean', stale: 'boolean', 'timeout-ms': 'number', absent: 'boolean',
  });
  const [op, ...rest] = args;
  const want = op === 'get' ? 1 : op === 'put' ? 2 : op === 'cas' ? (f.absent ? 2 : 3) : -1;
  if (want < 0) throw new UsageError('kv needs get KEY | put KEY VALUE | cas KEY EXPECTED VALUE (or cas --absent KEY VALUE)');
  if (rest.length !== want) throw new UsageError(`kv ${op}: expected ${want} argument(s), got ${rest.length}`);
  const config = loadClusterConfig(resolveConfigPath(f.config));
  const client = connectClient({ replicas: clientAddresses(config), timeoutMs: f['timeout-ms'] ?? 5000 });
  try {
    let out: unknown;
    if (op === 'get') out = await client.get(rest[0]!, { stale: f.stale === true });
    else if (op === 'put') out = (await client.put(rest[0]!, rest[1]!), 'ok');
    else out = await client.cas(rest[0]!, f.absent ? null : rest[1]!, rest[f.absent ? 1 : 2]!);
    if (f.json) console.log(JSON.stringify({ ok: true, op, key: rest[0], result: out ?? null }));
    else console.log(out === null ? '(nil)' : String(out));
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (f.json) console.log(JSON.stringify({ ok: false, op, key: rest[0], code: err.code ?? 'PAXLINE_ERROR', message: err.message }));
    else process.stderr.write(`paxline kv: ${err.code ?? 'error'}: ${err.message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
