/** Entry point of the checkpoint writer thread; the logic is in src/runtime/checkpoint-writer.ts. */
import { parentPort, workerData } from 'node:worker_threads';
import { runCheckpointWriter, type CheckpointStalls } from '../src/runtime/checkpoint-writer.js';
import { takeNice } from '../src/runtime/thread-nice.js';

const data = workerData as { nice?: number | null; stalls?: CheckpointStalls | null } | null;
takeNice(data?.nice ?? null);
runCheckpointWriter(parentPort!, data?.stalls ?? null);
