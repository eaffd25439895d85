/** Entry point of the apply stage; the logic is in src/runtime/apply-stage.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { errorShape } from '../src/runtime/errors.js';
import { runApplyStage, type ApplyStageInit } from '../src/runtime/apply-stage.js';

runApplyStage(workerData as ApplyStageInit, parentPort!).catch((e: unknown) => {
  parentPort!.postMessage({ type: 'failed', error: errorShape(e) });
});
