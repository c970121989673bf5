import { ConnectionSession } from './connection-session.js';
import { JsonRpcSession } from './json-rpc-session.js';
import { peerName, type ServedConnection, type SessionOptions, type SessionSocket } from './session-options.js';

const OPEN_BRACE = 0x7b;

/**
 * Serves a new connection in the protocol its first byte shows: `{` opens a JSON-RPC request
 * (docs/protocol.md §11), anything else is BitBake's asyncrpc hello (`PRSERVICE 1.0`).
 */
export function serveConnection(socket: SessionSocket, options: SessionOptions): ServedConnection {
  return new FirstByteSniffer(socket, options);
}

class FirstByteSniffer implements ServedConnection {
  readonly closed: Promise<void>;
  readonly #socket: SessionSocket;
  #session: ServedConnection | undefined;

  constructor(socket: SessionSocket, options: SessionOptions) {
    this.#socket = socket;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    const connectedAt = performance.now();
    // The hello's time runs from the connection, not from its first byte.
    const silence = setTimeout(() => {
      options.logger.info({ peer: peerName(socket) }, 'no hello in time; connection dropped');
      socket.destroy();
    }, options.handshakeTimeoutMs).unref();
    socket.once('close', () => clearTimeout(silence));
    // Until a session takes the socket, its errors (a reset before the first byte) are ours.
    socket.on('error', (error) => {
      if (!this.#session) options.logger.debug({ peer: peerName(socket), err: error.message }, 'connection error');
    });
    // A client that leaves before saying anything is owed nothing.
    const leftSilently = () => socket.destroy();
    socket.once('end', leftSilently);
    socket.once('data', (first: Buffer) => {
      socket.off('end', leftSilently);
      clearTimeout(silence);
      if (first[0] === OPEN_BRACE) {
        this.#session = new JsonRpcSession(socket, options, first);
      } else {
        const left = Math.max(1, options.handshakeTimeoutMs - (performance.now() - connectedAt));
        this.#session = new ConnectionSession(socket, { ...options, handshakeTimeoutMs: left }, first);
      }
    });
  }

  drain(): void {
    // Nothing was received, so nothing is owed.
    if (this.#session) this.#session.drain();
    else this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
