import type { Socket } from 'node:net';
import {
  type DecodedFrame,
  encodeHeaders,
  encodeMessage,
  FrameDecoder,
  isProtocolError,
  isPrStoreError,
  parseRequest,
  PRSERV_PROTOCOL_NAME,
  PRSERV_PROTOCOL_VERSION,
  ProtocolError,
} from '@prserv/core';
import { type DispatchContext, dispatchRequest, invokeErrorBody, toInvokeErrorMessage } from './dispatch.js';
import type { ServerLogger } from './server-logger.js';

/** What a session needs from its server. */
export interface SessionOptions {
  readonly context: Omit<DispatchContext, 'generation'>;
  readonly maxMessageBytes: number;
  readonly logger: ServerLogger;
}

/**
 * One client connection: the hello, then requests answered strictly in order. Any bad input is
 * answered with an `invoke-error` naming the problem and the connection is closed; nothing of
 * a bad request reaches the store.
 */
export class ConnectionSession {
  readonly #socket: Socket;
  readonly #options: SessionOptions;
  readonly #decoder: FrameDecoder;
  readonly #context: DispatchContext;
  readonly #peer: string;
  readonly closed: Promise<void>;
  #greeted = false;
  #inFlight = 0;
  #tail: Promise<void> = Promise.resolve();
  #ending = false;
  #draining = false;

  constructor(socket: Socket, options: SessionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#decoder = new FrameDecoder({ preamble: 'client-hello', maxMessageBytes: options.maxMessageBytes });
    this.#context = { ...options.context, generation: 'unknown' };
    this.#peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('error', (error) => options.logger.debug({ peer: this.#peer, err: error.message }, 'connection error'));
  }

  /** Stops taking requests: closes now when idle, else after the request in flight is answered. */
  drain(): void {
    this.#draining = true;
    if (this.#inFlight === 0) this.#end();
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    if (this.#ending) return;
    let frames: DecodedFrame[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (error) {
      this.#refuse(error);
      return;
    }
    for (const frame of frames) {
      if (this.#ending) return;
      if (frame.type === 'hello') {
        if (!this.#greet(frame)) return;
      } else if (frame.type === 'message') {
        this.#enqueue(frame.message);
      }
    }
  }

  #greet(hello: Extract<DecodedFrame, { type: 'hello' }>): boolean {
    if (hello.protocol !== PRSERV_PROTOCOL_NAME || hello.version !== PRSERV_PROTOCOL_VERSION) {
      this.#refuse(
        new ProtocolError(
          'BAD_HANDSHAKE',
          `unsupported protocol ${JSON.stringify(`${hello.protocol} ${hello.version}`)}: this is a PR server, expected "${PRSERV_PROTOCOL_NAME} ${PRSERV_PROTOCOL_VERSION}"`,
        ),
      );
      return false;
    }
    this.#greeted = true;
    // asyncrpc: a client that asks for headers gets ours (none) and the empty line that ends them.
    if (hello.headers['needs-headers'] === 'true') this.#socket.write(encodeHeaders());
    return true;
  }

  #enqueue(message: unknown): void {
    this.#inFlight += 1;
    this.#tail = this.#tail.then(() => this.#answer(message));
  }

  async #answer(message: unknown): Promise<void> {
    if (this.#ending) return;
    const started = performance.now();
    let method = 'unknown';
    try {
      const request = parseRequest(message);
      method = request.method;
      const response = await dispatchRequest(request, this.#context);
      if (this.#ending) return;
      this.#socket.write(encodeMessage(response));
      this.#options.logger.debug(
        { peer: this.#peer, method, ms: Math.round((performance.now() - started) * 10) / 10 },
        'request',
      );
    } catch (error) {
      this.#refuse(error, method);
    } finally {
      this.#inFlight -= 1;
      if (this.#draining && this.#inFlight === 0) this.#end();
    }
  }

  /** Answers an invoke-error naming the problem, then closes the connection. */
  #refuse(error: unknown, method?: string): void {
    if (this.#ending) return;
    const message = toInvokeErrorMessage(error);
    const fields = { peer: this.#peer, method, code: errorCode(error), err: message };
    if (isProtocolError(error) || (isPrStoreError(error) && error.code === 'INVALID_ARGUMENT')) {
      this.#options.logger.info(fields, 'bad request refused');
    } else {
      this.#options.logger.error({ ...fields, cause: describeCause(error) }, 'request failed');
    }
    // Before the hello there is no agreed framing, but a JSON line is what any asyncrpc client reads.
    this.#socket.write(encodeMessage(invokeErrorBody(this.#greeted || !isProtocolError(error) ? message : message)));
    this.#end();
  }

  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#socket.end();
    // A peer that never reads must not hold the socket open forever.
    setTimeout(() => this.#socket.destroy(), 5_000).unref();
  }
}

function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function describeCause(error: unknown): string {
  let current: unknown = error;
  const parts: string[] = [];
  for (let depth = 0; current && depth < 4; depth += 1) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- ');
}
