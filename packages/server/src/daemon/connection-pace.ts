import type { FrameDecoder } from '@prserv/core';
import type { ServerLogger } from './logger.js';
import type { SessionSocket } from './session-options.js';

/** How often a connection over its unread bound is looked at, in ms. */
const UNREAD_POLL_MS = 20;

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
   * so a peer trickling a byte at a time cannot hold the connection (and its buffer) for long;
   * it restarts when a read completed a request (`completed`) and the next one has begun in it,
   * so a client pipelining whole requests, each read ending inside the next, is never timed out.
   * Bytes we are not reading (paused) are not the peer's delay.
   */
  watchPartialRequest(completed = false): void {
    const partial = !this.#decoder.idle && !this.#socket.isPaused();
    if (!partial) {
      clearTimeout(this.#requestTimer);
      this.#requestTimer = undefined;
    } else if (this.#requestTimer !== undefined) {
      if (completed) this.#requestTimer.refresh();
    } else {
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
   * Resolves once the client has read the answers buffered for it down to the bound (or the
   * connection closed); a client that takes longer than the request timeout is dropped.
   */
  untilRead(): Promise<void> {
    this.#waitingForReader ??= new Promise<void>((resolve) => {
      if (this.#socket.destroyed) return resolve();
      const unreadBytes = this.#socket.writableLength;
      const timer = setTimeout(() => {
        this.#limits.logger.warn(
          { peer: this.#peer, unreadBytes, timeoutMs: this.#limits.requestTimeoutMs },
          'client does not read its answers; connection dropped',
        );
        this.#socket.destroy();
      }, this.#limits.requestTimeoutMs).unref();
      // 'drain' comes only once a write was refused (the buffer past the socket's high-water
      // mark, 16 or 64 KiB by Node version); under a smaller bound it may never come, so the
      // buffer is also looked at while waiting.
      const poll = setInterval(() => {
        if (!this.overUnreadBound) done();
      }, UNREAD_POLL_MS).unref();
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
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

  /**
   * Ends our side once everything written is flushed; a peer that does not take it within the
   * request timeout is dropped, as one that does not read its answers.
   */
  endWhenFlushed(): void {
    const timer = setTimeout(() => this.#socket.destroy(), this.#limits.requestTimeoutMs).unref();
    this.#socket.end(() => {
      clearTimeout(timer);
      this.#socket.destroy();
    });
  }

  stop(): void {
    clearTimeout(this.#requestTimer);
    clearTimeout(this.#idleTimer);
  }
}
