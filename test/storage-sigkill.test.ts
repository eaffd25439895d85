/**
 * SIGKILL smoke test on the real file system (issue 3): a child process (fixtures/log-writer.ts)
 * appends records that continue one global sequence, syncs them in random group sizes, reports
 * each durable sequence number on stdout and now and then writes a checkpoint; the parent kills
 * it with SIGKILL at a random point, recovers the log in-process and checks it, and starts the
 * next child in the same directory. Two lanes (directories) run side by side, one per core.
 *
 * What each recovery must show (seq-records.ts defines record `seq`):
 *  - the report is 'clean' or 'tornTail', never 'corrupt';
 *  - the records are exactly record 1..n in order, byte for byte, where n is at least the highest
 *    sequence number reported durable (`d` lines) and at most the highest ever announced for
 *    appending (`w` lines): records past the last reported durable one are allowed only as the
 *    exact next sequence numbers (appended, maybe synced, not yet reported);
 *  - the newest valid checkpoint loads, holds the state it names, is at least the newest one
 *    reported written (`c` lines), names a sequence <= the last reported durable one, and no
 *    checkpoint file fails verification.
 *
 * SIGKILL loses no page cache, so a torn tail comes only from a kill inside a write (Linux stops
 * a large write between pages on a fatal signal); most recoveries are clean, with records past
 * the last reported durable one. Kill points come from four plans: a timer from spawn (which
 * also lands in start-up and in the child's own recovery), a short timer from the `r` line,
 * right after the n-th `d` line, and right after the n-th `w` line (inside append / write /
 * fdatasync).
 *
 * The seed is printed first; SEED=<n> replays the same plans and record streams (kill timing is
 * still up to the scheduler). KILLS=<n> raises the number of kills (default and minimum 200).
 *
 * Cost: almost all of it is starting node (~100-150 ms a child on this 2-core machine); the log
 * is kept small (short lives, small records) so that the full re-check of every record after
 * every kill stays in the tens of milliseconds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openNewestValidCheckpoint } from '../src/log/checkpoint.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { Random } from '../src/util/random.js';
import {
  WRITER_CHECKPOINT_MEMBERS,
  WRITER_CHECKPOINT_STATE_BYTES,
  WRITER_LOG_OPTIONS,
  WRITER_PAYLOAD_BYTES_MAX,
  type WriterArgs,
} from './fixtures/log-writer-config.js';
import {
  SeqRecordCache,
  checkSeqRecords,
  seqCheckpointState,
} from './fixtures/seq-records.js';

const EXPECTED = new SeqRecordCache(WRITER_PAYLOAD_BYTES_MAX);
const WRITER = fileURLToPath(new URL('./fixtures/log-writer.js', import.meta.url));
const TMPFS_MAGIC = 0x01021994;
const KILLS_MIN = 200;
const KILLS_TARGET = Math.max(KILLS_MIN, Number(process.env['KILLS'] ?? KILLS_MIN));
const LANES = 2;
/** Children per lane at most (a child that finishes by itself is verified but not a kill). */
const ROUNDS_PER_LANE_MAX = Math.ceil((KILLS_TARGET / LANES) * 1.5);
/** A child alive this long is stuck: kill it and fail. */
const CHILD_WATCHDOG_MS = 15_000;
const TIMER_KILL_MS_MAX = 250;
const READY_KILL_MS_MAX = 40;
const LINE_KILL_COUNT_MAX = 30;
const CHILD_SYNCS_MAX = 400;
const CHILD_PAUSE_MS_MAX = 3;

type KillPlan =
  | { readonly kind: 'timer'; readonly delayMs: number }
  | { readonly kind: 'afterReady'; readonly delayMs: number }
  | { readonly kind: 'afterDurable'; readonly lines: number }
  | { readonly kind: 'afterAnnounce'; readonly lines: number };

