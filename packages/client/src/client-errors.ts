/** Stable codes of {@link PrClientError}. */
export const PR_CLIENT_ERROR_CODES = [
  'INVALID_ADDRESS',
  'CONNECT_FAILED',
  'CONNECTION_LOST',
  'TIMEOUT',
  'ABORTED',
  'PROTOCOL',
  'CLOSED',
  'INVALID_OPTION',
] as const;

/** One of {@link PR_CLIENT_ERROR_CODES}. */
export type PrClientErrorCode = (typeof PR_CLIENT_ERROR_CODES)[number];

/**
 * A local failure of the client: the server could not be reached, answered nonsense, or took too
 * long; or (`INVALID_OPTION`) an option it was given cannot be used.
 */
export class PrClientError extends Error {
  override readonly name = 'PrClientError';
  readonly code: PrClientErrorCode;

  constructor(code: PrClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/**
 * The server refused the request with `{"invoke-error": {"message": …}}` (BitBake's
 * `InvokeError`). The message is the server's. Never retried: the same request would fail again.
 */
export class InvokeError extends Error {
  override readonly name = 'InvokeError';
  readonly code = 'INVOKE_ERROR' as const;
  /**
   * The server's stable code for the refusal (`INVALID_PARAMS`, `DATABASE_UNAVAILABLE`, …), when
   * the protocol carries one: the JSON-RPC envelope does, asyncrpc does not.
   */
  readonly serverCode: string | undefined;

  constructor(message: string, options?: { serverCode?: string; cause?: unknown }) {
    super(message, options);
    this.serverCode = options?.serverCode;
  }
}

/** True when `value` is a {@link PrClientError}. */
export function isPrClientError(value: unknown): value is PrClientError {
  return value instanceof PrClientError;
}

/** True when `value` is an {@link InvokeError}. */
export function isInvokeError(value: unknown): value is InvokeError {
  return value instanceof InvokeError;
}
