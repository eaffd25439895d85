/**
 * Disk full (issue 3): the log runs out of space, says so with a coded error naming the file,
 * loses nothing it acknowledged, and resumes once space returns.
 *
 * One scenario, run three ways:
 *  - for real: as root, on a small loop-mounted ext4 file system (16 MiB image under tmpdir,
 *    mkfs.ext4 -m 0, mount -o loop). Skipped, saying why, when that is not possible here (not
 *    root, no mkfs.ext4 / mount / losetup, or the mount fails); nothing is installed. The image
 *    and mount point are always unmounted and removed, also on failure.
 *  - always, through `QuotaFs`, a FileLayer wrapper over SimFs that gives the log a fixed number
 *    of bytes: a write that does not fit writes the part that fits and throws ENOSPC (what
 *    write(2) does), like ext4 with delayed allocation reserving at write time;
 *  - always, through `QuotaFs` in overcommit mode: writes always succeed and ENOSPC comes from
 *    the next fdatasync (thin provisioning, NFS, filesystems that allocate at writeback).
 *
 * The scenario (records are seq-records.ts records, so every byte is checked on reopen):
 *  1. occupy part of the disk with a filler file, then append + sync random groups until sync
 *     throws: a LogError PAXLINE_DISK_FULL whose `file` and message name a segment file;
 *  2. sync again while still full: fails the same way (or PAXLINE_LOG_FAILED after a failed
 *     fdatasync), never half-succeeds;
 *  3. (ENOSPC at write) close and reopen while still full: every record reported durable is
 *     there, byte for byte, nothing beyond what was appended, report not corrupt; then fill up
 *     again from the reopened log;
 *  4. delete the filler: sync (or recoverAfterFailure after a failed fdatasync) succeeds and
 *     makes every appended record durable, and further appends + syncs succeed;
 *  5. close and reopen: exactly every record appended, clean.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  rmSync,
  statfsSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { FileLayer } from '../src/log/file-layer.js';
import { NodeFileLayer } from '../src/log/node-file-layer.js';
import { LogError, SegmentLog, type SegmentLogOptions } from '../src/log/segment-log.js';
import { SimFs } from '../src/sim/sim-fs.js';
import { Random } from '../src/util/random.js';
import { SeqRecordCache, checkSeqRecords, seqRecord } from './fixtures/seq-records.js';

const MIB = 1024 * 1024;
const LOG_OPTIONS: SegmentLogOptions = Object.freeze({
  segmentBytes: 256 * 1024,
  preallocChunkBytes: 16 * 1024,
  preallocAheadBytes: 64 * 1024,
});
const PAYLOAD_BYTES_MAX = 32 * 1024;
const GROUP_RECORDS_MAX = 16;
const EXPECTED = new SeqRecordCache(PAYLOAD_BYTES_MAX);
/** Syncs after space returned, to show the log keeps going. */
const RESUMED_SYNCS = 20;
const EXT4_MAGIC = 0xef53;
const IMAGE_BYTES = 16 * MIB;
const REAL_FILLER_BYTES = 4 * MIB;
const BLOCK_BYTES = 4096;

// ─── the scenario ─────────────────────────────────────────────────────────────────────────────

interface DiskFullEnv {
  readonly fs: FileLayer;
  /** A directory on the small disk; the scenario creates `filler` and `log` in it. */
  readonly root: string;
  readonly fillerBytes: number;
  /** Bytes the disk holds at most: the fill loops give up (and fail) after writing twice this. */
  readonly diskBytes: number;
  /** Whether ENOSPC is expected from fdatasync rather than from write. */
  readonly enospcAtSync: boolean;
  readonly seed: number;
}

interface ScenarioResult {
  /** What sync() threw first, and the PAXLINE_DISK_FULL error in it. */
  readonly firstThrown: LogError;
  readonly firstError: LogError;
  readonly errorsWhileFull: string[];
  readonly recordsAtFull: number;
  readonly recordsFinal: number;
  readonly reopenWhileFull: string;
  readonly resumedBy: 'sync' | 'recoverAfterFailure';
  readonly segmentFiles: number;
  readonly groupsAbandoned: number;
}

