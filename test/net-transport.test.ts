/**
 * PeerTransport over real TCP on 127.0.0.1 (src/net/peer-transport.ts): three transports
 * exchange every message type; hellos of another cluster or an unknown replica are refused and
 * counted; frames of another configuration are dropped unless cross-config; corrupt streams are
 * cut; a peer that is down and then starts, or restarts on the same port, gets later messages;
 * the send queue bound drops and counts; close() leaves no handle open.
 *
 * No timing thresholds: every wait is for a condition, with a generous timeout.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import type { Message } from '../src/core/types.js';
import { FRAME_HEADER_BYTES, PROTOCOL_VERSION, clusterTag, encodeFrame, encodeHello } from '../src/net/frame.js';
import { encodedMessageBytes } from '../src/net/message-codec.js';
import { NetError } from '../src/net/net-error.js';
import { PeerTransport, type PeerAddress, type PeerTransportOptions } from '../src/net/peer-transport.js';
import { plainMessage } from './support/plain-values.js';

const HOST = '127.0.0.1';
const CLUSTER = 'net-test';
const WAIT_MS = 20_000;

async function waitFor(cond: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A port that was free a moment ago (listen on 0, read it, close). Loopback only. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen({ host: HOST, port: 0 }, resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

interface Node {
  t: PeerTransport;
  inbox: Message[];
  up: Map<number, boolean>;
}

type Extra = Partial<Omit<PeerTransportOptions, 'self' | 'peers' | 'onMessage' | 'onPeerState'>>;

async function startNode(self: number, port: number, peers: PeerAddress[], extra: Extra = {}): Promise<Node> {
  const inbox: Message[] = [];
  const up = new Map<number, boolean>();
  const t = await PeerTransport.start({
    self,
    clusterId: CLUSTER,
    configNumber: 1,
    incarnation: 1,
    listen: { host: HOST, port },
    peers,
    onMessage: (m) => inbox.push(m),
    onPeerState: (peer, isUp) => up.set(peer, isUp),
    ...extra,
  });
  return { t, inbox, up };
}

const heartbeat = (from: number, to: number, committed: number, config = 1): Message => ({
  type: 'heartbeat',
  from,
  to,
  config,
  ballot: 1024 + from,
  committed,
  floor: 0,
});

function everyType(from: number, to: number): Message[] {
  const env = { from, to, config: 1 };
  const batch = { kind: 'batch' as const, commands: [Uint8Array.of(from, to), new Uint8Array(16)] };
  return [
    { type: 'prepare', ...env, ballot: 2048, fromDecree: 1 },
    { type: 'prepareAccepted', ...env, ballot: 2048, fromDecree: 1, coverFrom: 1, coverTo: 9, compactedUpTo: 0, entries: [{ decree: 2, ballot: 1024, value: batch }] },
    { type: 'prepareRefused', ...env, ballot: 2048, promised: 3072, sticky: false },
    { type: 'accept', ...env, ballot: 2048, decree: 3, value: batch, committed: 2 },
    { type: 'accepted', ...env, ballot: 2048, decree: 3 },
    { type: 'nack', ...env, ballot: 2048, promised: 3072 },
    heartbeat(from, to, 2),
    { type: 'heartbeatAck', ...env, ballot: 2048, durableCommitted: 3 },
    { type: 'statusQuery', ...env },
    { type: 'statusResponse', ...env, committed: 2, promised: 2048, primaryRecent: true },
    { type: 'fetch', ...env, fromDecree: 1, toDecree: 2 },
    { type: 'fetchReply', ...env, entries: [{ decree: 1, ballot: 1024, value: { kind: 'noop' } }], committed: 2 },
  ];
}

/** No TCP handle or timer of ours may remain once everything is closed. */
async function assertNoTcpHandles(): Promise<void> {
  await waitFor(
    () => !process.getActiveResourcesInfo().some((r) => r.startsWith('TCP')),
    'TCP handles to close',
  );
}