/** What one child said before it died, and how it died. */
interface ChildRun {
  readonly killed: boolean;
  readonly code: number | null;
  readonly stderr: string;
  /** Highest `d`, `w`, `c` sequence numbers seen (0 if none), and whether `r` came. */
  readonly durableMax: number;
  readonly announcedMax: number;
  readonly checkpointMax: number;
  readonly durableLines: number;
  readonly ready: boolean;
}

interface LaneState {
  readonly dir: string;
  /** Where the log ends after the last recovery (all of it durable: recovery fsynced it). */
  lastSeq: number;
  /** Highest sequence number ever reported durable / announced / checkpointed, lane-wide. */
  durableMax: number;
  checkpointMax: number;
}

interface Tally {
  kills: number;
  selfExits: number;
  killsBeforeReady: number;
  byPlan: Record<KillPlan['kind'], number>;
  recoveries: number;
  recordsVerified: number;
  tornTails: number;
  bytesCut: number;
  segmentsCut: number;
  recoveriesWithUnreportedRecords: number;
  unreportedRecords: number;
  durableLines: number;
  checkpointsLoaded: number;
  recoveryMsMax: number;
}

function drawPlan(rng: Random): KillPlan {
  const pick = rng.int(10);
  if (pick < 2) return { kind: 'timer', delayMs: rng.int(TIMER_KILL_MS_MAX + 1) };
  if (pick < 4) return { kind: 'afterReady', delayMs: rng.int(READY_KILL_MS_MAX + 1) };
  const lines = rng.range(1, LINE_KILL_COUNT_MAX);
  return pick < 7 ? { kind: 'afterDurable', lines } : { kind: 'afterAnnounce', lines };
}

/** Spawns the writer, kills it as `plan` says, and resolves once it is gone and stdout drained. */
function runChild(args: WriterArgs, plan: KillPlan): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let killSent = false;
    let stuck = false;
    const kill = (): void => {
      if (!killSent) child.kill('SIGKILL');
      killSent = true;
    };
    let timer = plan.kind === 'timer' ? setTimeout(kill, plan.delayMs) : undefined;
    const watchdog = setTimeout(() => {
      stuck = true;
      kill();
    }, CHILD_WATCHDOG_MS);
    let partial = '';
    let stderr = '';
    const seen = {
      durableMax: 0, announcedMax: 0, checkpointMax: 0, durableLines: 0, ready: false,
    };
    let announceLines = 0;
    const onLine = (line: string): void => {
      const [tag, value] = line.split(' ');
      const seq = Number(value);
      if (tag === 'r') {
        seen.ready = true;
        if (plan.kind === 'afterReady') timer = setTimeout(kill, plan.delayMs);
      }
      else if (tag === 'w') {
        seen.announcedMax = Math.max(seen.announcedMax, seq);
        announceLines++;
        if (plan.kind === 'afterAnnounce' && announceLines >= plan.lines) kill();
      } else if (tag === 'd') {
        seen.durableMax = Math.max(seen.durableMax, seq);
        seen.durableLines++;
        if (plan.kind === 'afterDurable' && seen.durableLines >= plan.lines) kill();
      } else if (tag === 'c') seen.checkpointMax = Math.max(seen.checkpointMax, seq);
      else if (tag !== 'x') stderr += `unexpected line from the writer: ${line}\n`;
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      // A line is written with one write(2) of a few bytes, so it is never split by SIGKILL;
      // an unterminated remainder is just the rest of a pipe read, completed by the next chunk.
      partial = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(watchdog);
      if (stuck) {
        reject(new Error(`writer stuck for ${CHILD_WATCHDOG_MS} ms (${JSON.stringify(args)})`));
        return;
      }
      resolve({ killed: signal === 'SIGKILL', code, stderr, ...seen });
    });
  });
}