/** The log under test with the global sequence numbers of what it appended / made durable. */
interface Writer {
  log: SegmentLog;
  appended: number;
  durable: number;
  /** Payload bytes appended through this writer (bounds the fill loops). */
  bytes: number;
  /** From the recovery report of the open that made this writer. */
  groupsAbandoned: number;
  reportKind: string;
  bytesCut: number;
}

function openWriter(env: DiskFullEnv, minCount: number, maxCount: number, what: string): Writer {
  const { log, records, report } = SegmentLog.open(env.fs, `${env.root}/log`, LOG_OPTIONS);
  try {
    assert.notEqual(report.kind, 'corrupt', `${what}: ${report.message}`);
    const problem = checkSeqRecords(records, minCount, maxCount, EXPECTED);
    assert.equal(problem, null, `${what}: ${problem ?? ''} (${report.message})`);
  } catch (e) {
    log.close(); // so that a failed check still lets the loop mount go
    throw e;
  }
  const { groupsAbandoned, bytesCut } = report;
  return {
    log, appended: records.length, durable: records.length, bytes: 0, groupsAbandoned,
    reportKind: report.kind, bytesCut,
  };
}

function appendGroup(w: Writer, rng: Random): void {
  const count = rng.range(1, GROUP_RECORDS_MAX);
  for (let i = 0; i < count; i++) {
    const record = seqRecord(++w.appended, PAYLOAD_BYTES_MAX);
    w.log.appendRecord(record);
    w.bytes += record.payload.length;
  }
}

/** Appends and syncs random groups until sync() throws; returns what it threw. */
function fillUntilFull(env: DiskFullEnv, w: Writer, rng: Random, what: string): LogError {
  const bytesAtStart = w.bytes;
  for (;;) {
    assert.ok(w.bytes - bytesAtStart < 2 * env.diskBytes, `${what}: never ran out of space`);
    appendGroup(w, rng);
    const base = w.appended - w.log.appendedSeq;
    try {
      const durable = base + w.log.sync();
      assert.equal(durable, w.appended, `${what}: sync() returned without syncing everything`);
      w.durable = durable;
    } catch (e) {
      assert.ok(e instanceof LogError, `${what}: sync() threw a non-LogError: ${String(e)}`);
      assert.equal(w.durable, base + w.log.durableSeq, `${what}: durableSeq moved on failure`);
      return e;
    }
  }
}

/**
 * Checks that `thrown` reports a full disk and returns the PAXLINE_DISK_FULL error: `thrown`
 * itself, or — when the ENOSPC came from the fdatasync of a preallocation at the end of an
 * earlier, successful sync(), which stops the log silently — the cause of the
 * PAXLINE_LOG_FAILED that the next sync() throws.
 */
function assertDiskFull(
  env: DiskFullEnv,
  thrown: LogError,
  log: SegmentLog,
  what: string,
): LogError {
  let e = thrown;
  if (e.code === 'PAXLINE_LOG_FAILED' && e.cause instanceof LogError) e = e.cause;
  assert.equal(e.code, 'PAXLINE_DISK_FULL', `${what}: ${thrown.code}: ${thrown.message}`);
  assert.ok(e.file !== null && /\/log\/seg-\d{8}\.plog$/.test(e.file), `${what}: file ${e.file}`);
  assert.ok(e.file.startsWith(`${env.root}/log/`), `${what}: ${e.file} is not in the log`);
  assert.ok(e.message.includes(e.file), `${what}: the message does not name ${e.file}`);
  assert.ok((e.cause as { code?: unknown } | undefined)?.code === 'ENOSPC', `${what}: cause`);
  // ENOSPC at write leaves the log usable (retry sync()); at fdatasync it stops it.
  assert.equal(log.failed !== null, env.enospcAtSync, `${what}: log.failed is ${log.failed?.code}`);
  if (log.failed !== null) assert.equal(log.failed.code, 'PAXLINE_DISK_FULL');
  return e;
}

function writeFiller(env: DiskFullEnv): string {
  const path = `${env.root}/filler`;
  env.fs.mkdirp(env.root);
  const fd = env.fs.open(path, { create: true });
  const chunk = new Uint8Array(256 * 1024).fill(0xa5);
  try {
    for (let at = 0; at < env.fillerBytes; at += chunk.length) env.fs.pwrite(fd, chunk, at);
    env.fs.fdatasync(fd);
  } finally {
    env.fs.close(fd);
  }
  env.fs.fsyncDir(env.root);
  return path;
}

