/** Stable codes of errors raised by the allocation engine and its stores. */
export const PR_STORE_ERROR_CODES = [
  'INVALID_ARGUMENT',
  'STORE_LOCKED',
  'STORE_CLOSED',
  'STORE_NOT_FOUND',
  'DATABASE_UNAVAILABLE',
  'DATABASE_ERROR',
  'UPSTREAM_UNAVAILABLE',
  'OVERLOADED',
  'DRIVER_MISSING',
  'PACKAGE_FROZEN',
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

/** A Node system error code of the socket (`ECONNREFUSED`, `ECONNRESET`, `ENOTFOUND`…). */
const SYSTEM_ERROR_CODE = /^E[A-Z]+$/;
/** A SQLSTATE: the server answered, and said why in five characters. */
const SQLSTATE = /^[0-9A-Z]{5}$/;
/**
 * SQLSTATE classes of a server that cannot serve now, whatever the request: 08 connection
 * exception, 53 insufficient resources (too many connections, out of memory, disk full), 57P
 * operator intervention (shutdown, restart).
 */
const UNAVAILABLE_SQLSTATE_CLASSES = ['08', '53', '57P'];

/**
 * True when a driver error means the database could not be reached or could not answer (worth a
 * retry later), false when it refused the statement or the error is a bug. Decided by the kind of
 * error, never by its message text:
 * - a system error of the socket (it has a `syscall`, or an errno-style code) is unavailable;
 * - an error the server reported carries a SQLSTATE, judged by its class. A write refused in a
 *   read-only transaction (25006) is refused, not unavailable: a read-only store's engine tried to
 *   write (a bug), or a writable store was pointed at a standby; neither heals by waiting;
 * - errors pg, pg-pool and PGlite raise themselves are plain `Error`s, and they raise them only when
 *   a statement cannot get an answer (connection terminated, connect timeout, client not
 *   queryable, database closed): unavailable;
 * - anything else (a `TypeError`, a `RangeError`…) is a bug, not an outage.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof PrStoreError) return error.code === 'DATABASE_UNAVAILABLE';
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if ('syscall' in error || (typeof code === 'string' && SYSTEM_ERROR_CODE.test(code))) return true;
  if (typeof code === 'string' && SQLSTATE.test(code)) {
    return UNAVAILABLE_SQLSTATE_CLASSES.some((sqlClass) => code.startsWith(sqlClass));
  }
  return Object.getPrototypeOf(error) === Error.prototype;
}

/** The SQLSTATE the database gave for `error` or for an error in its chain of causes, if any. */
export function sqlStateOf(error: unknown): string | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; current = current.cause, depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && SQLSTATE.test(code)) return code;
  }
  return undefined;
}

/** Wraps anything a database driver threw as a {@link PrStoreError}, keeping it as `cause`. */
export function toPrStoreError(error: unknown, action: string): PrStoreError {
  if (error instanceof PrStoreError) return error;
  return isDatabaseUnavailable(error)
    ? new PrStoreError('DATABASE_UNAVAILABLE', `database unavailable while trying to ${action}`, { cause: error })
    : new PrStoreError('DATABASE_ERROR', `database error while trying to ${action}`, { cause: error });
}
