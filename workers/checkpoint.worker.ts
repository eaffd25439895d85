/** Entry point of the checkpoint writer thread; the logic is in src/runtime/checkpoint-writer.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { runCheckpointWriter } from '../src/runtime/checkpoint-writer.js';
import { takeNice } from '../src/runtime/thread-nice.js';

takeNice((workerData as { nice?: number | null } | null)?.nice ?? null);
runCheckpointWriter(parentPort!);
