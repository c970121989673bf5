import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { DispatchContext } from './dispatch.js';
import type { ServerLogger } from './logger.js';
import type { ServerStats } from './server-stats.js';

/**
 * The connection a session serves: a `net.Socket`, or any duplex stream (an in-memory pair in
 * tests); the TCP-only calls are made when present.
 */
export type SessionSocket = Duplex & Partial<Pick<Socket, 'remoteAddress' | 'remotePort' | 'setNoDelay' | 'setKeepAlive'>>;

/** What a session needs from its server. */
export interface SessionOptions {
  readonly context: Omit<DispatchContext, 'generation'>;
  readonly maxMessageBytes: number;
  /** A peer that has not sent its hello within this time is dropped, in ms. */
  readonly handshakeTimeoutMs: number;
  /**
   * A request begun must arrive whole within this time, and an answer the server holds back for
   * a client that is not reading must be taken within it; past it the connection is dropped, in ms.
   */
  readonly requestTimeoutMs: number;
  /** A connection with nothing in flight that sends nothing for this long is closed, in ms; 0: never. */
  readonly idleTimeoutMs: number;
  /** Answers buffered for a client that has not read them; past it the server waits for the client. */
  readonly maxUnreadBytes: number;
  readonly logger: ServerLogger;
  /** Where answered requests are counted (get-stats, metrics). Default: nowhere. */
  readonly stats?: ServerStats;
}

/** A served connection, whatever it speaks. */
export interface ServedConnection {
  /** Resolves once the connection is closed. */
  readonly closed: Promise<void>;
  /** Stops taking requests; closes once those received are answered. */
  drain(): void;
  /** Drops the connection at once. */
  destroy(): void;
}

/**
 * The peer's address as provenance records it: IPv4 peers of a dual-stack listener arrive
 * IPv6-mapped (`::ffff:10.1.2.3`) and are recorded as plain IPv4. Undefined for a stream that
 * is not TCP.
 */
export function clientAddress(socket: SessionSocket): string | undefined {
  const address = socket.remoteAddress;
  if (!address) return undefined;
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

/** How a session names its peer in logs. */
export function peerName(socket: SessionSocket): string {
  return socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'local';
}

/**
 * Wires a session to its socket: `receive` gets every chunk, `drain` runs once the client has sent
 * all it will (a half-close: answer what it sent, then close). Resolves once the socket closes.
 */
export function attachSession(
  socket: SessionSocket,
  logger: ServerLogger,
  peer: string,
  receive: (chunk: Buffer) => void,
  drain: () => void,
): Promise<void> {
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.setNoDelay?.(true);
  // Builders that vanish without a FIN (power loss, network cut) are noticed and dropped.
  socket.setKeepAlive?.(true, 60_000);
  socket.on('data', receive);
  socket.once('end', drain);
  socket.on('error', (error) => logger.debug({ peer, err: error.message }, 'connection error'));
  return closed;
}
