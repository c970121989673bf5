/** Stable codes of errors raised while framing or parsing asyncrpc traffic. */
export const PROTOCOL_ERROR_CODES = [
  'BAD_HANDSHAKE',
  'BAD_HEADER',
  'MESSAGE_TOO_LARGE',
  'MALFORMED_MESSAGE',
  'UNKNOWN_METHOD',
  'INVALID_PARAMS',
  'DECODER_FAILED',
  'INVALID_REQUEST',
] as const;

/** One of {@link PROTOCOL_ERROR_CODES}. */
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/**
 * An error in what a peer sent: it crosses the wire as an `invoke-error` whose message is
 * this error's message, so the message must name the problem and never leak internals.
 */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  readonly code: ProtocolErrorCode;

  constructor(code: ProtocolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** True when `value` is a {@link ProtocolError}. */
export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
