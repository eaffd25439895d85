/** Test helpers: free ports (shared with the CLI), and waiting for a condition. */
export { freePorts } from '../../src/util/free-ports.js';


/** Polls `check` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function eventually<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