test('transport: options are validated, errors name the field', async () => {
  const base: PeerTransportOptions = {
    self: 0,
    clusterId: CLUSTER,
    configNumber: 1,
    incarnation: 1,
    listen: { host: HOST, port: 0 },
    peers: [{ id: 1, host: HOST, port: 1 }],
    onMessage: () => {},
  };
  const cases: [Partial<Record<keyof PeerTransportOptions, unknown>>, string][] = [
    [{ self: -1 }, 'self'],
    [{ self: 1.5 }, 'self'],
    [{ clusterId: '' }, 'clusterId'],
    [{ configNumber: 0 }, 'configNumber'],
    [{ incarnation: -1 }, 'incarnation'],
    [{ listen: { host: HOST, port: 70000 } }, 'listen.port'],
    [{ listen: { host: '', port: 0 } }, 'listen.host'],
    [{ peers: [{ id: 0, host: HOST, port: 1 }] }, 'peers[0].id'],
    [{ peers: [{ id: 1, host: HOST, port: 1 }, { id: 1, host: HOST, port: 2 }] }, 'peers[1].id'],
    [{ peers: [{ id: 1, host: HOST, port: 0 }] }, 'peers[0].port'],
    [{ reconnectMinMs: 0 }, 'reconnectMinMs'],
    [{ reconnectMinMs: 50, reconnectMaxMs: 10 }, 'reconnectMaxMs'],
    [{ sendQueueBytesMax: 0 }, 'sendQueueBytesMax'],
    [{ frameBytesMax: 10 }, 'frameBytesMax'],
    [{ onMessage: 'no' }, 'onMessage'],
  ];
  for (const [patch, field] of cases) {
    await assert.rejects(
      PeerTransport.start({ ...base, ...patch } as PeerTransportOptions),
      (e: unknown) => e instanceof NetError && e.code === 'PAXLINE_BAD_OPTION' && e.field === field,
      field,
    );
  }
  await assertNoTcpHandles();
});

test('transport: three replicas exchange every message type', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: p1 }, { id: 2, host: HOST, port: p2 }]);
  const nodes = [a];
  try {
    assert.ok(a.t.port > 0);
    const ports = [a.t.port, p1, p2];
    for (const id of [1, 2]) {
      const peers = [0, 1, 2].filter((p) => p !== id).map((p) => ({ id: p, host: HOST, port: ports[p]! }));
      nodes.push(await startNode(id, ports[id]!, peers));
    }
    await waitFor(() => nodes.every((n) => n.t.stats().peers.every((p) => p.connected && p.inboundConnected)), 'full mesh');
    const sent = new Map<number, Message[]>();
    for (const from of [0, 1, 2]) {
      for (const to of [0, 1, 2]) {
        if (from === to) continue;
        const ms = everyType(from, to);
        for (const m of ms) nodes[from]!.t.send(m);
        sent.set(to, [...(sent.get(to) ?? []), ...ms]);
      }
    }
    await waitFor(() => nodes.every((n, i) => n.inbox.length === sent.get(i)!.length), 'all messages');
    for (const [i, n] of nodes.entries()) {
      // Per connection, arrival order is send order; across senders it interleaves.
      for (const from of [0, 1, 2]) {
        assert.deepStrictEqual(
          n.inbox.filter((m) => m.from === from).map(plainMessage),
          sent.get(i)!.filter((m) => m.from === from),
        );
      }
      const s = n.t.stats();
      assert.equal(s.framesSent, 2 * 12 + 2, 'messages plus one hello per peer');
      assert.equal(s.framesReceived, 2 * 12 + 2);
      assert.deepEqual(Object.values(s.dropped), Object.values(s.dropped).map(() => 0));
      assert.deepEqual([...n.up.entries()].sort(), [0, 1, 2].filter((p) => p !== i).map((p) => [p, true]));
    }
  } finally {
    await Promise.all(nodes.map((n) => n.t.close()));
  }
  await assertNoTcpHandles();
});

test('transport: another cluster id or an unknown replica is refused and counted', async () => {
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: await freePort() }]);
  const toA = [{ id: 0, host: HOST, port: a.t.port }];
  const stranger = await startNode(1, 0, toA, { clusterId: 'other-cluster' });
  const unknown = await startNode(7, 0, toA);
  try {
    await waitFor(() => a.t.stats().dropped.wrongCluster >= 1, 'wrongCluster counted');
    await waitFor(() => a.t.stats().dropped.unknownPeer >= 1, 'unknownPeer counted');
    stranger.t.send(heartbeat(1, 0, 1));
    unknown.t.send(heartbeat(7, 0, 1));
    // Wait for at least one more refused attempt from each: anything they queued has been tried.
    const s0 = a.t.stats().dropped;
    await waitFor(() => a.t.stats().dropped.wrongCluster > s0.wrongCluster, 'a retried stranger');
    await waitFor(() => a.t.stats().dropped.unknownPeer > s0.unknownPeer, 'a retried unknown');
    assert.equal(a.inbox.length, 0);
    assert.equal(a.t.stats().peers[0]!.inboundConnected, false);
  } finally {
    await Promise.all([a.t.close(), stranger.t.close(), unknown.t.close()]);
  }
  await assertNoTcpHandles();
});

/** Opens a raw connection to `port`, writes `bytes`, resolves when the server closes it. */
async function rawSession(port: number, bytes: Uint8Array): Promise<void> {
  const socket = net.connect({ host: HOST, port });
  socket.on('error', () => {});
  socket.write(bytes);
  socket.resume();
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
}

