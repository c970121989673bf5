import type { Socket } from 'node:net';
import { type DecodedFrame, encodeClientHello, encodeMessage, FrameDecoder, isProtocolError } from '@prserv/core/protocol';
import { PrClientError } from './client-errors.js';
import { type ConnectionOptions, openSocket } from './open-socket.js';
import type { ServerAddress } from './server-address.js';

export type { ConnectionOptions, SocketFactory } from './open-socket.js';

interface Pending {
  resolve(message: unknown): void;
  reject(error: Error): void;
}

/**
 * One asyncrpc connection to a PR server: it sends the `PRSERVICE 1.0` hello, then carries one
 * request at a time and matches each response to it (the protocol has no request ids).
 */
export class AsyncRpcConnection {
  readonly #socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #waiting: Pending[] = [];
  #failure: PrClientError | undefined;
  #closedByUser = false;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(socket: Socket, maxMessageBytes: number | undefined) {
    this.#socket = socket;
    this.#decoder = new FrameDecoder({ preamble: 'none', maxMessageBytes });
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => this.#fail(new PrClientError('CONNECTION_LOST', `connection lost: ${error.message}`, { cause: error })));
    socket.on('close', () => this.#fail(new PrClientError('CONNECTION_LOST', 'the server closed the connection')));
  }

  /** Connects and sends the hello. Rejects with `CONNECT_FAILED`, `TIMEOUT` or `ABORTED`. */
  static async open(address: ServerAddress, options: ConnectionOptions): Promise<AsyncRpcConnection> {
    const socket = await openSocket(address, options);
    socket.write(encodeClientHello());
    return new AsyncRpcConnection(socket, options.maxMessageBytes);
  }

  /** True once the connection failed or was closed; open a new one then. */
  get closed(): boolean {
    return this.#failure !== undefined;
  }

  /**
   * Sends one message and resolves with the server's response. A timeout or abort spoils the
   * connection (a late answer would be taken for the next request's), so it is closed.
   */
  request(message: unknown, options: { timeoutMs: number; signal?: AbortSignal }): Promise<unknown> {
    // The time allowed counts from the call, including the wait behind earlier requests.
    const deadline = Date.now() + options.timeoutMs;
    const run = () => this.#exchange(message, deadline, options.timeoutMs, options.signal);
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    // A request still queued behind others ends on its deadline or abort too; when its turn
    // comes, #exchange sees that and sends nothing.
    return new Promise((resolve, reject) => {
      const stop = (error: PrClientError) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      const onAbort = () => stop(new PrClientError('ABORTED', 'request aborted', { cause: options.signal?.reason }));
      const timer = setTimeout(
        () => stop(new PrClientError('TIMEOUT', `no answer from the PR server within ${options.timeoutMs} ms`)),
        Math.max(deadline - Date.now(), 0),
      );
      options.signal?.addEventListener('abort', onAbort, { once: true });
      result.then(
        (value) => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error: Error) => stop(error as PrClientError),
      );
    });
  }

  /** Closes the socket; pending requests fail with `CLOSED`. */
  close(): void {
    this.#closedByUser = true;
    this.#fail(new PrClientError('CLOSED', 'the client closed the connection'));
  }

  /**
   * Closes the socket after the server refused a request (it closes its side too); requests
   * queued behind fail as CONNECTION_LOST, so callers may retry them on a new connection.
   */
  discard(reason: string): void {
    this.#fail(new PrClientError('CONNECTION_LOST', reason));
  }

  #exchange(message: unknown, deadline: number, timeoutMs: number, signal: AbortSignal | undefined): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#failure) {
        // Never sent: safe to send again on a new connection, whatever spoiled this one.
        reject(
          this.#failure.code === 'CLOSED' && this.#closedByUser
            ? this.#failure
            : new PrClientError('CONNECTION_LOST', `request not sent: ${this.#failure.message}`, { cause: this.#failure }),
        );
        return;
      }
      if (signal?.aborted) {
        reject(new PrClientError('ABORTED', 'request aborted', { cause: signal.reason }));
        return;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        reject(new PrClientError('TIMEOUT', `no answer from the PR server within ${timeoutMs} ms`));
        return;
      }
      const finish = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const pending: Pending = {
        resolve: (value) => {
          finish();
          resolve(value);
        },
        reject: (error) => {
          finish();
          reject(error);
        },
      };
      // Without request ids a late answer would be taken for the next request's, so the connection
      // is dropped; requests behind this one fail as CONNECTION_LOST, which callers may retry.
      const onAbort = () => {
        pending.reject(new PrClientError('ABORTED', 'request aborted', { cause: signal?.reason }));
        this.#fail(new PrClientError('CONNECTION_LOST', 'connection dropped after another request was aborted'));
      };
      const timer = setTimeout(() => {
        pending.reject(new PrClientError('TIMEOUT', `no answer from the PR server within ${timeoutMs} ms`));
        this.#fail(new PrClientError('CONNECTION_LOST', 'connection dropped after another request timed out'));
      }, remaining);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(pending);
      this.#socket.write(encodeMessage(message));
    });
  }

  #receive(chunk: Buffer): void {
    let frames: DecodedFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      const detail = isProtocolError(error) ? error.message : String(error);
      this.#fail(new PrClientError('PROTOCOL', `the server sent an invalid message: ${detail}`, { cause: error }));
      return;
    }
    for (const frame of frames) {
      const pending = this.#waiting.shift();
      if (!pending) {
        this.#fail(new PrClientError('PROTOCOL', 'the server sent a message nobody asked for'));
        return;
      }
      if (frame.type === 'message') pending.resolve(frame.message);
    }
  }

  #fail(error: PrClientError): void {
    if (this.#failure) return;
    this.#failure = error;
    this.#socket.destroy();
    for (const pending of this.#waiting.splice(0)) pending.reject(error);
  }
}