/** Recovers the lane's log in-process and checks everything the file comment promises. */
function recoverAndCheck(lane: LaneState, run: ChildRun, tally: Tally, where: string): void {
  const fs = new NodeFileLayer();
  const started = performance.now();
  const { log, records, report } = SegmentLog.open(fs, lane.dir, WRITER_LOG_OPTIONS);
  try {
    tally.recoveryMsMax = Math.max(tally.recoveryMsMax, performance.now() - started);
    assert.ok(
      report.kind === 'clean' || report.kind === 'tornTail',
      `${where}: recovery after SIGKILL reported ${report.kind}: ${report.message}`,
    );
    assert.equal(report.error, null, `${where}: ${report.message}`);
    const durable = Math.max(lane.durableMax, run.durableMax);
    const appendedMax = Math.max(lane.lastSeq, run.announcedMax);
    const problem = checkSeqRecords(records, durable, appendedMax, EXPECTED);
    assert.equal(problem, null, `${where}: ${problem ?? ''} (${report.message})`);
    tally.recoveries++;
    tally.recordsVerified += records.length;
    if (report.kind === 'tornTail') {
      tally.tornTails++;
      tally.bytesCut += report.bytesCut;
      tally.segmentsCut += report.segmentsCut.length;
    }
    if (records.length > durable) {
      tally.recoveriesWithUnreportedRecords++;
      tally.unreportedRecords += records.length - durable;
    }
    // Recovery fsynced what it kept, so all of it is durable from here on.
    lane.lastSeq = records.length;
    lane.durableMax = records.length;
  } finally {
    log.close();
  }
  lane.checkpointMax = Math.max(lane.checkpointMax, run.checkpointMax);
  checkCheckpoints(fs, lane, tally, where);
}

function checkCheckpoints(fs: NodeFileLayer, lane: LaneState, tally: Tally, where: string): void {
  const opened = openNewestValidCheckpoint(fs, lane.dir, (reader, info) => {
    const want = seqCheckpointState(info.decree, WRITER_CHECKPOINT_STATE_BYTES);
    const got = new Uint8Array(reader.bytesRemaining);
    let at = 0;
    for (let chunk = reader.read(4096); chunk !== null; chunk = reader.read(4096)) {
      got.set(chunk, at);
      at += chunk.length;
    }
    return at === want.length && got.every((b, i) => b === want[i]);
  });
  const skipped = opened.skipped.map((s) => `${s.name} ${s.reason} ${s.error?.message ?? ''}`);
  assert.deepEqual(skipped, [], `${where}: checkpoints failed verification or did not load`);
  if (lane.checkpointMax === 0) return;
  const loaded = opened.loaded;
  assert.ok(loaded !== null, `${where}: checkpoint ${lane.checkpointMax} was reported, none loads`);
  assert.ok(loaded.decree >= lane.checkpointMax, `${where}: newest checkpoint ${loaded.decree} ` +
    `is older than the reported ${lane.checkpointMax}`);
  assert.ok(loaded.decree <= lane.durableMax, `${where}: checkpoint ${loaded.decree} is past ` +
    `the durable sequence ${lane.durableMax}`);
  assert.deepEqual(loaded.members, WRITER_CHECKPOINT_MEMBERS);
  tally.checkpointsLoaded++;
}

/** Set when a lane fails, so the other stops at its next round instead of running on. */
interface Stop {
  failed: boolean;
}