function runDiskFullScenario(env: DiskFullEnv): ScenarioResult {
  const rng = new Random(env.seed);
  const filler = writeFiller(env);
  let w = openWriter(env, 0, 0, 'first open');
  try {
    // 1. Fill the disk.
    const thrown = fillUntilFull(env, w, rng, 'filling');
    const firstError = assertDiskFull(env, thrown, w.log, 'first ENOSPC');
    const recordsAtFull = w.durable;
    // 2. Still full: a retry fails the same way and acknowledges nothing. A log stopped by a
    //    failed fdatasync refuses sync(); recoverAfterFailure() then rewrites the unsynced
    //    records into a fresh segment each time, and fails again while the disk is full.
    const errorsWhileFull: string[] = [];
    const retries = w.log.failed === null ? 1 : 3;
    for (let i = 0; i < retries; i++) {
      const retry = i === 0 ? trySync(w) : tryResume(w);
      assert.ok(retry instanceof LogError, `retry ${i} while still full succeeded`);
      errorsWhileFull.push(retry.code);
      const stopped = i === 0 && w.log.failed !== null;
      const expected = stopped ? 'PAXLINE_LOG_FAILED' : 'PAXLINE_DISK_FULL';
      assert.equal(retry.code, expected, retry.message);
    }
    // 3. Reopen while full (only meaningful when the failure left the log usable).
    let reopenWhileFull = 'not tried: the fdatasync failed, the page cache is not trusted';
    if (w.log.failed === null) {
      w.log.close();
      w = openWriter(env, w.durable, w.appended, 'reopen while full');
      reopenWhileFull = `${w.reportKind} (cut ${w.bytesCut} bytes), recovered ${w.durable} ` +
        `records (${w.durable - recordsAtFull} appended but never acknowledged)`;
      const again = fillUntilFull(env, w, rng, 'filling after reopen');
      assertDiskFull(env, again, w.log, 'ENOSPC after reopen');
      errorsWhileFull.push(again.code);
    }
    // 4. Space returns: the pending records become durable and the log keeps going.
    env.fs.unlink(filler);
    env.fs.fsyncDir(env.root);
    const resumedBy = w.log.failed === null ? 'sync' : 'recoverAfterFailure';
    const resumed = tryResume(w);
    assert.ok(!(resumed instanceof LogError), `no resume after space returned: ${String(resumed)}`);
    for (let i = 0; i < RESUMED_SYNCS; i++) {
      appendGroup(w, rng);
      w.durable = w.appended - w.log.appendedSeq + w.log.sync();
      assert.equal(w.durable, w.appended);
    }
    w.log.close();
    // 5. Everything appended is there, exactly once, in order.
    w = openWriter(env, w.appended, w.appended, 'final reopen');
    const segmentFiles = env.fs.readdir(`${env.root}/log`).filter((n) => n.endsWith('.plog'));
    return {
      firstThrown: thrown, firstError, errorsWhileFull, recordsAtFull, recordsFinal: w.durable,
      reopenWhileFull, resumedBy, segmentFiles: segmentFiles.length,
      groupsAbandoned: w.groupsAbandoned,
    };
  } finally {
    w.log.close();
  }
}

/** sync(); returns the LogError it threw, or null. */
function trySync(w: Writer): LogError | null {
  const base = w.appended - w.log.appendedSeq;
  try {
    w.durable = base + w.log.sync();
    return null;
  } catch (e) {
    if (e instanceof LogError) return e;
    throw e;
  }
}

/** sync() (or recoverAfterFailure() on a stopped log); returns the LogError it threw, or null. */
function tryResume(w: Writer): LogError | null {
  const base = w.appended - w.log.appendedSeq;
  try {
    const seq = w.log.failed === null ? w.log.sync() : w.log.recoverAfterFailure();
    w.durable = base + seq;
    assert.equal(w.durable, w.appended, 'a successful resume left records unsynced');
    return null;
  } catch (e) {
    if (e instanceof LogError) return e;
    throw e;
  }
}

