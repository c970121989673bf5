import {
  isProtocolError,
  isPrStoreError,
  type ProtocolErrorCode,
  type PrStoreErrorCode,
} from '@prserv/core';

/** How loudly a refused or failed request is logged. */
export type ErrorLogLevel = 'info' | 'warn' | 'error';

/** What the server does with an error raised while answering a request. */
export interface ErrorDisposition {
  /** The text of the `invoke-error` the client receives. */
  readonly wireMessage: string;
  /** A stable code for the log line: the error's own code, or `INTERNAL`. */
  readonly code: ProtocolErrorCode | PrStoreErrorCode | 'INTERNAL';
  readonly level: ErrorLogLevel;
  /** The log line's message. */
  readonly logMessage: 'bad request refused' | 'request failed';
  /** The error and its causes on one line, for the log only (never sent: it may name internals). */
  readonly causeChain: string;
}

/**
 * Log levels by code. A mistake of the client is `info` (the server is fine); a dependency that
 * is down or a full queue is `warn` (it heals by itself); anything else needs an operator.
 * Typed as total records, so a new code cannot be added without deciding its level here.
 */
const PROTOCOL_ERROR_LEVEL: Record<ProtocolErrorCode, ErrorLogLevel> = {
  BAD_HANDSHAKE: 'info',
  BAD_HEADER: 'info',
  MESSAGE_TOO_LARGE: 'info',
  MALFORMED_MESSAGE: 'info',
  UNKNOWN_METHOD: 'info',
  INVALID_PARAMS: 'info',
  DECODER_FAILED: 'info',
  INVALID_REQUEST: 'info',
};
const STORE_ERROR_LEVEL: Record<PrStoreErrorCode, ErrorLogLevel> = {
  INVALID_ARGUMENT: 'info',
  UPSTREAM_UNAVAILABLE: 'warn',
  DATABASE_UNAVAILABLE: 'warn',
  OVERLOADED: 'warn',
  STORE_LOCKED: 'error',
  STORE_CLOSED: 'error',
  STORE_NOT_FOUND: 'error',
  DATABASE_ERROR: 'error',
  DRIVER_MISSING: 'error',
  // The operator froze the package on purpose: the build asked for what a freeze forbids.
  PACKAGE_FROZEN: 'info',
};

/**
 * The one place an error becomes wire text and a log line. Protocol and argument errors name the
 * problem; store errors say what failed without SQL or driver internals (their messages are
 * written for clients); anything else is a bug and the client learns only that it happened.
 */
export function classifyError(error: unknown): ErrorDisposition {
  const causeChain = errorChain(error).join(' <- ');
  if (isProtocolError(error)) return disposition(error.message, error.code, PROTOCOL_ERROR_LEVEL[error.code], causeChain);
  if (isPrStoreError(error)) return disposition(error.message, error.code, STORE_ERROR_LEVEL[error.code], causeChain);
  return disposition('internal server error', 'INTERNAL', 'error', causeChain);
}

function disposition(
  wireMessage: string,
  code: ErrorDisposition['code'],
  level: ErrorLogLevel,
  causeChain: string,
): ErrorDisposition {
  return { wireMessage, code, level, logMessage: level === 'info' ? 'bad request refused' : 'request failed', causeChain };
}

/**
 * The messages of an error and its causes, outermost first, each once: what an operator needs to
 * see on one line (e.g. "cannot open the store" ← "connect ECONNREFUSED …"). A cause whose text
 * an outer message already quotes is left out.
 */
export function errorChain(error: unknown, depth = 4): string[] {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = error;
  // Walks at most `depth` causes and stops at one already seen: a cause chain can loop.
  for (let step = 0; current && step < depth && !seen.has(current); step += 1) {
    seen.add(current);
    // A cause that is neither an Error nor text (PGlite's file system errors) is told by the
    // error wrapping it; as text it would only read "[object Object]".
    if (step > 0 && !(current instanceof Error) && typeof current === 'object') break;
    const text = current instanceof Error ? current.message : String(current);
    if (!parts.some((part) => part.includes(text))) parts.push(text);
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts;
}