async function runLane(
  laneNo: number,
  rng: Random,
  base: string,
  tally: Tally,
  stop: Stop,
): Promise<void> {
  const lane: LaneState = {
    dir: join(base, `lane-${laneNo}`), lastSeq: 0, durableMax: 0, checkpointMax: 0,
  };
  const killsWanted = Math.ceil(KILLS_TARGET / LANES);
  let kills = 0;
  for (let round = 0; kills < killsWanted && !stop.failed; round++) {
    assert.ok(round < ROUNDS_PER_LANE_MAX, `lane ${laneNo}: too few kills (${kills})`);
    const plan = drawPlan(rng);
    const args: WriterArgs = {
      dir: lane.dir, lastSeq: lane.lastSeq, seed: rng.nextUint32(), syncsMax: CHILD_SYNCS_MAX,
      pauseMsMax: CHILD_PAUSE_MS_MAX,
    };
    const run = await runChild(args, plan);
    const where =
      `lane ${laneNo} round ${round} (${JSON.stringify(plan)}, writer seed ${args.seed})`;
    if (!run.killed) {
      assert.equal(run.code, 0, `${where}: the writer failed (exit ${run.code}): ${run.stderr}`);
      tally.selfExits++;
    } else {
      assert.equal(run.stderr, '', `${where}: the writer complained before it was killed`);
      kills++;
      tally.kills++;
      tally.byPlan[plan.kind]++;
      if (!run.ready) tally.killsBeforeReady++;
    }
    tally.durableLines += run.durableLines;
    recoverAndCheck(lane, run, tally, where);
  }
}

test('SIGKILL at >= 200 random points: every record reported durable survives', async (t) => {
  const seed = Number(process.env['SEED'] ?? (Date.now() % 0x1_0000_0000));
  t.diagnostic(`seed ${seed} (replay with SEED=${seed})`);
  const fsType = statfsSync(tmpdir()).type;
  assert.notEqual(
    fsType, TMPFS_MAGIC,
    `${tmpdir()} is tmpfs: the SIGKILL test must run on a real file system (set TMPDIR)`,
  );
  t.diagnostic(`${tmpdir()}: file system magic 0x${fsType.toString(16)}`);
  const base = mkdtempSync(join(tmpdir(), 'paxline-sigkill-'));
  const tally: Tally = {
    kills: 0, selfExits: 0, killsBeforeReady: 0,
    byPlan: { timer: 0, afterReady: 0, afterDurable: 0, afterAnnounce: 0 },
    recoveries: 0, recordsVerified: 0, tornTails: 0, bytesCut: 0, segmentsCut: 0,
    recoveriesWithUnreportedRecords: 0, unreportedRecords: 0, durableLines: 0,
    checkpointsLoaded: 0, recoveryMsMax: 0,
  };
  const started = performance.now();
  try {
    const rng = new Random(seed);
    const stop: Stop = { failed: false };
    const lanes = Array.from({ length: LANES }, (_, i) =>
      runLane(i, rng.fork(), base, tally, stop).catch((e: unknown) => {
        stop.failed = true;
        throw e;
      }),
    );
    // Every lane has stopped (no child left running) before the directory is removed.
    const settled = await Promise.allSettled(lanes);
    for (const outcome of settled) if (outcome.status === 'rejected') throw outcome.reason;
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const seconds = (performance.now() - started) / 1000;
  assert.ok(tally.kills >= KILLS_MIN, `only ${tally.kills} kills`);
  t.diagnostic(
    `${tally.kills} kills (timer from spawn ${tally.byPlan.timer}, timer from the ready line ` +
      `${tally.byPlan.afterReady}, after a durable line ` +
      `${tally.byPlan.afterDurable}, after an append announcement ${tally.byPlan.afterAnnounce}; ` +
      `${tally.killsBeforeReady} before the child had recovered), ${tally.selfExits} children ` +
      `finished by themselves, in ${seconds.toFixed(1)} s over ${LANES} lanes`,
  );
  t.diagnostic(
    `${tally.recoveries} recoveries verified ${tally.recordsVerified} records byte for byte ` +
      `(${tally.durableLines} durable reports); 0 durable records lost, 0 phantoms; ` +
      `${tally.tornTails} torn tails cut (${tally.bytesCut} bytes, ${tally.segmentsCut} ` +
      `segments); ${tally.recoveriesWithUnreportedRecords} recoveries kept ` +
      `${tally.unreportedRecords} appended-but-unreported records; ` +
      `${tally.checkpointsLoaded} checkpoint loads; slowest recovery ` +
      `${tally.recoveryMsMax.toFixed(1)} ms`,
  );
});
