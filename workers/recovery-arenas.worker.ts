/** Entry point of recovery's pre-faulting helper; the logic is in src/log/recovery-arenas.ts. */
import { workerData } from 'node:worker_threads';
import { runArenaHelper, type ArenaHelperInit } from '../src/log/recovery-arenas.js';

runArenaHelper(workerData as ArenaHelperInit);
