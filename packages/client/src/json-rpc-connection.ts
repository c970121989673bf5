import type { Socket } from 'node:net';
import { encodeJsonRpcRequest, FrameDecoder, isProtocolError, parseJsonRpcResponse } from '@prserv/core/protocol';
import { InvokeError, PrClientError } from './client-errors.js';
import { type ConnectionOptions, openSocket } from './open-socket.js';
import type { ServerAddress } from './server-address.js';

interface Pending {
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/**
 * One connection speaking prserv's JSON-RPC envelope (docs/protocol.md §11). Requests carry ids,
 * so any number may be in flight at once and answers may come back in any order; a request that
 * times out or is aborted is simply forgotten, and the connection carries on.
 */
export class JsonRpcConnection {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: PrClientError | undefined;

  private constructor(socket: Socket, maxMessageBytes: number | undefined) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder({ preamble: 'none', maxMessageBytes, chunkStreams: false });
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(new PrClientError('CONNECTION_LOST', `connection lost: ${error.message}`, { cause: error })));
    socket.on('close', () => this.#fail(new PrClientError('CONNECTION_LOST', 'the server closed the connection')));
  }

  /** Connects. Rejects with `CONNECT_FAILED`, `TIMEOUT` or `ABORTED`. */
  static async open(address: ServerAddress, options: ConnectionOptions): Promise<JsonRpcConnection> {
    return new JsonRpcConnection(await openSocket(address, options), options.maxMessageBytes);
  }

  /** True once the connection failed or was closed; open a new one then. */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Sends one request and resolves with its result; an error answer rejects with an
   * {@link InvokeError} carrying the server's code.
   */
  call(method: string, params: Record<string, unknown>, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#failure) {
        reject(new PrClientError('CONNECTION_LOST', `request not sent: ${this.#failure.message}`, { cause: this.#failure }));
        return;
      }
      if (options.signal?.aborted) {
        reject(new PrClientError('ABORTED', 'request aborted', { cause: options.signal.reason }));
        return;
      }
      const id = this.#nextId++;
      const settle = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        this.#pending.delete(id);
      };
      const onAbort = () => {
        settle();
        reject(new PrClientError('ABORTED', 'request aborted', { cause: options.signal?.reason }));
      };
      const timer = setTimeout(() => {
        settle();
        reject(new PrClientError('TIMEOUT', `no answer from the PR server within ${options.timeoutMs} ms`));
      }, options.timeoutMs);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        resolve: (result) => {
          settle();
          resolve(result);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      this.#socket.write(encodeJsonRpcRequest(id, method, params));
    });
  }

  /** Closes the socket; requests in flight fail with `CLOSED`. */
  close(): void {
    this.#fail(new PrClientError('CLOSED', 'the client closed the connection'));
  }

  #receive(chunk: Buffer): void {
    try {
      for (const frame of this.#decoder.push(chunk)) {
        if (frame.type !== 'message') continue;
        const response = parseJsonRpcResponse(frame.message);
        if (response.id === null) {
          // Only a line the server could not read at all is answered without an id; it closes next.
          const reason = response.error ? `${response.error.code}: ${response.error.message}` : 'an answer without id';
          this.#fail(new PrClientError('PROTOCOL', `the server refused the connection's input: ${reason}`));
          return;
        }
        // An id nobody waits for belongs to a request that timed out or was aborted.
        const pending = typeof response.id === 'number' ? this.#pending.get(response.id) : undefined;
        if (!pending) continue;
        if (response.error) pending.reject(new InvokeError(response.error.message, { serverCode: response.error.code }));
        else pending.resolve(response.result);
      }
    } catch (error) {
      const detail = isProtocolError(error) ? error.message : String(error);
      this.#fail(new PrClientError('PROTOCOL', `the server sent an invalid message: ${detail}`, { cause: error }));
    }
  }

  #fail(error: PrClientError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    for (const pending of [...this.#pending.values()]) pending.reject(error);
    this.#pending.clear();
  }
}
