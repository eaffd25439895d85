/**
 * Coded errors of the runtime. The `code` is the stable part callers match on; it survives
 * postMessage (the stages rebuild errors from { code, message, ... } on the other side).
 */
export type PaxlineErrorCode =
  | 'PAXLINE_NOT_PRIMARY'
  | 'PAXLINE_OUTCOME_UNKNOWN'
  | 'PAXLINE_BUSY'
  | 'PAXLINE_SHUTTING_DOWN'
  | 'PAXLINE_TIMEOUT'
  | 'PAXLINE_BAD_OPTION'
  | 'PAXLINE_DATA_DIR_EMPTY'
  | 'PAXLINE_DATA_DIR_MISMATCH'
  | 'PAXLINE_STAGE_FAILED'
  | 'PAXLINE_STATE_MACHINE';

export class PaxlineError extends Error {
  /** For PAXLINE_NOT_PRIMARY: the primary's replica id when known. */
  readonly primary?: number;
  /** For PAXLINE_BAD_OPTION: the option's name. */
  readonly field?: string;

  constructor(
    readonly code: PaxlineErrorCode,
    message: string,
    extra: { readonly primary?: number; readonly field?: string } = {},
  ) {
    super(message);
    this.name = 'PaxlineError';
    if (extra.primary !== undefined) this.primary = extra.primary;
    if (extra.field !== undefined) this.field = extra.field;
  }
}

/** A plain object that crosses postMessage and becomes a PaxlineError again with `revive`. */
export interface ErrorShape {
  readonly code: string;
  readonly message: string;
  readonly primary?: number;
  readonly field?: string;
}

export function errorShape(e: unknown): ErrorShape {
  const err = e as { code?: unknown; message?: unknown; primary?: unknown; field?: unknown; stack?: unknown };
  const shape: { code: string; message: string; primary?: number; field?: string } = {
    code: typeof err?.code === 'string' ? err.code : 'PAXLINE_STAGE_FAILED',
    message: typeof err?.message === 'string' ? err.message : String(e),
  };
  if (typeof err?.primary === 'number') shape.primary = err.primary;
  if (typeof err?.field === 'string') shape.field = err.field;
  return shape;
}

export function revive(shape: ErrorShape): Error {
  const e = new Error(shape.message) as Error & { code: string; primary?: number; field?: string };
  e.name = 'PaxlineError';
  e.code = shape.code;
  if (shape.primary !== undefined) e.primary = shape.primary;
  if (shape.field !== undefined) e.field = shape.field;
  return e;
}

/** An error shape as ring-message bytes (UTF-8 JSON), and back as an Error. */
export function errorShapeBytes(shape: ErrorShape): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(shape));
}

export function reviveBytes(bytes: Uint8Array): Error {
  return revive(JSON.parse(new TextDecoder().decode(bytes)) as ErrorShape);
}

export function badOption(field: string, message: string): PaxlineError {
  return new PaxlineError('PAXLINE_BAD_OPTION', `options.${field}: ${message}`, { field });
}
