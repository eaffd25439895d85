/**
 * KvError: the coded error of the key-value service (state machine, client protocol, client).
 * Code matches on `code` (a stable string), never on the message. Once a project-wide
 * `PaxlineError` base exists this class should extend it; the codes stay as they are.
 *
 * Codes raised here:
 *  - PAXLINE_BAD_OPTION: an option is missing or invalid; `field` names it.
 *  - PAXLINE_INVALID_ARGUMENT: a call argument is invalid (key or value too long, not a string).
 *  - PAXLINE_TIMEOUT: a call did not complete within its timeout and certainly had no effect
 *    (a read, or a command that no replica can have proposed).
 *  - PAXLINE_OUTCOME_UNKNOWN: a command did not complete within its timeout and may have run.
 *  - PAXLINE_BUSY: the client already has its maximum number of calls waiting.
 *  - PAXLINE_CLOSED: the client or server was closed while the call was pending.
 *  - PAXLINE_KV_STATE_CORRUPT: loadState was given bytes that are not a saved KV state.
 *  - PAXLINE_KV_BAD_COMMAND / PAXLINE_KV_STALE_SEQ / PAXLINE_KV_TOO_MANY_PENDING: the state
 *    machine answered with an error result (see kv-codec.ts).
 *  - PAXLINE_PROTOCOL: a peer sent a frame this build cannot read.
 *  Codes relayed from a replica (PAXLINE_NOT_PRIMARY, PAXLINE_SHUTTING_DOWN, ...) keep their code.
 */
export class KvError extends Error {
  readonly code: string;
  /** The option or argument concerned, for PAXLINE_BAD_OPTION / PAXLINE_INVALID_ARGUMENT. */
  readonly field: string | null;

  constructor(code: string, message: string, field: string | null = null, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'KvError';
    this.code = code;
    this.field = field;
  }
}

/** The `code` of an error-like value, or null when it carries none. */
export function errorCode(err: unknown): string | null {
  if (typeof err !== 'object' || err === null) return null;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : null;
}
