/**
 * Request/response over a forked child's IPC channel (child_process.fork with
 * serialization 'advanced'), for the cluster benchmark's replica and load-generator processes.
 *
 *   parent → child   { kind: 'call', id, op, arg }
 *   child → parent   { kind: 'reply', id, ok: true, value } | { kind: 'reply', id, ok: false, error }
 *   child → parent   { kind: 'event', name, data }             (unsolicited: role changes, failures)
 *
 * Invariants: every call is answered exactly once (or rejected when the child exits first, or
 * after its timeout); a child whose IPC channel closes (its parent died or disconnected) exits at
 * once, so a crashed coordinator leaves no orphan replica behind.
 */
import { fork, type ChildProcess } from 'node:child_process';

export interface CallMessage { readonly kind: 'call'; readonly id: number; readonly op: string; readonly arg: unknown }
export type ReplyMessage =
  | { readonly kind: 'reply'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly kind: 'reply'; readonly id: number; readonly ok: false; readonly error: string };
export interface EventMessage { readonly kind: 'event'; readonly name: string; readonly data: unknown }

/** Child side: answers calls with `handlers[op](arg)`; exits when the parent goes away. */
export function serveIpc(handlers: Record<string, (arg: unknown) => unknown>): void {
  if (process.send === undefined) throw new Error('this script must be started with child_process.fork (no IPC channel)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: CallMessage) => {
    if (m.kind !== 'call') return;
    const h = handlers[m.op];
    const reply = (r: ReplyMessage): void => {
      if (process.connected) process.send!(r);
    };
    if (h === undefined) {
      reply({ kind: 'reply', id: m.id, ok: false, error: `unknown op '${m.op}'` });
      return;
    }
    Promise.resolve()
      .then(() => h(m.arg))
      .then(
        (value) => reply({ kind: 'reply', id: m.id, ok: true, value }),
        (e: unknown) => reply({ kind: 'reply', id: m.id, ok: false, error: e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e) }),
      );
  });
}

/** Child side: an unsolicited event to the parent. */
export function emitEvent(name: string, data: unknown): void {
  if (process.connected) process.send!({ kind: 'event', name, data } satisfies EventMessage);
}

/** Bytes of a child's stdout+stderr kept for error messages. */
const OUTPUT_TAIL_CHARS = 4000;

/**
 * Node flags every benchmark process (replicas, load generators, the profiled primary) runs with:
 * a 64 MiB semi-space, so the young generation is scavenged ~4× less often under the
 * per-command garbage of hundreds of thousands of operations a second (profiles/OPTIMIZATIONS.md
 * entry 13: −10 to −20 % CPU per operation), fixed at that size from the start (min = max): left
 * to grow, the semi-spaces of a process's four isolates grew RSS by 20–35 % over a 5-minute soak
 * (entry 17). V8 flags are per process, so the stage workers get them too. An application
 * embedding paxline chooses its own flags: README "Performance" says which.
 */
export const BENCH_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=64', '--max-semi-space-size=64'];

/** Parent side: one forked child process. */
export class ChildHandle {
  readonly child: ChildProcess;
  private nextId = 0;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private outputTail = '';
  private exitInfo: string | null = null;
  readonly exited: Promise<void>;

  /** `extraExecArgv`: node flags for this child only (bench/profile passes --cpu-prof here). */
  constructor(
    readonly name: string, script: string, onEvent: (name: string, data: unknown) => void,
    extraExecArgv: readonly string[] = [],
  ) {
    // The parent's node flags are inherited (e.g. --cpu-prof for profiling), except those that
    // only make sense for an inline script.
    const execArgv = [...process.execArgv.filter((a) => !a.startsWith('--input-type')), ...BENCH_NODE_FLAGS, ...extraExecArgv];
    this.child = fork(script, [], { serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv });
    const keep = (b: Buffer): void => {
      this.outputTail = (this.outputTail + b.toString()).slice(-OUTPUT_TAIL_CHARS);
    };
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.child.on('message', (m: ReplyMessage | EventMessage) => {
      if (m.kind === 'event') {
        onEvent(m.name, m.data);
        return;
      }
      const c = this.calls.get(m.id);
      if (c === undefined) return;
      this.calls.delete(m.id);
      clearTimeout(c.timer);
      if (m.ok) c.resolve(m.value);
      else c.reject(new Error(`${this.name}: ${m.error}`));
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = `exited (${signal ?? code})`;
        const err = new Error(`${this.name} ${this.exitInfo}${this.outputTail ? `; its output ended with:\n${this.outputTail}` : ''}`);
        for (const c of this.calls.values()) {
          clearTimeout(c.timer);
          c.reject(err);
        }
        this.calls.clear();
        resolve();
      });
    });
    this.child.on('error', () => { /* 'exit' follows, or calls time out */ });
  }

  get alive(): boolean {
    return this.exitInfo === null;
  }

  /** The last few KB the child printed (for error messages). */
  get output(): string {
    return this.outputTail;
  }

  call<T>(op: string, arg: unknown = null, timeoutMs = 30_000): Promise<T> {
    if (!this.alive) return Promise.reject(new Error(`${this.name} ${this.exitInfo}: cannot call '${op}'\n${this.outputTail}`));
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`${this.name}: '${op}' not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ kind: 'call', id, op, arg } satisfies CallMessage);
    });
  }

  /** SIGKILL unless already gone; resolves once the process has exited. */
  async kill(): Promise<void> {
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }
}
