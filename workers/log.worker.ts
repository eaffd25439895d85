/** Entry point of the log-fsync stage; the logic is in src/runtime/log-stage.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { runLogStage, type LogStageInit } from '../src/runtime/log-stage.js';

runLogStage(workerData as LogStageInit, parentPort!);
