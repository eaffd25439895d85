/**
 * Log append micro benchmark: SegmentLog.append of one 16 KiB payload followed by sync(), on
 * SimFs (src/sim/sim-fs.ts), the in-memory FileLayer of the simulator.
 *
 * It measures the CPU cost of the log's own work per group: record framing, the record CRC32C
 * over 16 KiB, the group header and its CRCs, planning and the bookkeeping of the durable
 * frontier, and the periodic preallocation writes — plus SimFs's in-memory copies (the write
 * into its page array and the undo image of each page it changes). It does NOT measure a disk,
 * a page cache or fdatasync: SimFs's fdatasync is a memory operation. For the real-disk figures
 * (group commit vs the fdatasync floor) run `paxline bench-log`.
 *
 * The log is kept in its steady state: after iterations (untimed) every segment below the one
 * being written is retired, and retired files are recycled, so memory stays bounded.
 */
import { SegmentLog } from '../../src/log/segment-log.js';
import { SimFs } from '../../src/sim/sim-fs.js';
import type { MicroTask } from './micro-types.js';

const PAYLOAD_BYTES = 16 * 1024;
const SEGMENT_BYTES = 8 * 1024 * 1024;
const RECORD_TYPE_ACCEPT = 2;
const BALLOT = 3 * 1024;
const RETIRE_EVERY_ITERATIONS = 128;

export function appendTask(): MicroTask {
  let log: SegmentLog | null = null;
  let decree = 0;
  const payload = new Uint8Array(PAYLOAD_BYTES);
  for (let i = 0; i < PAYLOAD_BYTES; i++) payload[i] = (i * 13 + 1) & 0xff;
  const open = (): SegmentLog => {
    if (log === null) throw new Error('log append benchmark: not set up');
    return log;
  };
  return {
    name: 'log append+sync 16 KiB (SimFs: CPU only, no disk)', group: 'log', unit: 'record',
    opsPerIteration: 1, bytesPerOp: PAYLOAD_BYTES,
    setup: () => {
      log = SegmentLog.open(new SimFs(), '/bench-log', { segmentBytes: SEGMENT_BYTES }).log;
      decree = 0;
    },
    fn: () => {
      const l = open();
      const seq = l.append(RECORD_TYPE_ACCEPT, ++decree, BALLOT, payload);
      if (l.sync() < seq) throw new Error('log append benchmark: sync did not cover the append');
    },
    afterEach: () => {
      if (decree % RETIRE_EVERY_ITERATIONS !== 0) return;
      const l = open();
      const newest = l.segmentSummaries().at(-1);
      if (newest !== undefined && newest.segment > l.firstSegment) {
        l.retireSegmentsBelow(newest.segment);
      }
    },
    teardown: () => {
      log?.close();
      log = null;
    },
  };
}
