/**
 * PeerTransport: the replica-to-replica TCP transport of the network stage. It moves the core's
 * messages; it never interprets them beyond the frame checks below, and drives no timers of the
 * protocol (the runtime ticks the core; heartbeats are ordinary messages here).
 *
 * Connection model (one direction per connection, so there is never a dial race to resolve):
 *
 *      replica A                                    replica B
 *   ┌───────────────┐  A's dialed connection    ┌───────────────┐
 *   │ outbound[B] ──┼──── hello, A→B messages ──►│ inbound (A)   │
 *   │ inbound (B) ◄─┼──── hello, B→A messages ───┼── outbound[A] │
 *   └───────────────┘  B's dialed connection    └───────────────┘
 *
 *  - Each replica dials every peer and sends only on its own dialed connection; it receives only
 *    on connections peers dialed to it. Bytes arriving on a dialed connection are ignored.
 *  - A dialed connection opens with a hello frame (frame.ts: version, cluster tag and config in the
 *    frame header; replica id, incarnation and full cluster id in the payload). The acceptor
 *    closes, and counts, a connection whose hello has another version (wrongVersion) or cluster
 *    id (wrongCluster), names a replica that is not a configured peer (unknownPeer), or comes
 *    from an older incarnation than the connection it already holds for that peer
 *    (staleIncarnation). A hello of the same or a newer incarnation replaces the held connection
 *    (the dialer keeps one connection per peer, so its new one supersedes the old).
 *  - Per frame after the hello: another version or cluster tag → dropped and counted; another
 *    configuration number → dropped and counted (wrongConfig) unless the message type is in
 *    CROSS_CONFIG_TYPES; a message whose from/config disagree with the hello/frame or whose `to`
 *    is not this replica → dropped (misaddressed). A bad checksum, length or encoding → counted
 *    (badFrame) and the connection closed: its frame boundaries can no longer be trusted.
 *
 * Sending: `send` encodes the message straight into a frame buffer and queues it on the peer.
 * Once per event-loop turn (setImmediate, after the turn's I/O callbacks) every peer with queued
 * frames is flushed: runs of small frames are concatenated into one Buffer (up to
 * COALESCE_BYTES_MAX) and written under cork/uncork. Flushing stops while socket.write() returns
 * false and resumes on 'drain', so the kernel and Node buffers never hold more than one flush.
 *
 * Loss policy (the protocol tolerates loss, duplication and reordering; the core retransmits):
 *  - A peer's queue holds at most sendQueueBytesMax bytes; a frame that would exceed it is
 *    dropped (queueFull). A frame larger than frameBytesMax is dropped (oversize): the receiver
 *    would reject it and close the connection.
 *  - Frames queue while a connection attempt is in progress. When a connection fails or closes,
 *    its queue is discarded, and until the next attempt (after a backoff) sends are dropped
 *    (peerDown): stale messages are not hoarded for a peer that is down.
 *
 * Reconnect: exponential backoff from reconnectMinMs doubling to reconnectMaxMs, each delay
 * jittered uniformly into [delay/2, delay]. The backoff resets only after a connection stayed up
 * for reconnectMaxMs, so an acceptor that keeps rejecting our hello is retried at the slow rate.
 * A connection attempt that has not completed in connectTimeoutMs is abandoned.
 *
 * Errors: every socket and the server get an 'error' listener; ECONNREFUSED, ECONNRESET, EPIPE,
 * timeouts and the rest end in 'close', which schedules the reconnect. Nothing throws into the
 * event loop except the caller's own onMessage / onPeerState.
 *
 * close(): stops the server, destroys every socket (queued frames are dropped), clears every
 * timer and immediate, and resolves once the server and all sockets have emitted 'close', so no
 * handle of this transport keeps the process alive afterwards.
 */
import * as net from 'node:net';
import { BALLOT_ID_SPAN } from '../core/ballot.js';
import { CROSS_CONFIG_TYPES, type Message } from '../core/types.js';
import {
  CLUSTER_ID_BYTES_MAX,
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_BYTES_MAX_LIMIT,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  HELLO_FRAME_BYTES_MAX,
  PROTOCOL_VERSION,
  clusterTag,
  decodeHello,
  encodeFrame,
  encodeHello,
  sealFrame,
  type Frame,
  type Hello,
} from './frame.js';
import {
  decodeMessage,
  encodedMessageBytes,
  peekMessageType,
  writeMessage,
} from './message-codec.js';
import { NetError, badArgument, badOption } from './net-error.js';

