/**
 * A load-generator process of the cluster benchmark's client load (forked by cluster-bench.ts,
 * controlled over IPC): `clients` network KV clients (connectClient, the client protocol over
 * loopback TCP), sharing `inflight` outstanding puts between them (slot i uses client
 * i mod clients). Keys are 16 bytes (distinct per generator through `keyPrefix`), values
 * `commandBytes` bytes. A put counts when client.put() resolves (the replica answered with the KV
 * machine's result, after its own execution). Retries inside the client (redirects, BUSY) are part
 * of a put's latency; the client's retry count is reported.
 *
 * IPC ops: loadStart, loadMarkStart, loadMarkEnd, loadDrain, cpu, close.
 */
import { connectClient, type KvClient } from '../../src/kv/client.js';
import { serveIpc } from './ipc.js';
import { LoadDriver, loadHandlers } from './load-driver.js';
import { KEY_COUNT, makeKeys, makeValue } from './workload.js';

export interface ClientLoadArg {
  readonly replicas: readonly string[];
  readonly clients: number;
  readonly inflight: number;
  readonly rateOpsPerSec: number | null;
  readonly commandBytes: number;
  readonly keyPrefix: string;
}

/** The client's window (windowMax) must cover each client's share of the outstanding puts. */
const CLIENT_WINDOW_MAX = 2048;

let driver: LoadDriver<void> | null = null;
let kvClients: KvClient[] = [];

function startClientLoad(a: ClientLoadArg): unknown {
  if (driver !== null) throw new Error('load already started');
  const perClient = Math.ceil(a.inflight / a.clients);
  if (perClient >= CLIENT_WINDOW_MAX) throw new Error(`${perClient} puts per client exceed the client window ${CLIENT_WINDOW_MAX}: use more clients`);
  kvClients = Array.from({ length: a.clients }, () => connectClient({ replicas: a.replicas, windowMax: CLIENT_WINDOW_MAX, timeoutMs: 30_000 }));
  const keys = makeKeys(a.keyPrefix);
  const value = makeValue(a.commandBytes);
  let next = 0;
  const key = (): string => keys[next++ % KEY_COUNT]!;
  driver = new LoadDriver({ inflight: a.inflight, rateOpsPerSec: a.rateOpsPerSec }, {
    issue: (slot) => kvClients[slot % kvClients.length]!.put(key(), value),
    isExpected: () => true, // a put that resolves succeeded (failures reject)
  });
  driver.start();
  return { pid: process.pid };
}

const handlers = loadHandlers(() => {
  if (driver === null) throw new Error('load not started');
  return driver;
});

serveIpc({
  loadStart: (a) => startClientLoad(a as ClientLoadArg),
  ...handlers,
  loadMarkEnd: () => ({
    ...(handlers.loadMarkEnd!(null) as object),
    clientRetries: kvClients.reduce((s, c) => s + c.stats().retries, 0),
    clientRedirects: kvClients.reduce((s, c) => s + c.stats().redirects, 0),
  }),
  close: async () => {
    await Promise.all(kvClients.map((c) => c.close()));
    setImmediate(() => process.exit(0));
    return null;
  },
});