test('transport: corrupt streams are cut and counted; frames of another config dropped unless cross-config', async () => {
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: await freePort() }]);
  try {
    const tag = clusterTag(CLUSTER);
    const hello = encodeFrame(
      { version: PROTOCOL_VERSION, clusterTag: tag, config: 1 },
      encodeHello({ replicaId: 1, incarnation: 1, clusterId: CLUSTER }),
    );
    const corrupt = encodeFrame({ version: PROTOCOL_VERSION, clusterTag: tag, config: 1 }, Uint8Array.of(4, 1, 2, 3));
    corrupt[corrupt.length - 1]! ^= 0x10; // checksum mismatch
    await rawSession(a.t.port, Buffer.concat([hello, corrupt]));
    assert.equal(a.t.stats().dropped.badFrame, 1);
    const badVersion = encodeFrame({ version: 99, clusterTag: tag, config: 1 }, encodeHello({ replicaId: 1, incarnation: 1, clusterId: CLUSTER }));
    await rawSession(a.t.port, badVersion);
    assert.equal(a.t.stats().dropped.wrongVersion, 1);
    const huge = new Uint8Array(8);
    new DataView(huge.buffer).setUint32(0, 100_000, true); // above the pre-hello frame limit
    await rawSession(a.t.port, huge);
    assert.equal(a.t.stats().dropped.badFrame, 2);

    // Replica 1 in configuration 2: only cross-configuration types get through.
    const b = await startNode(1, 0, [{ id: 0, host: HOST, port: a.t.port }], { configNumber: 2 });
    try {
      await waitFor(() => b.t.stats().peers[0]!.connected, 'b dialed a');
      b.t.send(heartbeat(1, 0, 5, 2));
      b.t.send({ type: 'statusQuery', from: 1, to: 0, config: 2 });
      b.t.send(heartbeat(1, 0, 6, 1)); // envelope config 1 matches a's: delivered
      await waitFor(() => a.inbox.length === 2, 'cross-config and same-config messages');
      assert.deepEqual(a.inbox.map((m) => m.type), ['statusQuery', 'heartbeat']);
      assert.equal(a.t.stats().dropped.wrongConfig, 1);
      // Once a moves to configuration 2 as well, b's protocol messages get through.
      a.t.setConfigNumber(2);
      b.t.send(heartbeat(1, 0, 7, 2));
      await waitFor(() => a.inbox.length === 3, 'same-config message after setConfigNumber');
      assert.equal(a.t.stats().dropped.wrongConfig, 1);
    } finally {
      await b.t.close();
    }
  } finally {
    await a.t.close();
  }
  await assertNoTcpHandles();
});

test('transport: a peer that is down and then starts receives later messages', async () => {
  const pb = await freePort();
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: pb }], { reconnectMinMs: 5, reconnectMaxMs: 40 });
  let b: Node | null = null;
  try {
    await waitFor(() => a.t.stats().reconnects >= 3, 'a few refused attempts');
    a.t.send(heartbeat(0, 1, 1)); // dropped or queued: the protocol tolerates either
    assert.equal(a.t.stats().peers[0]!.connected, false);
    b = await startNode(1, pb, [{ id: 0, host: HOST, port: a.t.port }]);
    await waitFor(() => a.up.get(1) === true, 'a connected to b');
    for (let i = 10; i < 20; i++) a.t.send(heartbeat(0, 1, i));
    await waitFor(() => b!.inbox.some((m) => m.type === 'heartbeat' && m.committed === 19), 'later messages');
    const later = b.inbox.filter((m) => m.type === 'heartbeat' && m.committed >= 10);
    assert.deepEqual(later.map((m) => (m.type === 'heartbeat' ? m.committed : -1)), [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  } finally {
    await Promise.all([a.t.close(), b?.t.close()]);
  }
  await assertNoTcpHandles();
});

test('transport: a peer restarted on the same port (new incarnation) gets traffic again, both ways', async () => {
  const pb = await freePort();
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: pb }], { reconnectMinMs: 5, reconnectMaxMs: 50 });
  const toA = [{ id: 0, host: HOST, port: a.t.port }];
  let b = await startNode(1, pb, toA);
  try {
    await waitFor(() => a.up.get(1) === true && b.up.get(0) === true, 'connected');
    a.t.send(heartbeat(0, 1, 1));
    b.t.send(heartbeat(1, 0, 1));
    await waitFor(() => a.inbox.length === 1 && b.inbox.length === 1, 'first exchange');

    await b.t.close();
    await waitFor(() => a.up.get(1) === false, 'a saw b go down');
    b = await startNode(1, pb, toA, { incarnation: 2 });
    await waitFor(() => a.up.get(1) === true && b.up.get(0) === true, 'reconnected');
    await waitFor(() => a.t.stats().peers[0]!.inboundConnected, 'b incarnation 2 accepted by a');
    a.t.send(heartbeat(0, 1, 2));
    b.t.send(heartbeat(1, 0, 2));
    await waitFor(() => b.inbox.length === 1 && a.inbox.length === 2, 'traffic resumed');
    assert.equal(a.inbox[1]!.type === 'heartbeat' && a.inbox[1]!.committed, 2);
    assert.ok(a.t.stats().reconnects >= 1);
  } finally {
    await Promise.all([a.t.close(), b.t.close()]);
  }
  await assertNoTcpHandles();
});

