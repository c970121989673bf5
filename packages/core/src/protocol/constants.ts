/** The protocol line a PR client opens with: `PRSERVICE 1.0` (BitBake `lib/prserv/client.py`). */
export const PRSERV_PROTOCOL_NAME = 'PRSERVICE';
/** The asyncrpc protocol version BitBake's PR clients announce. */
export const PRSERV_PROTOCOL_VERSION = '1.0';

/**
 * BitBake's `DEFAULT_MAX_CHUNK` (32 KiB, `lib/bb/asyncrpc/connection.py`): a JSON text shorter
 * than `MAX_CHUNK - 1` characters goes as one line, a longer one as a chunk stream of
 * pieces of `MAX_CHUNK - 1` characters.
 */
export const ASYNCRPC_MAX_CHUNK = 32 * 1024;

/** Default bound on one incoming message (a line, or a whole chunk stream): 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** The object key that announces a chunk stream. */
export const CHUNK_STREAM_KEY = 'chunk-stream';

/**
 * The longest delay Node's timers keep, in ms (2^31 − 1, about 24.8 days); a longer one fires
 * after 1 ms. Every timeout and wait a client or server takes is checked against it.
 */
export const MAX_TIMER_MS = 2_147_483_647;
