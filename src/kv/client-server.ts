/**
 * The replica's client endpoint: a TCP server speaking client-protocol.ts in front of a
 * replica's `replicate` / `fastRead`. Requests on one connection run concurrently (pipelining);
 * each is answered once, by request id, with the result, a redirect to the primary
 * (PAXLINE_NOT_PRIMARY, with the primary's client address when known) or a coded error.
 *
 * Bounds and backpressure:
 *  - at most `connectionsMax` connections (more are closed on accept);
 *  - a connection stops reading while it has `inFlightPerConnectionMax` requests unanswered or
 *    its socket's write buffer needs draining, and resumes when both clear. Frames already
 *    received in the chunk being parsed are still dispatched, so the overshoot is at most one
 *    chunk's worth of requests;
 *  - frames are at most CLIENT_FRAME_BYTES_MAX bytes; an unreadable stream closes the connection.
 * A request's answer arriving after its connection closed is dropped (the client retries).
 */
import * as net from 'node:net';
import {
  FrameReader,
  OP_REPLICATE,
  OP_STATUS,
  decodeRequest,
  encodeResponse,
  type ClientRequest,
  type ClientResponse,
} from './client-protocol.js';
import { writeCoalesced } from './corked-write.js';
import { KvError, errorCode } from './kv-error.js';

/** What the client endpoint needs from a replica (the runtime's façade provides it). */
export interface ReplicaForClients {
  replicate(cmd: Uint8Array): Promise<Uint8Array>;
  /** The replica's status (structured data), for `paxline status`; optional. */
  status?(): Promise<unknown>;
  fastRead(
    query: Uint8Array,
    o?: { maxLagDecrees?: number; timeoutMs?: number },
  ): Promise<Uint8Array>;
}

export interface ClientServerOptions {
  /** Interface to bind, e.g. '127.0.0.1'. */
  readonly host: string;
  /** TCP port; 0 picks a free one (see `ClientServer.port`). */
  readonly port: number;
  readonly replica: ReplicaForClients;
  /** 'host:port' of a replica's client endpoint, for redirects; undefined when unknown. */
  readonly clientAddressOf: (replicaId: number) => string | undefined;
  /** Unanswered requests per connection before it stops reading (default 1024). */
  readonly inFlightPerConnectionMax?: number;
  /** Open connections at most (default 4096). */
  readonly connectionsMax?: number;
}

export interface ClientServerStats {
  readonly connections: number;
  readonly connectionsTotal: number;
  readonly requestsTotal: number;
  readonly inFlight: number;
  readonly redirectsTotal: number;
  readonly errorsTotal: number;
  readonly protocolErrorsTotal: number;
}

export interface ClientServer {
  /** The bound port. */
  readonly port: number;
  /** Stops accepting, closes every connection, resolves once the listener is closed. */
  close(): Promise<void>;
  stats(): ClientServerStats;
}

/** Error messages relayed to clients are cut to this many characters. */
const MESSAGE_CHARS_MAX = 200;

function badOption(field: string, message: string): KvError {
  return new KvError('PAXLINE_BAD_OPTION', `${field} ${message}`, field);
}

function resolveOptions(o: ClientServerOptions): Required<ClientServerOptions> {
  if (typeof o !== 'object' || o === null) throw badOption('options', 'must be an object');
  if (typeof o.host !== 'string' || o.host.length === 0) {
    throw badOption('host', 'must be a non-empty string');
  }
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw badOption('port', 'must be an integer in [0, 65535]');
  }
  const r = o.replica as Partial<ReplicaForClients> | undefined;
  if (typeof r?.replicate !== 'function' || typeof r.fastRead !== 'function') {
    throw badOption('replica', 'must have replicate() and fastRead()');
  }
  if (typeof o.clientAddressOf !== 'function') {
    throw badOption('clientAddressOf', 'must be a function');
  }
  const count = (name: 'inFlightPerConnectionMax' | 'connectionsMax', dflt: number): number => {
    const v = o[name] ?? dflt;
    if (!Number.isSafeInteger(v) || v < 1) throw badOption(name, 'must be an integer >= 1');
    return v;
  };
  return Object.freeze({
    ...o,
    inFlightPerConnectionMax: count('inFlightPerConnectionMax', 1024),
    connectionsMax: count('connectionsMax', 4096),
  });
}

export async function startClientServer(options: ClientServerOptions): Promise<ClientServer> {
  const server = new ClientServerImpl(resolveOptions(options));
  await server.listen();
  return server;
}

interface Connection {
  readonly socket: net.Socket;
  readonly reader: FrameReader;
  inFlight: number;
  closed: boolean;
}

