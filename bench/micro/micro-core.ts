/**
 * Commit computation micro benchmark: the pure core (src/core/replica.ts) as a primary of three
 * members, in its steady state, one decree per iteration.
 *
 * Setup (untimed) drives a fresh core to primary through its public inputs only, as a driver
 * would: ticks until it prepares (pre-vote and catch-up off, so it prepares at its election
 * timeout), reports its promise durable, hands it one peer's empty phase-1 answer, and then
 * fills its pipeline (depth 32, the default) and runs it until every decree in flight is a full
 * batch.
 *
 * One iteration: propose 1,024 commands of 16 bytes (they queue: the window is full), report
 * every record so far durable (`persisted`), deliver both peers' `accepted` for the oldest decree
 * in flight — which chooses it, advances the commit point, and cuts the queued commands into the
 * next decree — and take the Ready (one commit record, one accept record, two accepts to send,
 * one decree to execute). That is the core's whole per-decree cost on the primary: queueing,
 * batch cutting, vote counting, the commit point, and building the Ready. It does NOT include
 * encoding, the log, the network or execution by a state machine (see the other benchmarks).
 *
 * The core keeps every decree in memory (there is no compaction yet), so the runner rebuilds it
 * (untimed) every REBUILD_EVERY_DECREES iterations to keep memory bounded.
 */
import { COVER_END, type Message, type Ready } from '../../src/core/types.js';
import { Replica } from '../../src/core/replica.js';
import type { MicroTask } from './micro-types.js';

const MEMBERS = [0, 1, 2] as const;
const SELF = 0;
const COMMANDS_PER_DECREE = 1024;
const COMMAND_BYTES = 16;
const TICKS_TO_PRIMARY_MAX = 100;
const PRIMING_DECREES = 64;
const REBUILD_EVERY_DECREES = 512;
const CONFIG = 1;
/** The core's default, stated so the priming below can rely on it. */
const PIPELINE_DEPTH = 32;

interface Primary {
  readonly core: Replica;
  readonly ballot: number;
  /** Decrees in flight, oldest first, and the next one to acknowledge. */
  readonly inflight: number[];
  inflightHead: number;
  lastSeq: number;
}

function fail(message: string): never {
  throw new Error(`core benchmark: ${message}`);
}

/** Notes the records a Ready asks to persist: new decrees in flight and the newest seq. */
function absorb(p: Primary, ready: Ready): void {
  for (const item of ready.persist) {
    if (item.record.type === 'accept') p.inflight.push(item.record.decree);
    p.lastSeq = item.seq;
  }
}

function electPrimary(): Primary {
  const core = new Replica({
    replicaId: SELF, members: MEMBERS, random: () => 0, preVote: false, catchUpBeforePrepare: false,
    pipelineDepth: PIPELINE_DEPTH,
  });
  for (let t = 0; t < TICKS_TO_PRIMARY_MAX && core.status().role !== 'preparing'; t++) core.tick();
  if (core.status().role !== 'preparing') fail('the core never started phase 1');
  const ballot = core.status().leaderBallot;
  const p: Primary = { core, ballot, inflight: [], inflightHead: 0, lastSeq: 0 };
  absorb(p, core.takeReady());
  core.persisted(p.lastSeq);
  // One peer's complete, empty phase-1 answer. `compactedUpTo: 0` (nothing compacted) is for
  // cores that compact their log; cores that do not ignore it — hence the assertion, which keeps
  // this file compiling against both.
  core.receive({
    type: 'prepareAccepted', from: 1, to: SELF, config: CONFIG, ballot, fromDecree: 1, coverFrom: 1,
    coverTo: COVER_END, compactedUpTo: 0, entries: [],
  } as Message);
  absorb(p, core.takeReady());
  if (core.status().role !== 'primary') fail(`the core is ${core.status().role}, not primary`);
  return p;
}

/** One decree's worth: propose, report durability, deliver the peers' votes, take the Ready. */
function commitOneDecree(p: Primary, commands: readonly Uint8Array[]): void {
  const core = p.core;
  for (const c of commands) {
    if (!core.propose(c).ok) fail('propose refused');
  }
  core.persisted(p.lastSeq);
  const decree = p.inflight[p.inflightHead++];
  if (decree === undefined) fail('no decree in flight');
  core.receive({ type: 'accepted', from: 1, to: SELF, config: CONFIG, ballot: p.ballot, decree });
  core.receive({ type: 'accepted', from: 2, to: SELF, config: CONFIG, ballot: p.ballot, decree });
  const ready = core.takeReady();
  if (ready.execute.length !== 1 || ready.execute[0]!.decree !== decree) {
    fail(`decree ${decree} not executed`);
  }
  absorb(p, ready);
}

function primedPrimary(commands: readonly Uint8Array[]): Primary {
  const p = electPrimary();
  // Fill the window: with nothing in flight each proposal becomes its own decree.
  for (let i = 0; i < PIPELINE_DEPTH; i++) {
    if (!p.core.propose(commands[i]!).ok) fail('propose refused while filling the window');
  }
  absorb(p, p.core.takeReady());
  if (p.inflight.length !== PIPELINE_DEPTH) {
    fail(`${p.inflight.length} decrees in flight, not ${PIPELINE_DEPTH}`);
  }
  for (let i = 0; i < PRIMING_DECREES; i++) commitOneDecree(p, commands);
  return p;
}

export function coreTask(): MicroTask {
  const commands: Uint8Array[] = [];
  for (let i = 0; i < COMMANDS_PER_DECREE; i++) {
    commands.push(new Uint8Array(COMMAND_BYTES).fill(i & 0xff));
  }
  let primary: Primary | null = null;
  let decrees = 0;
  const current = (): Primary => primary ?? fail('not set up');
  return {
    name: 'core commit 1 decree (1024×16 B commands, 3 members)', group: 'core', unit: 'decree',
    opsPerIteration: 1, bytesPerOp: COMMANDS_PER_DECREE * COMMAND_BYTES,
    setup: () => {
      primary = primedPrimary(commands);
      decrees = 0;
    },
    fn: () => commitOneDecree(current(), commands),
    afterEach: () => {
      if (++decrees % REBUILD_EVERY_DECREES === 0) primary = primedPrimary(commands);
    },
    teardown: () => {
      primary = null;
    },
  };
}
