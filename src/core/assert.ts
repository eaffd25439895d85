/**
 * Assertions that stay on in production. A failed assertion is a bug in paxline (or a corrupted
 * process), never an expected outcome: it throws `AssertionFailure`, which nothing may catch and
 * continue from. The failing branch lives in a separate function so the hot path is one compare.
 */
export class AssertionFailure extends Error {
  readonly code = 'PAXLINE_ASSERTION';
  constructor(message: string) {
    super(message);
    this.name = 'AssertionFailure';
  }
}

function fail(message: string): never {
  throw new AssertionFailure(message);
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) fail(message);
}
