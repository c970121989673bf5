import { Duplex } from 'node:stream';

/** Options of {@link createDuplexPair}. */
export interface DuplexPairOptions {
  /**
   * Bytes each end buffers, in each direction, before it pushes back on the writer: a reader that
   * stops reading makes its peer's `write()` return false, and 'drain' follows once it reads again.
   * Default: Node's 16 KiB.
   */
  readonly highWaterMark?: number;
}

/**
 * One end of an in-memory connection. Like a `net.Socket` it is not half-open: once the peer has
 * ended, this end ends too (and then closes, as the peer does).
 */
export class DuplexEnd extends Duplex {
  #peer: DuplexEnd | undefined;
  /** Completes the peer's write that this end could not take in yet; called when this end is read. */
  #admitPeerWrite: (() => void) | undefined;

  constructor(options: DuplexPairOptions) {
    super({ allowHalfOpen: false, highWaterMark: options.highWaterMark });
  }

  /** Joins two ends; {@link createDuplexPair} does it. */
  static join(a: DuplexEnd, b: DuplexEnd): void {
    a.#peer = b;
    b.#peer = a;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.#peer;
    // A peer that is gone drops what reaches it, as a reset connection would.
    if (!peer || peer.destroyed) {
      callback();
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.#admitPeerWrite = callback;
  }

  override _read(): void {
    const admit = this.#admitPeerWrite;
    this.#admitPeerWrite = undefined;
    admit?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.#peer && !this.#peer.destroyed) this.#peer.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // The peer sees the end of the stream; a write of its that was waiting for us is let go.
    const peer = this.#peer;
    if (peer && !peer.destroyed && !peer.readableEnded) peer.push(null);
    this._read();
    callback(error);
  }
}

/**
 * Two connected in-memory streams, the two ends of a connection: what one end writes the other
 * reads, with the push-back of a real socket. (Node 22 has `stream.duplexPair`; Node 20 does not.)
 */
export function createDuplexPair(options: DuplexPairOptions = {}): [DuplexEnd, DuplexEnd] {
  const a = new DuplexEnd(options);
  const b = new DuplexEnd(options);
  DuplexEnd.join(a, b);
  return [a, b];
}