function describeResult(r: ScenarioResult): string {
  const first = r.firstThrown === r.firstError ? '' : `${r.firstThrown.code} caused by `;
  const at = `${r.firstError.file}@${r.firstError.offset}`;
  return `first error ${first}${r.firstError.code} at ${at} ` +
    `after ${r.recordsAtFull} durable records; while full: ${r.errorsWhileFull.join(', ')}; ` +
    `reopen while full: ${r.reopenWhileFull}; resumed by ${r.resumedBy}; ` +
    `${r.recordsFinal} records intact after the final reopen (${r.segmentFiles} segment files, ` +
    `${r.groupsAbandoned} abandoned groups dropped)`;
}

// ─── QuotaFs: ENOSPC by injection ─────────────────────────────────────────────────────────────

/**
 * A FileLayer over another that holds at most `capacityBytes` of file data (sizes rounded up to
 * 4 KiB blocks, files counted once they are opened through it). `atSync` false: a pwrite that
 * does not fit writes what fits and throws ENOSPC; true: pwrites always succeed and fdatasync /
 * fsyncDir throw ENOSPC while more than the capacity is in use.
 */
class QuotaFs implements FileLayer {
  private readonly sizes = new Map<string, number>();
  private readonly paths = new Map<number, string>();
  constructor(
    private readonly inner: FileLayer,
    readonly capacityBytes: number,
    readonly atSync: boolean,
  ) {}

  usedBytes(): number {
    let used = 0;
    for (const size of this.sizes.values()) used += blocks(size) * BLOCK_BYTES;
    return used;
  }

  open(path: string, options: { readonly create: boolean }): number {
    const fd = this.inner.open(path, options);
    this.paths.set(fd, path);
    if (!this.sizes.has(path)) this.sizes.set(path, this.inner.size(fd));
    return fd;
  }

  pwrite(fd: number, data: Uint8Array, position: number): void {
    const path = this.paths.get(fd)!;
    const size = this.sizes.get(path)!;
    const end = Math.max(size, position + data.length);
    const free = this.capacityBytes - this.usedBytes();
    if (this.atSync || (blocks(end) - blocks(size)) * BLOCK_BYTES <= free) {
      this.inner.pwrite(fd, data, position);
      this.sizes.set(path, end);
      return;
    }
    // A short write up to the last block that fits, then ENOSPC, as write(2) does.
    const fits = Math.max(0, Math.min(data.length, blocks(size) * BLOCK_BYTES + free - position));
    if (fits > 0) {
      this.inner.pwrite(fd, data.subarray(0, fits), position);
      this.sizes.set(path, Math.max(size, position + fits));
    }
    throw enospc('write', path);
  }

  fdatasync(fd: number): void {
    if (this.atSync && this.usedBytes() > this.capacityBytes) {
      throw enospc('fdatasync', this.paths.get(fd)!);
    }
    this.inner.fdatasync(fd);
  }

  fsyncDir(dir: string): void {
    if (this.atSync && this.usedBytes() > this.capacityBytes) throw enospc('fsync', dir);
    this.inner.fsyncDir(dir);
  }

  truncate(fd: number, length: number): void {
    this.inner.truncate(fd, length);
    this.sizes.set(this.paths.get(fd)!, length);
  }

  unlink(path: string): void {
    this.inner.unlink(path);
    this.sizes.delete(path);
  }

  rename(from: string, to: string): void {
    this.inner.rename(from, to);
    const size = this.sizes.get(from);
    this.sizes.delete(from);
    if (size !== undefined) this.sizes.set(to, size);
  }

