/**
 * StartupWatch (src/runtime/startup-watch.ts): a stage worker that fails while createReplica is
 * still starting later stages fails the creation — with the stage's own error for a 'failed'
 * message — and after detach() the watch no longer listens.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { StartupWatch } from '../src/runtime/startup-watch.js';

const LONG = 60_000;

test('a watched worker that posts failed while another stage starts rejects the wait with its error', async () => {
  const log = new EventEmitter();
  const apply = new EventEmitter();
  const watch = new StartupWatch();
  watch.watch(log, 'log');
  watch.watch(apply, 'apply');
  const waiting = watch.next(apply, 'apply stage', 'ready', LONG); // the log stage fails meanwhile
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
  await assert.rejects(watch.next(a, 'apply stage', 'never', LONG), (e: { code?: string; message?: string }) => e.code === 'PAXLINE_STAGE_FAILED' && /consensus stage exited with code 3/.test(e.message ?? ''));
  a.emit('error', new Error('later')); // the first failure is kept
  assert.match(watch.failure!.message, /code 3/);

  const c = new EventEmitter();
  const w2 = new StartupWatch();
  w2.watch(c, 'log');
  c.emit('error', new Error('worker crashed')); // handled: an 'error' with no listener would throw here
  assert.equal((w2.failure as { code?: string } | null)?.code, 'PAXLINE_STAGE_FAILED');
  assert.match(w2.failure!.message, /log stage crashed during start: worker crashed/);
});

test('next() resolves with the message asked for; times out; detach() removes every listener', async () => {
  const w = new EventEmitter();
  const watch = new StartupWatch();
  watch.watch(w, 'log');
  const recovered = watch.next<{ type: string; incarnation: number }>(w, 'log stage', 'recovered', LONG);
  w.emit('message', { type: 'progress' });
  w.emit('message', { type: 'recovered', incarnation: 7 });
  assert.equal((await recovered).incarnation, 7);
  assert.equal(w.listenerCount('message'), 1, 'only the watch listens once the answer came');
  await assert.rejects(watch.next(w, 'log stage', 'recovered', 10), { code: 'PAXLINE_STAGE_FAILED', message: 'log stage: no answer in 10 ms' });
  watch.detach();
  for (const event of ['message', 'error', 'exit']) assert.equal(w.listenerCount(event), 0, event);
  w.emit('exit', 1);
  assert.equal(watch.failure, null);
});