export interface PeerAddress {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

export interface PeerTransportOptions {
  /** This replica's id, in [0, BALLOT_ID_SPAN). */
  readonly self: number;
  /** The cluster id; frames and hellos of another cluster are dropped. At most 1 KiB of UTF-8. */
  readonly clusterId: string;
  /** This replica's configuration number (u32, ≥ 1); see setConfigNumber. */
  readonly configNumber: number;
  /** This process's incarnation (safe integer ≥ 0); a restarted replica must use a larger one. */
  readonly incarnation: number;
  /** Address to listen on; port 0 picks a free port (read it from `port`). Binds only `host`. */
  readonly listen: { readonly host: string; readonly port: number };
  /** Every other member (self excluded), distinct ids. */
  readonly peers: readonly PeerAddress[];
  /** First reconnect delay, ms. Default 20. */
  readonly reconnectMinMs?: number;
  /** Largest reconnect delay, ms (≥ reconnectMinMs). Default 1000. */
  readonly reconnectMaxMs?: number;
  /** Time a connection attempt may take before it is abandoned, ms. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Per peer; frames past it are dropped and counted. Default 64 MiB. */
  readonly sendQueueBytesMax?: number;
  /** Largest frame sent or accepted, bytes, length field included. Default 64 MiB. */
  readonly frameBytesMax?: number;
  /** Every message that passed the frame checks, in arrival order per connection. */
  readonly onMessage: (m: Message) => void;
  /** Called when this replica's dialed connection to `peer` comes up or goes down. */
  readonly onPeerState?: (peer: number, up: boolean) => void;
}

export interface PeerStats {
  readonly id: number;
  /** Our dialed connection is established (we can send). */
  readonly connected: boolean;
  /** The peer's dialed connection to us has passed its hello (we can receive). */
  readonly inboundConnected: boolean;
  /** Bytes queued in the transport, not yet handed to the socket. */
  readonly queuedBytes: number;
  /** Bytes handed to the socket and not yet written to the kernel. */
  readonly socketBufferedBytes: number;
}

export interface PeerTransportStats {
  readonly framesSent: number;
  readonly bytesSent: number;
  /** Frames that passed the checksum, hellos and dropped ones included. */
  readonly framesReceived: number;
  readonly bytesReceived: number;
  readonly dropped: {
    readonly wrongCluster: number;
    readonly wrongConfig: number;
    readonly wrongVersion: number;
    readonly badFrame: number;
    readonly queueFull: number;
    readonly peerDown: number;
    readonly oversize: number;
    readonly unknownPeer: number;
    readonly staleIncarnation: number;
    readonly misaddressed: number;
  };
  /** Connection attempts after the first, per peer, summed. */
  readonly reconnects: number;
  readonly peers: readonly PeerStats[];
}

/** Runs of frames up to this size are concatenated into one write. */
const COALESCE_BYTES_MAX = 256 * 1024;
/** An accepted connection must complete its hello within this time. */
const HELLO_TIMEOUT_MS = 10_000;
const TCP_KEEPALIVE_DELAY_MS = 1000;
/** Upper bound of every duration option (an hour). */
const MS_MAX = 3_600_000;
const DEFAULTS = {
  reconnectMinMs: 20,
  reconnectMaxMs: 1000,
  connectTimeoutMs: 5000,
  sendQueueBytesMax: 64 * 1024 * 1024,
  frameBytesMax: FRAME_BYTES_MAX_DEFAULT,
} as const;

type Resolved = Required<Omit<PeerTransportOptions, 'onPeerState'>> &
  Pick<PeerTransportOptions, 'onPeerState'>;

// ---------------------------------------------------------------------------------------------
// Options

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

function checkHost(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0) badOption(field, 'must be a non-empty host string');
  return v;
}

