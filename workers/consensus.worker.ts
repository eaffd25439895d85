/** Entry point of the network + consensus stage; the logic is in src/runtime/consensus-stage.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { errorShape } from '../src/runtime/errors.js';
import { runConsensusStage, type ConsensusStageInit } from '../src/runtime/consensus-stage.js';

runConsensusStage(workerData as ConsensusStageInit, parentPort!).catch((e: unknown) => {
  parentPort!.postMessage({ type: 'failed', error: errorShape(e) });
});
