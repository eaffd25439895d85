/**
 * The stage workers' failures while a replica is being created. `createReplica` starts the stages
 * one after another and waits for each to be ready; a stage started earlier may fail meanwhile
 * (a 'failed' message, an 'error', an exit), and the replica object that would listen for that
 * does not exist yet — an event with no listener is lost ('message', 'exit') or thrown at the
 * process ('error'). The watch listens on each worker from the moment it starts until detach(),
 * so such a failure fails the creation instead of yielding a replica with a dead stage.
 */
import type { EventEmitter } from 'node:events';
import { PaxlineError, revive, type ErrorShape } from './errors.js';

/** What the watch needs of a worker (a node:worker_threads Worker is an EventEmitter). */
export type WatchedWorker = Pick<EventEmitter, 'on' | 'off'>;

export class StartupWatch {
  private first: Error | null = null;
  private readonly unsubscribe: (() => void)[] = [];
  private rejectFailed: (e: Error) => void = () => undefined;
  private readonly failed: Promise<never>;

  constructor() {
    this.failed = new Promise<never>((_, reject) => { this.rejectFailed = reject; });
    this.failed.catch(() => undefined); // observed through wait() or `failure`
  }

  /** Watches `worker` (named `name` in messages) until detach(). */
  watch(worker: WatchedWorker, name: string): void {
    const onMessage = (m: { type?: string; error?: ErrorShape }): void => {
      if (m?.type === 'failed' && m.error !== undefined) this.fail(revive(m.error));
    };
    const onError = (e: Error): void => {
      const message = `${name} stage crashed during start: ${e.message}`;
      this.fail(new PaxlineError('PAXLINE_STAGE_FAILED', message));
    };
    const onExit = (code: number): void => {
      const message = `${name} stage exited with code ${code} during start`;
      this.fail(new PaxlineError('PAXLINE_STAGE_FAILED', message));
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    this.unsubscribe.push(() => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    });
  }

  /**
   * The next message of `type` from watched `worker`; rejects with the first failure of any
   * watched worker, or PAXLINE_STAGE_FAILED when none came within `timeoutMs`.
   */
  next<T>(worker: WatchedWorker, what: string, type: string, timeoutMs: number): Promise<T> {
    let off = (): void => undefined;
    const answer = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new PaxlineError('PAXLINE_STAGE_FAILED', `${what}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (m: { type?: string }): void => {
        if (m?.type === type) resolve(m as T);
      };
      worker.on('message', onMessage);
      off = () => {
        clearTimeout(timer);
        worker.off('message', onMessage);
      };
    });
    return Promise.race([answer, this.failed]).finally(off);
  }

  /** The first failure seen, or null. */
  get failure(): Error | null {
    return this.first;
  }

  /** Stops watching (the replica's own listeners take over, or the workers are being stopped). */
  detach(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private fail(e: Error): void {
    if (this.first !== null) return;
    this.first = e;
    this.rejectFailed(e);
  }
}
