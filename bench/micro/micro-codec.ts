/**
 * Codec and checksum micro benchmarks.
 *
 * Codec: encode and decode of
 *  - a network `accept` carrying 1,024 commands of 16 bytes (src/net/message-codec.ts), the hot
 *    message of the decree path, and a `heartbeat`, the smallest common one;
 *  - the log's `accept` record of the same 1,024 × 16-byte batch (src/codec/records.ts);
 *  - a key-value `put` of a 16-byte key and a 128-byte value (src/kv/kv-codec.ts, msgpackr).
 * Each encode allocates its output, as the functions do; each decode of an accept builds one view
 * object per command (zero-copy: no command bytes are copied). They measure CPU on hot caches;
 * they do NOT include framing, the frame CRC, or any socket or disk I/O. MB/s counts encoded
 * bytes.
 *
 * CRC32C (src/util/crc32c.ts): `crc32c` as the code calls it — the native @node-rs/crc32 path
 * for inputs of at least CRC32C_NATIVE_BYTES_MIN bytes when it loaded, the table-driven
 * JavaScript below that (so `crc32c 64 B` is the JavaScript path by design) — and `crc32cJs`
 * forced, on 64 B, 4 KiB and 64 KiB inputs already in cache. MB/s counts input bytes.
 */
import { makeBallot } from '../../src/core/ballot.js';
import type { LogRecord, Message } from '../../src/core/types.js';
import { decodeRecord, encodeRecord } from '../../src/codec/records.js';
import { type KvCommand, decodeKvCommand, encodeKvCommand } from '../../src/kv/kv-codec.js';
import { decodeMessage, encodeMessage } from '../../src/net/message-codec.js';
import { crc32c, crc32cJs } from '../../src/util/crc32c.js';
import { type MicroTask, sink } from './micro-types.js';

const COMMANDS = 1024;
const COMMAND_BYTES = 16;

function commands(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < COMMANDS; i++) out.push(new Uint8Array(COMMAND_BYTES).fill(i & 0xff));
  return out;
}

/** A task doing `op` `repeats` times per iteration. */
function repeated(
  spec: Omit<MicroTask, 'fn' | 'opsPerIteration'> & { readonly repeats: number },
  op: () => void,
): MicroTask {
  const { repeats, ...rest } = spec;
  const fn = repeats === 1 ? op : (): void => {
    for (let i = 0; i < repeats; i++) op();
  };
  return { ...rest, opsPerIteration: repeats, fn };
}

const codec = (name: string, unit: string, repeats: number, bytesPerOp: number) =>
  ({ name: `codec ${name}`, group: 'codec', unit, repeats, bytesPerOp }) as const;

function messageTasks(): MicroTask[] {
  const ballot = makeBallot(3, 0);
  const accept: Message = {
    type: 'accept', from: 0, to: 1, config: 1, ballot, decree: 1000, committed: 999,
    value: { kind: 'batch', commands: commands() },
  };
  const heartbeat: Message = {
    type: 'heartbeat', from: 0, to: 1, config: 1, ballot, committed: 999, floor: 0,
  };
  const acceptBytes = encodeMessage(accept);
  const heartbeatBytes = encodeMessage(heartbeat);
  const record: LogRecord = { type: 'accept', decree: 1000, ballot, value: accept.value };
  const recordBytes = encodeRecord(record);
  const batch = '1024×16 B';
  return [
    repeated(codec(`encodeMessage accept ${batch}`, 'message', 1, acceptBytes.length), () => {
      sink.value += encodeMessage(accept).length;
    }),
    repeated(codec(`decodeMessage accept ${batch}`, 'message', 1, acceptBytes.length), () => {
      sink.value += decodeMessage(acceptBytes).from;
    }),
    repeated(codec('encodeMessage heartbeat', 'message', 256, heartbeatBytes.length), () => {
      sink.value += encodeMessage(heartbeat).length;
    }),
    repeated(codec('decodeMessage heartbeat', 'message', 256, heartbeatBytes.length), () => {
      sink.value += decodeMessage(heartbeatBytes).from;
    }),
    repeated(codec(`encodeRecord accept ${batch}`, 'record', 1, recordBytes.length), () => {
      sink.value += encodeRecord(record).length;
    }),
    repeated(codec(`decodeRecord accept ${batch}`, 'record', 1, recordBytes.length), () => {
      sink.value += decodeRecord(recordBytes).type.length;
    }),
  ];
}

function kvTasks(): MicroTask[] {
  const put: KvCommand = {
    op: 'put', clientId: 12345, seq: 678, ackedBelow: 600, key: 'k'.repeat(16),
    value: 'v'.repeat(128),
  };
  const putBytes = encodeKvCommand(put);
  const what = 'put 16 B key 128 B value';
  return [
    repeated(codec(`encodeKvCommand ${what}`, 'command', 64, putBytes.length), () => {
      sink.value += encodeKvCommand(put).length;
    }),
    repeated(codec(`decodeKvCommand ${what}`, 'command', 64, putBytes.length), () => {
      sink.value += decodeKvCommand(putBytes).seq;
    }),
  ];
}

const CRC_SIZES = [[64, '64 B', 256], [4096, '4 KiB', 16], [65_536, '64 KiB', 1]] as const;

export function crcTasks(): MicroTask[] {
  const out: MicroTask[] = [];
  for (const [bytes, label, repeats] of CRC_SIZES) {
    const data = new Uint8Array(bytes);
    for (let i = 0; i < bytes; i++) data[i] = (i * 31 + 7) & 0xff;
    const spec = (name: string) =>
      ({ name, group: 'crc32c', unit: 'checksum', repeats, bytesPerOp: bytes }) as const;
    out.push(
      repeated(spec(`crc32c ${label}`), () => {
        sink.value += crc32c(data);
      }),
      repeated(spec(`crc32cJs ${label}`), () => {
        sink.value += crc32cJs(data);
      }),
    );
  }
  return out;
}

export function codecTasks(): MicroTask[] {
  return [...messageTasks(), ...kvTasks()];
}

