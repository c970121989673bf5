import {
  type DecodedFrame,
  encodeHeaders,
  encodeMessage,
  FrameDecoder,
  isPrMethod,
  parseRequest,
  PRSERV_PROTOCOL_NAME,
  PRSERV_PROTOCOL_VERSION,
  ProtocolError,
} from '@prserv/core';
import { type DispatchContext, dispatchRequest, invokeErrorBody } from './dispatch.js';
import { ConnectionPace } from './connection-pace.js';
import { classifyError } from './error-policy.js';
import { attachSession, clientAddress, peerName, type ServedConnection, type SessionOptions, type SessionSocket } from './session-options.js';

export type { SessionOptions, SessionSocket } from './session-options.js';

/**
 * Requests read ahead of the one being answered. Past it the socket stops being read, so a client
 * that pipelines without reading answers costs bounded memory (TCP pushes back on it).
 */
const MAX_QUEUED_REQUESTS = 16;
/** After closing our side on an error, how long a peer may take to read the invoke-error. */
const LINGER_MS = 5_000;

/**
 * One client connection: the hello, then requests answered strictly in order. Any bad input is
 * answered with an `invoke-error` naming the problem and the connection is closed; nothing of
 * a bad request reaches the store.
 */
export class ConnectionSession implements ServedConnection {
  readonly #socket: SessionSocket;
  readonly #options: SessionOptions;
  readonly #decoder: FrameDecoder;
  readonly #context: DispatchContext;
  readonly #peer: string;
  readonly closed: Promise<void>;
  readonly #handshakeTimer: NodeJS.Timeout;
  readonly #pace: ConnectionPace;
  #greeted = false;
  readonly #logRequests: boolean;
  #requestNumber = 0;
  #queued = 0;
  /** Requests received and not yet being answered, oldest first; a refusal takes its turn too. */
  readonly #waiting: (unknown | Refusal)[] = [];
  #answering = false;
  #ending = false;
  #draining = false;
  /** Set once the input turned out bad: nothing after it is read. */
  #refusing = false;