class ClientServerImpl implements ClientServer {
  port = 0;
  private readonly server: net.Server;
  private readonly connections = new Set<Connection>();
  private connectionsTotal = 0;
  private requestsTotal = 0;
  private inFlight = 0;
  private redirectsTotal = 0;
  private errorsTotal = 0;
  private protocolErrorsTotal = 0;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: Required<ClientServerOptions>) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        this.port = typeof addr === 'object' && addr !== null ? addr.port : this.o.port;
        resolve();
      });
    });
  }

  close(): Promise<void> {
    if (this.closing === null) {
      this.closing = new Promise((resolve) => this.server.close(() => resolve()));
      for (const c of this.connections) c.socket.destroy();
    }
    return this.closing;
  }

  stats(): ClientServerStats {
    return {
      connections: this.connections.size,
      connectionsTotal: this.connectionsTotal,
      requestsTotal: this.requestsTotal,
      inFlight: this.inFlight,
      redirectsTotal: this.redirectsTotal,
      errorsTotal: this.errorsTotal,
      protocolErrorsTotal: this.protocolErrorsTotal,
    };
  }

  private accept(socket: net.Socket): void {
    if (this.closing !== null || this.connections.size >= this.o.connectionsMax) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: Connection = { socket, reader: new FrameReader(), inFlight: 0, closed: false };
    this.connections.add(conn);
    this.connectionsTotal++;
    socket.on('data', (chunk: Buffer) => {
      const bad = conn.reader.push(chunk, (body) => this.onFrame(conn, body));
      if (bad !== null) {
        this.protocolErrorsTotal++;
        socket.destroy();
      }
    });
    socket.on('drain', () => this.updateFlow(conn));
    socket.on('error', () => { /* 'close' follows */ });
    socket.on('close', () => {
      conn.closed = true;
      this.connections.delete(conn);
    });
  }

  private onFrame(conn: Connection, body: Buffer): void {
    if (conn.closed) return;
    const req = decodeRequest(body);
    if ('reason' in req) {
      this.protocolErrorsTotal++;
      if (req.requestId < 0) conn.socket.destroy();
      else this.send(conn, { requestId: req.requestId, status: 'error', code: 'PAXLINE_PROTOCOL',
        message: req.reason });
      return;
    }
    this.requestsTotal++;
    this.inFlight++;
    conn.inFlight++;
    this.updateFlow(conn);
    let pending: Promise<ClientResponse>;
    try {
      pending = this.run(req);
    } catch (err) {
      pending = Promise.reject(err); // a replica method that threw instead of rejecting
    }
    pending.then(
      (response) => this.finish(conn, response),
      (err: unknown) => this.finish(conn, this.errorResponse(req.requestId, err)),
    );
  }

  private run(req: ClientRequest): Promise<ClientResponse> {
    const r = this.o.replica;
    let pending: Promise<Uint8Array>;
    if (req.op === OP_REPLICATE) {
      pending = r.replicate(req.payload);
    } else if (req.op === OP_STATUS) {
      pending = r.status
        ? r.status().then((s) => new TextEncoder().encode(JSON.stringify(s)))
        : Promise.reject(new KvError('PAXLINE_PROTOCOL', 'this endpoint serves no status'));
    } else {
      const o: { maxLagDecrees?: number; timeoutMs?: number } = {};
      if (req.maxLagDecrees !== null) o.maxLagDecrees = req.maxLagDecrees;
      if (req.timeoutMs !== null) o.timeoutMs = req.timeoutMs;
      pending = r.fastRead(req.payload, o);
    }
    return pending.then((result): ClientResponse => {
      if (!(result instanceof Uint8Array)) {
        throw new KvError('PAXLINE_INTERNAL', 'the replica answered with something not bytes');
      }
      return { requestId: req.requestId, status: 'result', result };
    });
  }

  private errorResponse(requestId: number, err: unknown): ClientResponse {
    const code = errorCode(err);
    if (code === 'PAXLINE_NOT_PRIMARY') {
      this.redirectsTotal++;
      const primary = (err as { primary?: unknown }).primary;
      const primaryId = Number.isSafeInteger(primary) && (primary as number) >= 0
        ? primary as number : null;
      let primaryAddress: string | null = null;
      if (primaryId !== null) {
        try {
          primaryAddress = this.o.clientAddressOf(primaryId) ?? null;
        } catch {
          primaryAddress = null;
        }
      }
      return { requestId, status: 'redirect', primaryAddress, primaryId };
    }
    this.errorsTotal++;
    const message = err instanceof Error ? err.message : String(err);
    return {
      requestId,
      status: 'error',
      code: code !== null && code.startsWith('PAXLINE_') ? code : 'PAXLINE_INTERNAL',
      message: message.slice(0, MESSAGE_CHARS_MAX),
    };
  }

  private finish(conn: Connection, response: ClientResponse): void {
    this.inFlight--;
    conn.inFlight--;
    if (conn.closed || conn.socket.destroyed) return;
    this.send(conn, response);
    this.updateFlow(conn);
  }

  private send(conn: Connection, response: ClientResponse): void {
    let frame: Buffer;
    try {
      frame = encodeResponse(response);
    } catch (err) {
      // Only a result too large for a frame gets here; answer with the error instead.
      frame = encodeResponse(this.errorResponse(response.requestId, err));
    }
    writeCoalesced(conn.socket, frame);
  }

  /** Reads only while the connection has room for requests and its writes are flowing. */
  private updateFlow(conn: Connection): void {
    if (conn.closed) return;
    const full = conn.inFlight >= this.o.inFlightPerConnectionMax || conn.socket.writableNeedDrain;
    if (full && !conn.socket.isPaused()) conn.socket.pause();
    else if (!full && conn.socket.isPaused()) conn.socket.resume();
  }
}
