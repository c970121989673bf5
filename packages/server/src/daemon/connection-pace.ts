import type { FrameDecoder } from '@prserv/core';
import type { ServerLogger } from './logger.js';
import type { SessionSocket } from './session-options.js';

/** The limits on how slowly a peer may send and read. */
export interface PaceLimits {
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxUnreadBytes: number;
  readonly logger: ServerLogger;
}

/**
 * Holds a connection to the pace limits, whatever protocol it speaks: a request begun must arrive
 * whole in time, a quiet connection may be closed, and a client must take the answers held for it.
 */
export class ConnectionPace {
  readonly #socket: SessionSocket;
  readonly #limits: PaceLimits;
  readonly #decoder: FrameDecoder;
  readonly #peer: string;
  readonly #onIdle: () => void;
  /** Runs while a request is partly received (and we are reading). */
  #requestTimer: NodeJS.Timeout | undefined;
  /** Runs while the connection has nothing in flight, when an idle timeout is set. */
  #idleTimer: NodeJS.Timeout | undefined;
  #waitingForReader: Promise<void> | undefined;

  constructor(socket: SessionSocket, limits: PaceLimits, decoder: FrameDecoder, peer: string, onIdle: () => void) {
    this.#socket = socket;
    this.#limits = limits;
    this.#decoder = decoder;
    this.#peer = peer;
    this.#onIdle = onIdle;
    socket.once('close', () => this.stop());
  }

  /**
   * Times a request from its first byte to its last. The timer is not restarted by later bytes,
   * so a peer trickling a byte at a time cannot hold the connection (and its buffer) for long.
   * Bytes we are not reading (paused) are not the peer's delay.
   */
  watchPartialRequest(): void {
    const partial = !this.#decoder.idle && !this.#socket.isPaused();
    if (!partial) {
      clearTimeout(this.#requestTimer);
      this.#requestTimer = undefined;
    } else if (this.#requestTimer === undefined) {
      this.#requestTimer = setTimeout(() => {
        this.#limits.logger.info(
          { peer: this.#peer, bufferedBytes: this.#decoder.bufferedBytes, timeoutMs: this.#limits.requestTimeoutMs },
          'request not received whole in time; connection dropped',
        );
        this.#socket.destroy();
      }, this.#limits.requestTimeoutMs).unref();
    }
  }

  /** (Re)starts the idle timer when nothing is in flight, else stops it. */
  watchIdle(inFlight: number): void {
    if (this.#limits.idleTimeoutMs <= 0) return;
    if (inFlight > 0 || !this.#decoder.idle) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    } else if (this.#idleTimer === undefined) {
      this.#idleTimer = setTimeout(() => {
        this.#limits.logger.info({ peer: this.#peer, idleTimeoutMs: this.#limits.idleTimeoutMs }, 'connection idle; closed');
        this.#onIdle();
      }, this.#limits.idleTimeoutMs).unref();
    } else {
      this.#idleTimer.refresh();
    }
  }

  /** True when more answers are buffered for the client than it may leave unread. */
  get overUnreadBound(): boolean {
    return this.#socket.writableLength > this.#limits.maxUnreadBytes;
  }

  /**
   * Resolves once the client has read the answers buffered for it (or the connection closed);
   * a client that takes longer than the request timeout is dropped.
   */
  untilRead(): Promise<void> {
    this.#waitingForReader ??= new Promise<void>((resolve) => {
      const unreadBytes = this.#socket.writableLength;
      const timer = setTimeout(() => {
        this.#limits.logger.warn(
          { peer: this.#peer, unreadBytes, timeoutMs: this.#limits.requestTimeoutMs },
          'client does not read its answers; connection dropped',
        );
        this.#socket.destroy();
      }, this.#limits.requestTimeoutMs).unref();
      const done = () => {
        clearTimeout(timer);
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        this.#waitingForReader = undefined;
        resolve();
      };
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    return this.#waitingForReader;
  }

  stop(): void {
    clearTimeout(this.#requestTimer);
    clearTimeout(this.#idleTimer);
  }
}