  /** `firstBytes`: what was read from the socket before the session took it over. */
  constructor(socket: SessionSocket, options: SessionOptions, firstBytes?: Buffer) {
    this.#socket = socket;
    this.#options = options;
    this.#decoder = new FrameDecoder({ preamble: 'client-hello', maxMessageBytes: options.maxMessageBytes });
    this.#context = { ...options.context, generation: 'unknown', client: clientAddress(socket) };
    this.#peer = peerName(socket);
    this.#pace = new ConnectionPace(socket, options, this.#decoder, this.#peer, () => this.#end({ linger: false }));
    this.#logRequests = options.logger.isLevelEnabled?.('debug') ?? true;
    this.closed = attachSession(socket, options.logger, this.#peer, (chunk) => this.#receive(chunk), () => this.drain());
    this.#handshakeTimer = setTimeout(() => {
      options.logger.info({ peer: this.#peer }, 'no hello in time; connection dropped');
      socket.destroy();
    }, options.handshakeTimeoutMs).unref();
    socket.once('close', () => clearTimeout(this.#handshakeTimer));
    if (firstBytes) this.#receive(firstBytes);
  }

  /**
   * Stops taking requests: closes now when idle, else after the requests already received are
   * answered. Nothing more is read, so a client that keeps pipelining cannot hold the drain open.
   */
  drain(): void {
    this.#draining = true;
    this.#pauseReading();
    if (this.#queued === 0) this.#end({ linger: false });
  }

  /** Drops the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    if (this.#ending || this.#refusing) return;
    const { frames, error } = this.#decoder.decode(chunk);
    for (const frame of frames) {
      if (this.#ending) return;
      if (frame.type === 'hello') {
        if (!this.#greet(frame)) return;
      } else if (frame.type === 'message') {
        this.#enqueue(frame.message);
      }
    }
    if (error) {
      // In turn: the requests before the bad input are answered first, then the refusal.
      this.#refusing = true;
      this.#enqueue(new Refusal(error));
      return;
    }
    if (this.#greeted) {
      this.#pace.watchPartialRequest(frames.length > 0);
      this.#pace.watchIdle(this.#queued);
    }
  }


  #greet(hello: Extract<DecodedFrame, { type: 'hello' }>): boolean {
    clearTimeout(this.#handshakeTimer);
    if (hello.protocol !== PRSERV_PROTOCOL_NAME || hello.version !== PRSERV_PROTOCOL_VERSION) {
      this.#refuse(
        new ProtocolError(
          'BAD_HANDSHAKE',
          `unsupported protocol ${JSON.stringify(`${hello.protocol} ${hello.version}`)}: this is a PR server, expected "${PRSERV_PROTOCOL_NAME} ${PRSERV_PROTOCOL_VERSION}"`,
        ),
      );
      return false;
    }
    // asyncrpc: a client that asks for headers gets ours (none) and the empty line that ends them.
    if (hello.headers['needs-headers'] === 'true') this.#socket.write(encodeHeaders());
    this.#greeted = true;
    return true;
  }

  #enqueue(message: unknown): void {
    this.#queued += 1;
    if (this.#queued >= MAX_QUEUED_REQUESTS) this.#pauseReading();
    this.#waiting.push(message);
    if (!this.#answering) void this.#answerInOrder();
  }

  /** Answers waiting requests one at a time, in order (asyncrpc has no request ids). */
  async #answerInOrder(): Promise<void> {
    this.#answering = true;
    while (this.#waiting.length > 0) await this.#answer(this.#waiting.shift());
    this.#answering = false;
  }

  async #answer(message: unknown): Promise<void> {
    if (this.#ending) return;
    if (message instanceof Refusal) {
      // Counted as a request that failed, as a bad request that parses is.
      const started = performance.now();
      const code = this.#refuse(message.error);
      this.#options.stats?.answered('unknown', 'asyncrpc', started, code);
      this.#queued -= 1;
      return;
    }
    const started = performance.now();
    const req = ++this.#requestNumber;
    // Named before parsing, so that a request refused for its parameters is logged with its method.
    const method = methodOf(message);
    let errorCode: string | undefined;
    try {
      const request = parseRequest(message);
      const response = await dispatchRequest(request, this.#context);
      if (this.#ending) return;
      this.#socket.write(encodeMessage(response));
      if (this.#logRequests) {
        this.#options.logger.debug(
          { peer: this.#peer, req, method, ms: Math.round((performance.now() - started) * 10) / 10 },
          'request',
        );
      }
      // A client that does not read its answers is not answered faster than it reads: past the
      // bound nothing more is answered or read until it takes them, and one that never does goes.
      if (this.#pace.overUnreadBound) await this.#pace.untilRead();
    } catch (error) {
      errorCode = this.#refuse(error, method, req);
    } finally {
      this.#options.stats?.answered(method, 'asyncrpc', started, errorCode);
      this.#queued -= 1;
      if (this.#draining && this.#queued === 0) this.#end({ linger: false });
      else if (this.#queued < MAX_QUEUED_REQUESTS && this.#socket.isPaused() && !this.#ending && !this.#draining) {
        this.#socket.resume();
        this.#pace.watchPartialRequest();
      }
      if (!this.#ending) this.#pace.watchIdle(this.#queued);
    }
  }

  #pauseReading(): void {
    this.#socket.pause();
    this.#pace.watchPartialRequest();
  }

  /** Answers an invoke-error naming the problem, then closes the connection. */
  #refuse(error: unknown, method?: string, req?: number): string | undefined {
    if (this.#ending) return undefined;
    const { wireMessage, code, level, logMessage, causeChain } = classifyError(error);
    const fields = { peer: this.#peer, req, method, code, err: wireMessage };
    this.#options.logger[level](level === 'info' ? fields : { ...fields, cause: causeChain }, logMessage);
    // Also before the hello: there is no agreed framing yet, but a JSON line is what any asyncrpc
    // client reads, and it says why the connection ends.
    this.#socket.write(encodeMessage(invokeErrorBody(wireMessage)));
    this.#end({ linger: true });
    return code;
  }

  /**
   * Closes our side. After an error the peer gets time to read the invoke-error (closing at once
   * could reset the connection under it); an idle connection closed by a drain goes as soon as
   * everything is flushed, since BitBake's client never closes its side by itself.
   */
  #end({ linger }: { linger: boolean }): void {
    if (this.#ending) return;
    this.#ending = true;
    clearTimeout(this.#handshakeTimer);
    this.#pace.stop();
    if (linger) {
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
    } else {
      this.#pace.endWhenFlushed();
    }
  }
}

/** The method a message asks for, as far as one can tell before parsing it; `unknown` if none. */
function methodOf(message: unknown): string {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return 'unknown';
  const keys = Object.keys(message);
  return keys.length === 1 && isPrMethod(keys[0]!) ? keys[0]! : 'unknown';
}

/** Bad input, waiting for its turn to be refused after the requests that came before it. */
class Refusal {
  constructor(readonly error: unknown) {}
}