function resolveOptions(o: PeerTransportOptions): Readonly<Resolved> {
  if (typeof o !== 'object' || o === null) badOption('options', 'must be an object');
  const idRange = `must be an integer in [0, ${BALLOT_ID_SPAN})`;
  if (!isInt(o.self, 0, BALLOT_ID_SPAN - 1)) badOption('self', idRange);
  if (typeof o.clusterId !== 'string' || o.clusterId.length === 0) {
    badOption('clusterId', 'must be a non-empty string');
  }
  if (new TextEncoder().encode(o.clusterId).length > CLUSTER_ID_BYTES_MAX) {
    badOption('clusterId', `must be at most ${CLUSTER_ID_BYTES_MAX} bytes of UTF-8`);
  }
  if (!isInt(o.configNumber, 1, 0xffffffff)) {
    badOption('configNumber', 'must be an integer in [1, 2^32)');
  }
  if (!isInt(o.incarnation, 0, Number.MAX_SAFE_INTEGER)) {
    badOption('incarnation', 'must be a safe integer ≥ 0');
  }
  if (typeof o.listen !== 'object' || o.listen === null) {
    badOption('listen', 'must be { host, port }');
  }
  checkHost(o.listen.host, 'listen.host');
  if (!isInt(o.listen.port, 0, 65535)) badOption('listen.port', 'must be an integer in [0, 65535]');
  if (!Array.isArray(o.peers)) badOption('peers', 'must be an array');
  const ids = new Set<number>();
  o.peers.forEach((p: PeerAddress, i: number) => {
    if (typeof p !== 'object' || p === null) badOption(`peers[${i}]`, 'must be { id, host, port }');
    if (!isInt(p.id, 0, BALLOT_ID_SPAN - 1)) badOption(`peers[${i}].id`, idRange);
    if (p.id === o.self) badOption(`peers[${i}].id`, 'must not be self');
    if (ids.has(p.id)) badOption(`peers[${i}].id`, `duplicates peer ${p.id}`);
    ids.add(p.id);
    checkHost(p.host, `peers[${i}].host`);
    if (!isInt(p.port, 1, 65535)) badOption(`peers[${i}].port`, 'must be an integer in [1, 65535]');
  });
  const r = { ...DEFAULTS, ...definedOnly(o) } as Resolved;
  if (!isInt(r.reconnectMinMs, 1, MS_MAX)) {
    badOption('reconnectMinMs', `must be an integer in [1, ${MS_MAX}]`);
  }
  if (!isInt(r.reconnectMaxMs, r.reconnectMinMs, MS_MAX)) {
    badOption('reconnectMaxMs', `must be an integer in [reconnectMinMs, ${MS_MAX}]`);
  }
  if (!isInt(r.connectTimeoutMs, 1, MS_MAX)) {
    badOption('connectTimeoutMs', `must be an integer in [1, ${MS_MAX}]`);
  }
  if (!isInt(r.frameBytesMax, HELLO_FRAME_BYTES_MAX, FRAME_BYTES_MAX_LIMIT)) {
    const range = `[${HELLO_FRAME_BYTES_MAX}, ${FRAME_BYTES_MAX_LIMIT}]`;
    badOption('frameBytesMax', `must be an integer in ${range}`);
  }
  if (!isInt(r.sendQueueBytesMax, 1, Number.MAX_SAFE_INTEGER)) {
    badOption('sendQueueBytesMax', 'must be a positive integer');
  }
  if (typeof r.onMessage !== 'function') badOption('onMessage', 'must be a function');
  if (r.onPeerState !== undefined && typeof r.onPeerState !== 'function') {
    badOption('onPeerState', 'must be a function');
  }
  return Object.freeze(r);
}

/** Drops keys whose value is undefined, so defaults apply under exactOptionalPropertyTypes. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------------
// Per-connection state

type OutboundState = 'connecting' | 'connected' | 'backoff' | 'closed';

/** Our dialed connection to one peer, and the frames queued for it. */
class Outbound {
  state: OutboundState = 'connecting';
  socket: net.Socket | null = null;
  queue: Buffer[] = [];
  queuedBytes = 0;
  /** socket.write() returned false; wait for 'drain'. */
  blocked = false;
  /** Consecutive attempts that did not stay up; drives the backoff. */
  failures = 0;
  connectedAtMs = 0;
  timer: NodeJS.Timeout | null = null;
  attempts = 0;

  constructor(readonly address: PeerAddress) {}
}

/** A connection a peer (or a stranger) dialed to us. */
class Inbound {
  /** Peer id once the hello is accepted, else -1. */
  peer = -1;
  incarnation = -1;
  dead = false;
  helloTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: net.Socket,
    readonly decoder: FrameDecoder,
  ) {}
}

interface Counters {
  framesSent: number;
  bytesSent: number;
  framesReceived: number;
  bytesReceived: number;
  reconnects: number;
  wrongCluster: number;
  wrongConfig: number;
  wrongVersion: number;
  badFrame: number;
  queueFull: number;
  peerDown: number;
  oversize: number;
  unknownPeer: number;
  staleIncarnation: number;
  misaddressed: number;
}

// ---------------------------------------------------------------------------------------------