test('transport: an older incarnation cannot displace a newer one', async () => {
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: await freePort() }]);
  try {
    const tag = clusterTag(CLUSTER);
    const helloOf = (incarnation: number): Uint8Array =>
      encodeFrame({ version: PROTOCOL_VERSION, clusterTag: tag, config: 1 }, encodeHello({ replicaId: 1, incarnation, clusterId: CLUSTER }));
    const newer = net.connect({ host: HOST, port: a.t.port });
    newer.on('error', () => {});
    newer.write(helloOf(5));
    await waitFor(() => a.t.stats().peers[0]!.inboundConnected, 'incarnation 5 accepted');
    await rawSession(a.t.port, helloOf(4));
    assert.equal(a.t.stats().dropped.staleIncarnation, 1);
    assert.equal(a.t.stats().peers[0]!.inboundConnected, true);
    newer.destroy();
  } finally {
    await a.t.close();
  }
  await assertNoTcpHandles();
});

test('transport: past sendQueueBytesMax new messages are dropped and counted; large bursts arrive in order', async () => {
  const pb = await freePort();
  const frameBytes = FRAME_HEADER_BYTES + encodedMessageBytes(heartbeat(0, 1, 0));
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: pb }], { sendQueueBytesMax: 10 * frameBytes });
  const b = await startNode(1, pb, [{ id: 0, host: HOST, port: a.t.port }]);
  try {
    await waitFor(() => a.up.get(1) === true, 'connected');
    // All in one turn: nothing is flushed in between, so the eleventh frame finds the queue full.
    for (let i = 0; i < 25; i++) a.t.send(heartbeat(0, 1, i));
    assert.equal(a.t.stats().dropped.queueFull, 15);
    assert.equal(a.t.stats().peers[0]!.queuedBytes, 10 * frameBytes);
    await waitFor(() => b.inbox.length === 10, 'the ten that fit');
    assert.deepEqual(b.inbox.map((m) => (m.type === 'heartbeat' ? m.committed : -1)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await waitFor(() => a.t.stats().peers[0]!.queuedBytes === 0, 'queue drained');
  } finally {
    await Promise.all([a.t.close(), b.t.close()]);
  }

  // A burst far beyond the socket's buffers: backpressure, coalescing and order.
  const pd = await freePort();
  const c = await startNode(0, 0, [{ id: 1, host: HOST, port: pd }]);
  const d = await startNode(1, pd, [{ id: 0, host: HOST, port: c.t.port }]);
  try {
    await waitFor(() => c.up.get(1) === true, 'connected');
    const commands = Array.from({ length: 1024 }, (_, i) => new Uint8Array(16).fill(i & 0xff));
    const count = 300; // ~6 MB
    for (let i = 1; i <= count; i++) {
      c.t.send({ type: 'accept', from: 0, to: 1, config: 1, ballot: 1024, decree: i, committed: i - 1, value: { kind: 'batch', commands } });
    }
    await waitFor(() => d.inbox.length === count, 'the whole burst');
    d.inbox.forEach((m, i) => {
      assert.ok(m.type === 'accept' && m.decree === i + 1 && m.value.kind === 'batch');
      assert.equal(m.value.commands.length, 1024);
      assert.equal(m.value.commands[1023]![15], 1023 & 0xff);
    });
    assert.equal(c.t.stats().dropped.queueFull, 0);
  } finally {
    await Promise.all([c.t.close(), d.t.close()]);
  }
  await assertNoTcpHandles();
});

test('transport: send to a non-peer throws; send after close is a no-op; close is idempotent', async () => {
  const a = await startNode(0, 0, [{ id: 1, host: HOST, port: await freePort() }]);
  assert.throws(
    () => a.t.send(heartbeat(0, 5, 1)),
    (e: unknown) => e instanceof NetError && e.code === 'PAXLINE_BAD_ARGUMENT' && e.field === 'to',
  );
  const closing = a.t.close();
  a.t.send(heartbeat(0, 1, 1));
  await Promise.all([closing, a.t.close()]);
  await assertNoTcpHandles();
});
