/**
 * StartupWatch (src/runtime/startup-watch.ts): a stage worker that fails while createReplica is
 * still starting later stages fails the creation — with the stage's own error for a 'failed'
 * message — and after detach() the watch no longer listens.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { StartupWatch } from '../src/runtime/startup-watch.js';

const never = new Promise<never>(() => undefined);

test('a watched worker that posts failed while another stage starts rejects the wait with its error', async () => {
  const log = new EventEmitter();
  const watch = new StartupWatch();
  watch.watch(log, 'log');
  const waiting = watch.wait(never); // e.g. the apply stage's "ready"
  log.emit('message', { type: 'failed', error: { code: 'PAXLINE_LOG_IO', message: 'disk gone' } });
  await assert.rejects(waiting, { code: 'PAXLINE_LOG_IO', message: 'disk gone' });
  assert.equal((watch.failure as { code?: string } | null)?.code, 'PAXLINE_LOG_IO');
});

test('an exit or an error event fails the start; other messages do not', async () => {
  const a = new EventEmitter();
  const b = new EventEmitter();
  const watch = new StartupWatch();
  watch.watch(a, 'apply');
  watch.watch(b, 'consensus');
  a.emit('message', { type: 'ready' });
  assert.equal(watch.failure, null);
  b.emit('exit', 3);
  await assert.rejects(watch.wait(never), (e: { code?: string; message?: string }) => e.code === 'PAXLINE_STAGE_FAILED' && /consensus stage exited with code 3/.test(e.message ?? ''));
  a.emit('error', new Error('later')); // the first failure is kept
  assert.match(watch.failure!.message, /code 3/);

  const c = new EventEmitter();
  const w2 = new StartupWatch();
  w2.watch(c, 'log');
  c.emit('error', new Error('worker crashed')); // handled: an 'error' with no listener would throw here
  assert.equal((w2.failure as { code?: string } | null)?.code, 'PAXLINE_STAGE_FAILED');
  assert.match(w2.failure!.message, /log stage crashed during start: worker crashed/);
});

test('a wait settles with its own value when nothing failed; detach() removes every listener', async () => {
  const w = new EventEmitter();
  const watch = new StartupWatch();
  watch.watch(w, 'log');
  assert.equal(await watch.wait(Promise.resolve(7)), 7);
  watch.detach();
  for (const event of ['message', 'error', 'exit']) assert.equal(w.listenerCount(event), 0, event);
  w.emit('exit', 1);
  assert.equal(watch.failure, null);
});