export class PeerTransport {
  /** The port the server listens on (the chosen one when listen.port was 0). */
  readonly port: number;
  private readonly o: Readonly<Resolved>;
  private readonly server: net.Server;
  private readonly clusterTag: number;
  private configNumber: number;
  private readonly outbound = new Map<number, Outbound>();
  private readonly inbound = new Set<Inbound>();
  /** The accepted (post-hello) inbound connection per peer. */
  private readonly inboundByPeer = new Map<number, Inbound>();
  private readonly dirty = new Set<Outbound>();
  private flushImmediate: NodeJS.Immediate | null = null;
  /** Resolves when the socket emits 'close'; close() awaits them all. */
  private readonly socketClosed = new Set<Promise<void>>();
  private closing = false;
  private closedPromise: Promise<void> | null = null;
  private readonly c: Counters = {
    framesSent: 0,
    bytesSent: 0,
    framesReceived: 0,
    bytesReceived: 0,
    reconnects: 0,
    wrongCluster: 0,
    wrongConfig: 0,
    wrongVersion: 0,
    badFrame: 0,
    queueFull: 0,
    peerDown: 0,
    oversize: 0,
    unknownPeer: 0,
    staleIncarnation: 0,
    misaddressed: 0,
  };

  private constructor(o: Readonly<Resolved>, server: net.Server, port: number) {
    this.o = o;
    this.server = server;
    this.port = port;
    this.clusterTag = clusterTag(o.clusterId);
    this.configNumber = o.configNumber;
    for (const p of o.peers) this.outbound.set(p.id, new Outbound(p));
  }

