/**
 * NetError: the coded error the network layer throws. Code across workers matches on `code` (a
 * stable string, survives `postMessage` as a plain property), never on the message.
 *
 * Codes:
 *  - PAXLINE_BAD_FRAME: bytes from the wire are malformed (length, checksum, type tag, integer
 *    range, trailing bytes). Thrown by the frame decoder and the message decoder; the transport
 *    counts it and closes the connection the bytes came from.
 *  - PAXLINE_BAD_OPTION: a transport option is invalid; `field` names it (dotted path).
 *  - PAXLINE_BAD_ARGUMENT: a caller handed over something that cannot be encoded or sent (a
 *    number out of range, a recipient that is not a configured peer); `field` names it.
 */
export type NetErrorCode = 'PAXLINE_BAD_FRAME' | 'PAXLINE_BAD_OPTION' | 'PAXLINE_BAD_ARGUMENT';

export class NetError extends Error {
  readonly code: NetErrorCode;
  /** Option, argument or message field concerned, or null. */
  readonly field: string | null;

  constructor(code: NetErrorCode, message: string, field: string | null = null) {
    super(message);
    this.name = 'NetError';
    this.code = code;
    this.field = field;
  }
}

/** Out of line so decoders' hot paths stay one compare per check. */
export function badFrame(message: string): never {
  throw new NetError('PAXLINE_BAD_FRAME', `PAXLINE_BAD_FRAME: ${message}`);
}

export function badArgument(field: string, message: string): never {
  throw new NetError('PAXLINE_BAD_ARGUMENT', `PAXLINE_BAD_ARGUMENT: ${field} ${message}`, field);
}

export function badOption(field: string, message: string): never {
  throw new NetError('PAXLINE_BAD_OPTION', `PAXLINE_BAD_OPTION: ${field} ${message}`, field);
}