  read(fd: number, into: Uint8Array, length: number, position: number): number {
    return this.inner.read(fd, into, length, position);
  }
  size(fd: number): number {
    return this.inner.size(fd);
  }
  close(fd: number): void {
    this.inner.close(fd);
    this.paths.delete(fd);
  }
  mkdirp(dir: string): void {
    this.inner.mkdirp(dir);
  }
  readdir(dir: string): string[] {
    return this.inner.readdir(dir);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
}

function blocks(bytes: number): number {
  return Math.ceil(bytes / BLOCK_BYTES);
}

function enospc(syscall: string, path: string): Error {
  const error = new Error(`ENOSPC: no space left on device, ${syscall} '${path}'`);
  return Object.assign(error, { code: 'ENOSPC', errno: -28, syscall, path });
}

// ─── a real small ext4 file system ────────────────────────────────────────────────────────────

function run(command: string, args: readonly string[]): { ok: boolean; output: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim();
  return { ok: r.status === 0, output };
}

/** Why a real loop-mounted ext4 cannot be used here, or null if it can be tried. */
function loopMountUnavailable(): string | null {
  if (process.platform !== 'linux') return `platform is ${process.platform}, not linux`;
  if (process.getuid?.() !== 0) return 'not running as root (mount -o loop needs it)';
  for (const tool of ['mkfs.ext4', 'mount', 'umount', 'losetup']) {
    if (!run('sh', ['-c', `command -v ${tool}`]).ok) return `${tool} is not installed`;
  }
  return null;
}

/** Unmounts (retrying, then lazily), detaches a loop device left behind, removes `base`. */
function tearDown(base: string, image: string, mountPoint: string, mounted: boolean): string[] {
  const notes: string[] = [];
  if (mounted) {
    let done = false;
    for (let i = 0; i < 5 && !done; i++) {
      const r = run('umount', [mountPoint]);
      done = r.ok;
      if (!done) notes.push(`umount: ${r.output}`);
      if (!done) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
    if (!done) notes.push(`umount -l: ${run('umount', ['-l', mountPoint]).output}`);
  }
  // mount -o loop sets autoclear, so the device goes with the unmount; check anyway.
  const left = run('losetup', ['-j', image]).output;
  for (const line of left.split('\n')) {
    const device = line.split(':')[0];
    if (device !== undefined && device.startsWith('/dev/loop')) {
      notes.push(`detached ${device}: ${run('losetup', ['-d', device]).output}`);
    }
  }
  rmSync(base, { recursive: true, force: true });
  return notes;
}

// ─── the tests ────────────────────────────────────────────────────────────────────────────────

describe('disk full', () => {
  test('real ENOSPC on a loop-mounted 16 MiB ext4: nothing acknowledged lost; log resumes', (t) => {
    const why = loopMountUnavailable();
    if (why !== null) {
      t.skip(`real ENOSPC case skipped: ${why}; the injected cases below still run`);
      return;
    }
    const base = mkdtempSync(join(tmpdir(), 'paxline-diskfull-'));
    const image = join(base, 'disk.img');
    const mountPoint = join(base, 'mnt');
    let mounted = false;
    try {
      writeFileSync(image, '');
      truncateSync(image, IMAGE_BYTES);
      mkdirSync(mountPoint);
      const mkfs = run('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
      assert.ok(mkfs.ok, `mkfs.ext4 failed: ${mkfs.output}`);
      const mount = run('mount', ['-o', 'loop', image, mountPoint]);
      if (!mount.ok) {
        t.skip(`real ENOSPC case skipped: mount -o loop failed (${mount.output}); ` +
          'the injected cases below still run');
        return;
      }
      mounted = true;
      const stat = statfsSync(mountPoint);
      assert.equal(stat.type, EXT4_MAGIC, 'the loop mount is not ext4');
      const diskBytes = stat.bavail * stat.bsize;
      t.diagnostic(`loop-mounted ext4 at ${mountPoint}: ${(diskBytes / MIB).toFixed(1)} MiB free`);
      const seed = 3;
      const result = runDiskFullScenario({
        fs: new NodeFileLayer(), root: mountPoint, fillerBytes: REAL_FILLER_BYTES, diskBytes,
        enospcAtSync: false, seed,
      });
      t.diagnostic(describeResult(result));
    } finally {
      for (const note of tearDown(base, image, mountPoint, mounted)) t.diagnostic(note);
    }
  });

  const injected: [string, boolean][] = [
    ['injected ENOSPC at write (short write, then ENOSPC)', false],
    ['injected ENOSPC at fdatasync (overcommitted writes)', true],
  ];
  for (const [name, atSync] of injected) {
    test(`${name}: nothing acknowledged lost; log resumes`, (t: TestContext) => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const capacity = 4 * MIB;
        const fs = new QuotaFs(new SimFs(), capacity, atSync);
        const result = runDiskFullScenario({
          fs, root: '/disk', fillerBytes: MIB, diskBytes: capacity, enospcAtSync: atSync, seed,
        });
        if (seed === 1) t.diagnostic(describeResult(result));
      }
    });
  }
});