  /** Validates options (PAXLINE_BAD_OPTION), listens, starts dialing; resolves once listening. */
  static async start(options: PeerTransportOptions): Promise<PeerTransport> {
    const o = resolveOptions(options);
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: o.listen.host, port: o.listen.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') {
      throw new Error('assertion failed: a TCP server has an address object');
    }
    const t = new PeerTransport(o, server, address.port);
    server.on('connection', (socket) => t.accept(socket));
    // Accept errors (EMFILE, ...) must not crash the stage; the listener stays open.
    server.on('error', () => {});
    for (const peer of t.outbound.values()) t.dial(peer);
    return t;
  }

  /**
   * Changes the configuration number stamped on the hello of future connections and checked on
   * incoming frames (messages carry their own, which goes in their frame header).
   */
  setConfigNumber(configNumber: number): void {
    if (!isInt(configNumber, 1, 0xffffffff)) {
      badArgument('configNumber', 'must be an integer in [1, 2^32)');
    }
    this.configNumber = configNumber;
  }

  /**
   * Queues `m` for m.to; it goes out with this turn's flush. Never throws for a peer that is down
   * or slow (the frame is dropped and counted instead); throws PAXLINE_BAD_ARGUMENT when m.to is
   * not a configured peer or a field cannot be encoded.
   */
  send(m: Message): void {
    const peer = this.outbound.get(m.to);
    if (peer === undefined) return badArgument('to', `${m.to} is not a configured peer`);
    if (this.closing) return;
    if (peer.state === 'backoff') {
      this.c.peerDown++;
      return;
    }
    const total = FRAME_HEADER_BYTES + encodedMessageBytes(m);
    if (total > this.o.frameBytesMax) {
      this.c.oversize++;
      return;
    }
    if (peer.queuedBytes + total > this.o.sendQueueBytesMax) {
      this.c.queueFull++;
      return;
    }
    const frame = Buffer.allocUnsafe(total);
    writeMessage(m, frame, FRAME_HEADER_BYTES);
    sealFrame(frame, { version: PROTOCOL_VERSION, clusterTag: this.clusterTag, config: m.config });
    peer.queue.push(frame);
    peer.queuedBytes += total;
    this.markDirty(peer);
  }

  stats(): PeerTransportStats {
    const c = this.c;
    const peers: PeerStats[] = [];
    for (const p of this.outbound.values()) {
      peers.push({
        id: p.address.id,
        connected: p.state === 'connected',
        inboundConnected: this.inboundByPeer.has(p.address.id),
        queuedBytes: p.queuedBytes,
        socketBufferedBytes: p.socket?.writableLength ?? 0,
      });
    }
    return {
      framesSent: c.framesSent,
      bytesSent: c.bytesSent,
      framesReceived: c.framesReceived,
      bytesReceived: c.bytesReceived,
      dropped: {
        wrongCluster: c.wrongCluster,
        wrongConfig: c.wrongConfig,
        wrongVersion: c.wrongVersion,
        badFrame: c.badFrame,
        queueFull: c.queueFull,
        peerDown: c.peerDown,
        oversize: c.oversize,
        unknownPeer: c.unknownPeer,
        staleIncarnation: c.staleIncarnation,
        misaddressed: c.misaddressed,
      },
      reconnects: c.reconnects,
      peers,
    };
  }

  /** Closes the server and every socket; resolves when all have closed. Idempotent. */
  close(): Promise<void> {
    if (this.closedPromise !== null) return this.closedPromise;
    this.closing = true;
    if (this.flushImmediate !== null) clearImmediate(this.flushImmediate);
    this.flushImmediate = null;
    this.dirty.clear();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const peer of this.outbound.values()) {
      if (peer.timer !== null) clearTimeout(peer.timer);
      peer.timer = null;
      peer.queue = [];
      peer.queuedBytes = 0;
      peer.socket?.destroy();
      peer.state = 'closed';
    }
    for (const conn of this.inbound) this.dropInbound(conn);
    this.closedPromise = Promise.all([serverClosed, ...this.socketClosed]).then(() => undefined);
    return this.closedPromise;
  }

  // -------------------------------------------------------------------------------------------
  // Outbound: dial, hello, flush, reconnect

  private track(socket: net.Socket): void {
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    this.socketClosed.add(closed);
    void closed.then(() => this.socketClosed.delete(closed));
  }

  private dial(peer: Outbound): void {
    if (this.closing) return;
    if (peer.attempts++ > 0) this.c.reconnects++;
    peer.state = 'connecting';
    peer.blocked = false;
    const socket = net.connect({ host: peer.address.host, port: peer.address.port, noDelay: true });
    peer.socket = socket;
    this.track(socket);
    socket.setTimeout(this.o.connectTimeoutMs);
    socket.on('timeout', () => socket.destroy());
    socket.on('error', () => {}); // every failure ends in 'close', handled there
    socket.on('data', () => {}); // nothing is expected on a dialed connection; keep it flowing
    socket.on('drain', () => {
      peer.blocked = false;
      this.flushPeer(peer);
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
      peer.state = 'connected';
      peer.connectedAtMs = Date.now();
      const { self, incarnation, clusterId } = this.o;
      const hello = encodeHello({ replicaId: self, incarnation, clusterId });
      const config = this.configNumber;
      const frame = encodeFrame({ version: PROTOCOL_VERSION, clusterTag: this.clusterTag, config }, hello);
      socket.write(frame);
      this.c.framesSent++;
      this.c.bytesSent += frame.length;
      this.markDirty(peer);
      this.o.onPeerState?.(peer.address.id, true);
    });
    socket.once('close', () => this.onOutboundClose(peer, socket));
  }

  private onOutboundClose(peer: Outbound, socket: net.Socket): void {
    if (peer.socket !== socket) return;
    const wasUp = peer.state === 'connected';
    peer.socket = null;
    peer.blocked = false;
    if (this.closing) return;
    this.c.peerDown += peer.queue.length;
    peer.queue = [];
    peer.queuedBytes = 0;
    this.dirty.delete(peer);
    const stayedUp = wasUp && Date.now() - peer.connectedAtMs >= this.o.reconnectMaxMs;
    peer.failures = stayedUp ? 1 : peer.failures + 1;
    const doublings = Math.min(peer.failures - 1, 30);
    const base = Math.min(this.o.reconnectMaxMs, this.o.reconnectMinMs * 2 ** doublings);
    const delayMs = base / 2 + (Math.random() * base) / 2;
    peer.state = 'backoff';
    peer.timer = setTimeout(() => {
      peer.timer = null;
      this.dial(peer);
    }, delayMs);
    if (wasUp) this.o.onPeerState?.(peer.address.id, false);
  }

  private markDirty(peer: Outbound): void {
    this.dirty.add(peer);
    if (this.flushImmediate === null) {
      this.flushImmediate = setImmediate(() => {
        this.flushImmediate = null;
        for (const p of this.dirty) this.flushPeer(p);
      });
    }
  }

  /** Writes the peer's queue, coalesced, until it is empty or the socket pushes back. */
  private flushPeer(peer: Outbound): void {
    const socket = peer.socket;
    if (peer.state !== 'connected' || socket === null || peer.blocked || peer.queue.length === 0) {
      if (peer.queue.length === 0 || peer.state !== 'connected') this.dirty.delete(peer);
      return;
    }
    this.dirty.delete(peer);
    const q = peer.queue;
    let i = 0;
    socket.cork();
    while (i < q.length) {
      let j = i + 1;
      let bytes = q[i]!.length;
      while (j < q.length && bytes + q[j]!.length <= COALESCE_BYTES_MAX) bytes += q[j++]!.length;
      const chunk = j - i === 1 ? q[i]! : Buffer.concat(q.slice(i, j), bytes);
      this.c.framesSent += j - i;
      this.c.bytesSent += bytes;
      peer.queuedBytes -= bytes;
      i = j;
      if (!socket.write(chunk)) {
        peer.blocked = true;
        break;
      }
    }
    socket.uncork();
    peer.queue = i === q.length ? [] : q.slice(i);
  }

  // -------------------------------------------------------------------------------------------
  // Inbound: hello, frame checks, delivery

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS);
    const conn = new Inbound(socket, new FrameDecoder(HELLO_FRAME_BYTES_MAX));
    this.inbound.add(conn);
    this.track(socket);
    conn.helloTimer = setTimeout(() => this.dropInbound(conn), HELLO_TIMEOUT_MS);
    conn.helloTimer.unref();
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => this.onInboundData(conn, chunk));
    socket.once('close', () => {
      this.dropInbound(conn);
      this.inbound.delete(conn);
    });
  }

  private dropInbound(conn: Inbound): void {
    if (conn.helloTimer !== null) clearTimeout(conn.helloTimer);
    conn.helloTimer = null;
    conn.dead = true;
    if (conn.peer >= 0 && this.inboundByPeer.get(conn.peer) === conn) {
      this.inboundByPeer.delete(conn.peer);
    }
    conn.socket.destroy();
  }

  private onInboundData(conn: Inbound, chunk: Buffer): void {
    if (conn.dead) return;
    this.c.bytesReceived += chunk.length;
    let frames: Frame[];
    try {
      frames = conn.decoder.push(chunk);
    } catch (error) {
      if (!(error instanceof NetError)) throw error;
      this.c.badFrame++;
      this.dropInbound(conn);
      return;
    }
    for (const frame of frames) {
      if (conn.dead) return;
      this.c.framesReceived++;
      if (conn.peer < 0) this.onHello(conn, frame);
      else this.onFrame(conn, frame);
    }
  }

  private onHello(conn: Inbound, frame: Frame): void {
    if (frame.version !== PROTOCOL_VERSION) {
      this.c.wrongVersion++;
      return this.dropInbound(conn);
    }
    let hello: Hello;
    try {
      hello = decodeHello(frame.payload);
    } catch {
      this.c.badFrame++;
      return this.dropInbound(conn);
    }
    if (frame.clusterTag !== this.clusterTag || hello.clusterId !== this.o.clusterId) {
      this.c.wrongCluster++;
      return this.dropInbound(conn);
    }
    if (!this.outbound.has(hello.replicaId)) {
      this.c.unknownPeer++;
      return this.dropInbound(conn);
    }
    const held = this.inboundByPeer.get(hello.replicaId);
    if (held !== undefined && held.incarnation > hello.incarnation) {
      this.c.staleIncarnation++;
      return this.dropInbound(conn);
    }
    if (held !== undefined) this.dropInbound(held);
    conn.peer = hello.replicaId;
    conn.incarnation = hello.incarnation;
    this.inboundByPeer.set(conn.peer, conn);
    if (conn.helloTimer !== null) clearTimeout(conn.helloTimer);
    conn.helloTimer = null;
    conn.decoder.setFrameBytesMax(this.o.frameBytesMax);
  }

  private onFrame(conn: Inbound, frame: Frame): void {
    if (frame.version !== PROTOCOL_VERSION) {
      this.c.wrongVersion++;
      return;
    }
    if (frame.clusterTag !== this.clusterTag) {
      this.c.wrongCluster++;
      return;
    }
    const type = peekMessageType(frame.payload);
    if (type === null) {
      this.c.badFrame++;
      return this.dropInbound(conn);
    }
    if (frame.config !== this.configNumber && !CROSS_CONFIG_TYPES.has(type)) {
      this.c.wrongConfig++;
      return;
    }
    let m: Message;
    try {
      m = decodeMessage(frame.payload);
    } catch (error) {
      if (!(error instanceof NetError)) throw error;
      this.c.badFrame++;
      return this.dropInbound(conn);
    }
    if (m.from !== conn.peer || m.to !== this.o.self || m.config !== frame.config) {
      this.c.misaddressed++;
      return;
    }
    this.o.onMessage(m);
  }
}
