import {
  encodeJsonRpcError,
  encodeJsonRpcResult,
  FrameDecoder,
  type JsonRpcId,
  jsonRpcIdOf,
  type PrRequest,
  parseJsonRpcRequest,
} from '@prserv/core';
import { ConnectionPace } from './connection-pace.js';
import { type DispatchContext, dispatchRequest } from './dispatch.js';
import { classifyError } from './error-policy.js';
import { attachSession, clientAddress, peerName, type ServedConnection, type SessionOptions, type SessionSocket } from './session-options.js';

/**
 * Requests one connection may have in flight. Past it the socket stops being read until answers
 * go out, so a client pipelining faster than the database answers costs bounded memory.
 */
export const MAX_REQUESTS_IN_FLIGHT = 128;
/** After closing our side on a line that is not JSON, how long a peer may take to read the error. */
const LINGER_MS = 5_000;

/**
 * One connection speaking the JSON-RPC envelope (docs/protocol.md §11): requests are answered
 * as they complete, each with its id, so many can be in flight at once. A bad request is answered
 * with an error and the connection carries on; only a line that is not JSON ends it.
 */
export class JsonRpcSession implements ServedConnection {
  readonly #socket: SessionSocket;
  readonly #options: SessionOptions;
  readonly #decoder: FrameDecoder;
  readonly #context: DispatchContext;
  readonly #peer: string;
  readonly #pace: ConnectionPace;
  readonly #logRequests: boolean;
  readonly closed: Promise<void>;
  #inFlight = 0;
  /** Requests read beyond the in-flight bound, oldest first; reading is paused while any wait. */
  readonly #waiting: unknown[] = [];
  #requestNumber = 0;
  #ending = false;
  #draining = false;
  /** Set while the connection ends after a bad line: called once no request is in flight. */
  #whenAllAnswered: (() => void) | undefined;

  /** `firstBytes`: what was read from the socket before the session took it over. */
  constructor(socket: SessionSocket, options: SessionOptions, firstBytes?: Buffer) {
    this.#socket = socket;
    this.#options = options;
    this.#decoder = new FrameDecoder({ preamble: 'none', maxMessageBytes: options.maxMessageBytes, chunkStreams: false });
    // Revisions here are always strings: the connection is never taken for BitBake's legacy client.
    this.#context = { ...options.context, generation: 'modern', client: clientAddress(socket) };
    this.#peer = peerName(socket);
    this.#pace = new ConnectionPace(socket, options, this.#decoder, this.#peer, () => this.#end());
    this.#logRequests = options.logger.isLevelEnabled?.('debug') ?? true;
    this.closed = attachSession(socket, options.logger, this.#peer, (chunk) => this.#receive(chunk), () => this.drain());
    if (firstBytes) this.#receive(firstBytes);
  }

  drain(): void {
    this.#draining = true;
    this.#socket.pause();
    this.#pace.watchPartialRequest();
    if (this.#inFlight === 0) this.#end();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    if (this.#ending || this.#draining) return;
    const { frames, error } = this.#decoder.decode(chunk);
    for (const frame of frames) {
      if (frame.type !== 'message') continue;
      if (this.#inFlight < MAX_REQUESTS_IN_FLIGHT) void this.#answer(frame.message);
      else this.#waiting.push(frame.message);
    }
    if (this.#waiting.length > 0) this.#pauseReading();
    if (error) {
      // No line boundary can be trusted after this: the requests before it are answered, then
      // the error, without an id, and the connection closes.
      this.#ending = true;
      this.#pace.stop();
      const { wireMessage, code, level, logMessage } = classifyError(error);
      this.#options.logger[level]({ peer: this.#peer, protocol: 'jsonrpc', code, err: wireMessage }, logMessage);
      const refuse = () => {
        this.#options.stats?.answered('unknown', 'jsonrpc', performance.now(), code);
        this.#write(encodeJsonRpcError(null, { code, message: wireMessage }));
        this.#socket.end();
        setTimeout(() => this.#socket.destroy(), LINGER_MS).unref();
      };
      if (this.#inFlight === 0 && this.#waiting.length === 0) refuse();
      else this.#whenAllAnswered = refuse;
      return;
    }
    this.#pace.watchPartialRequest(frames.length > 0);
    this.#pace.watchIdle(this.#inFlight);
  }

  async #answer(message: unknown): Promise<void> {
    const started = performance.now();
    const req = ++this.#requestNumber;
    const id: JsonRpcId | null = jsonRpcIdOf(message);
    let method = 'unknown';
    this.#inFlight += 1;
    let errorCode: string | undefined;
    try {
      const parsed = parseJsonRpcRequest(message);
      method = parsed.request.method;
      const response = await dispatchRequest(this.#withDefaultHistory(parsed.request), this.#context);
      this.#write(encodeJsonRpcResult(id, response));
      if (this.#logRequests) {
        const ms = Math.round((performance.now() - started) * 10) / 10;
        this.#options.logger.debug({ peer: this.#peer, protocol: 'jsonrpc', req, id, method, ms }, 'request');
      }
    } catch (error) {
      const { wireMessage, code, level, logMessage, causeChain } = classifyError(error);
      errorCode = code;
      const fields = { peer: this.#peer, protocol: 'jsonrpc', req, id, method, code, err: wireMessage };
      this.#options.logger[level](level === 'info' ? fields : { ...fields, cause: causeChain }, logMessage);
      this.#write(encodeJsonRpcError(id, { code, message: wireMessage }));
    } finally {
      this.#options.stats?.answered(method, 'jsonrpc', started, errorCode);
      this.#inFlight -= 1;
      await this.#afterAnswer();
    }
  }

  /** Requests without `history` take the server's mode, as a legacy client's would. */
  #withDefaultHistory(request: PrRequest): PrRequest {
    if ((request.method === 'get-pr' || request.method === 'test-pr' || request.method === 'export') && request.history === undefined) {
      return { ...request, history: this.#options.context.defaultHistory };
    }
    return request;
  }

  /** After each answer: the next waiting request, or reading again, unless the client lags. */
  async #afterAnswer(): Promise<void> {
    // Past the unread bound no request is started and nothing is read until the client takes
    // what it was sent (the requests already in flight still answer); one that never does is
    // dropped.
    if (this.#pace.overUnreadBound) {
      this.#pauseReading();
      await this.#pace.untilRead();
      if (this.#socket.destroyed) return;
    }
    const next = this.#waiting.shift();
    if (next !== undefined) {
      void this.#answer(next);
      return;
    }
    if (this.#inFlight === 0) this.#whenAllAnswered?.();
    if (this.#ending) return;
    if (this.#draining) {
      if (this.#inFlight === 0) this.#end();
      return;
    }
    if (this.#socket.isPaused() && !this.#pace.overUnreadBound) {
      this.#socket.resume();
      this.#pace.watchPartialRequest();
    }
    this.#pace.watchIdle(this.#inFlight);
  }

  #pauseReading(): void {
    this.#socket.pause();
    this.#pace.watchPartialRequest();
  }

  #write(line: string): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.write(line);
  }

  /** Closes our side once everything written is flushed. */
  #end(): void {
    if (this.#ending) return;
    this.#ending = true;
    this.#pace.stop();
    this.#pace.endWhenFlushed();
  }
}
