/** Stable codes of errors raised by the allocation engine and its stores. */
export const PR_STORE_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'STORE_LOCKED',
  'STORE_CLOSED',
  'DATABASE_UNAVAILABLE',
  'DATABASE_ERROR',
  'UPSTREAM_UNAVAILABLE',
  'OVERLOADED',
] as const;

/** One of {@link PR_STORE_ERROR_CODES}. */
export type PrStoreErrorCode = (typeof PR_STORE_ERROR_CODES)[number];

/**
 * A local error of the engine or its store. Its message is safe to show to a client: database
 * errors keep the driver's error as `cause` and never put SQL text in the message.
 */
export class PrStoreError extends Error {
  override readonly name = 'PrStoreError';
  readonly code: PrStoreErrorCode;

  constructor(code: PrStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `value` is a {@link PrStoreError}. */
export function isPrStoreError(value: unknown): value is PrStoreError {
  return value instanceof PrStoreError;
}

// Connection-level failures of pg and PGlite: the database cannot be reached right now.
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
// SQLSTATE classes 08 (connection exception) and 57P (operator intervention: shutdown, restart).
const UNAVAILABLE_SQLSTATE = /^(08|57P)/;

/** Wraps anything a database driver threw as a {@link PrStoreError}, keeping it as `cause`. */
export function toPrStoreError(error: unknown, action: string): PrStoreError {
  if (error instanceof PrStoreError) return error;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : '';
  const unavailable =
    (typeof code === 'string' && (UNAVAILABLE_ERRNOS.has(code) || UNAVAILABLE_SQLSTATE.test(code))) ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message);
  return unavailable
    ? new PrStoreError('DATABASE_UNAVAILABLE', `database unavailable while trying to ${action}`, { cause: error })
    : new PrStoreError('DATABASE_ERROR', `database error while trying to ${action}`, { cause: error });
}
