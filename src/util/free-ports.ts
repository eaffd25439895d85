/**
 * Free TCP ports on a local interface: bind port 0 n times at once, note the ports, close.
 * (Another process may take a port between this and its use: callers on a shared machine retry
 * or accept that rare failure — tests, `paxline local` and the benchmarks use it.)
 */
import { createServer, type AddressInfo, type Server } from 'node:net';

export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
