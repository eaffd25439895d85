/** Entry point of the checkpoint writer thread; the logic is in src/runtime/checkpoint-writer.ts. */
import { parentPort } from 'node:worker_threads';
import { runCheckpointWriter } from '../src/runtime/checkpoint-writer.js';

runCheckpointWriter(parentPort!);
