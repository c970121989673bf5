import { BlockList, createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net';
import { DEFAULT_MAX_MESSAGE_BYTES, MAX_TIMER_MS, type PrEngine } from '@prserv/core';
import { type ServerLogger, silentLogger } from './logger.js';
import { serveConnection } from './serve-connection.js';
import { ServerStats } from './server-stats.js';
import type { ServedConnection } from './session-options.js';

/** Options of {@link startPrServer}. */
export interface PrServerOptions {
  /** The engine (usually an open `PrStore`) that answers requests. The server does not close it. */
  readonly engine: PrEngine;
  /** Interface to listen on. Default `localhost`. */
  readonly host?: string;
  /** TCP port; 0 picks a free one. Default 8585. */
  readonly port?: number;
  /** History mode for legacy requests (which carry no `history`). Default false, as BitBake. */
  readonly defaultHistory?: boolean;
  /** Bound on one incoming message, in bytes. Default 1 MiB. */
  readonly maxMessageBytes?: number;
  /** How long {@link RunningPrServer.close} waits for requests in flight, in ms. Default 10000. */
  readonly drainTimeoutMs?: number;
  /** A connection that sends no hello within this time is dropped, in ms. Default: `requestTimeoutMs`. */
  readonly handshakeTimeoutMs?: number;
  /**
   * A request must arrive whole within this time from its first byte, and a client the server is
   * holding answers for must read them within it; otherwise it is dropped (and logged), in ms.
   * Default 30000.
   */
  readonly requestTimeoutMs?: number;
  /**
   * A connection with no request in flight that sends nothing for this long is closed, in ms.
   * Default 0: never (BitBake's builders hold one connection for a whole build, quiet for as long
   * as a compile takes).
   */
  readonly idleTimeoutMs?: number;
  /**
   * Answer bytes buffered for a client that has not read them. Past it the server answers and
   * reads nothing more from that client until it reads. Default 1 MiB.
   */
  readonly maxUnreadBytes?: number;
  /** Where the server logs; pino fits. Default: nothing is logged. */
  readonly logger?: ServerLogger;
  /** Most client connections open at once; more are closed at accept. Default 1000. */
  readonly maxClients?: number;
  /** Networks clients may connect from (CIDR, IPv4 or IPv6); others are closed at accept. Default: any. */
  readonly allow?: readonly string[];
  /**
   * Networks whose clients may store revisions; clients from elsewhere are served as by a read-only
   * server (the engine's `readOnlyView()`). Default: every client may.
   */
  readonly allowWrite?: readonly string[];
}

/** A listening PR server. */
export interface RunningPrServer {
  /** The address actually bound (useful with port 0). */
  readonly address: { readonly host: string; readonly port: number };
  /** Number of open client connections. */
  readonly connections: number;
  /** Requests answered since start (or the last reset), as `get-stats` reports them. */
  readonly stats: ServerStats;
  /**
   * Stops accepting, lets requests in flight finish and be answered, closes every connection.
   * Connections still busy after the drain timeout are dropped.
   */
  close(): Promise<void>;
}

/** Default TCP port of BitBake's PR server. */
export const DEFAULT_PORT = 8585;
/** Default bound on client connections open at once. */
export const DEFAULT_MAX_CLIENTS = 1000;
/** Default time a client has to send a whole request, or to read answers held for it, in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default bound on answer bytes buffered for a client that does not read them. */
export const DEFAULT_MAX_UNREAD_BYTES = 1024 * 1024;

/**
 * Parses CIDR networks (`10.0.0.0/8`, `2001:db8::/32`; a bare address is one host) into a block
 * list. Throws a RangeError naming the first that is not one.
 */
export function parseNetworks(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const network of networks) {
    const [address = '', prefixText, extra] = network.trim().split('/');
    const type = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
    const prefix = prefixText === undefined ? (type === 'ipv4' ? 32 : 128) : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN;
    if (!type || extra !== undefined || !(prefix >= 0 && prefix <= (type === 'ipv4' ? 32 : 128))) {
      throw new RangeError(`${JSON.stringify(network)} is not a network: expected an address or CIDR such as 10.0.0.0/8 or 2001:db8::/32`);
    }
    list.addSubnet(address, prefix, type);
  }
  return list;
}

function positive(name: string, value: number): number {
  if (!(value > 0)) throw new RangeError(`${name} must be more than 0, got ${String(value)}`);
  return value;
}


/** A delay given in ms, checked against {@link MAX_TIMER_MS} too. */
function timerMs(name: string, value: number, zeroAllowed: boolean): number {
  if (!(zeroAllowed ? value >= 0 : value > 0)) {
    throw new RangeError(`${name} must be ${zeroAllowed ? '0 or more' : 'more than 0'}, got ${String(value)}`);
  }
  if (value > MAX_TIMER_MS) throw new RangeError(`${name} must be at most ${MAX_TIMER_MS} ms (Node's timer limit), got ${String(value)}`);
  return value;
}

function readOnlyViewOf(engine: PrEngine): PrEngine {
  if (engine.readOnly) return engine;
  const view = engine.readOnlyView?.();
  if (!view) throw new TypeError('allowWrite needs an engine with readOnlyView() (every PrStore has one)');
  return view;
}

/** Whether a peer address (as the socket reports it; IPv4 may come IPv6-mapped) is in `list`. */
function isAllowed(list: BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return list.check(mapped, 'ipv4') || list.check(address, 'ipv6');
  return list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/**
 * Starts a PR server over TCP speaking BitBake's asyncrpc protocol and, on the same port, the
 * JSON-RPC envelope (docs/protocol.md §11).
 */
export async function startPrServer(options: PrServerOptions): Promise<RunningPrServer> {
  const logger = options.logger ?? silentLogger;
  const sessions = new Set<ServedConnection>();
  const stats = new ServerStats(() => sessions.size);
  const requestTimeoutMs = timerMs('requestTimeoutMs', options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, false);
  const sessionOptions = {
    context: { engine: options.engine, defaultHistory: options.defaultHistory ?? false, stats },
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    handshakeTimeoutMs: timerMs('handshakeTimeoutMs', options.handshakeTimeoutMs ?? requestTimeoutMs, false),
    requestTimeoutMs,
    idleTimeoutMs: timerMs('idleTimeoutMs', options.idleTimeoutMs ?? 0, true),
    maxUnreadBytes: positive('maxUnreadBytes', options.maxUnreadBytes ?? DEFAULT_MAX_UNREAD_BYTES),
    logger,
    stats,
  };
  let closing = false;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  const allowed = options.allow ? parseNetworks(options.allow) : undefined;
  const writers = options.allowWrite ? parseNetworks(options.allowWrite) : undefined;
  const readOnlyEngine = writers ? readOnlyViewOf(options.engine) : undefined;
  const readOnlyOptions = readOnlyEngine && { ...sessionOptions, context: { ...sessionOptions.context, engine: readOnlyEngine } };
  // Half-open: a client that sends its requests and then shuts down its sending side still gets
  // every answer (each session ends its side once they are written).
  const server: Server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    const peer = { address: socket.remoteAddress, port: socket.remotePort };
    if (allowed && !isAllowed(allowed, socket.remoteAddress)) {
      logger.warn({ peer }, 'connection from outside --allow closed');
      socket.destroy();
      return;
    }
    if (sessions.size >= maxClients) {
      logger.warn({ peer, clients: sessions.size, maxClients }, 'connection refused: --max-clients reached');
      socket.destroy();
      return;
    }
    const writes = !writers || isAllowed(writers, socket.remoteAddress);
    const session = serveConnection(socket, writes ? sessionOptions : readOnlyOptions!);
    sessions.add(session);
    void session.closed.then(() => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: options.host ?? 'localhost', port: options.port ?? DEFAULT_PORT }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => logger.error({ err: error.message }, 'listener error'));
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('the PR server is not bound to a TCP address');
  const address = { host: bound.address, port: bound.port };

  let closed: Promise<void> | undefined;
  return {
    address,
    get connections() {
      return sessions.size;
    },
    stats,
    close() {
      closed ??= (async () => {
        closing = true;
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        const live = [...sessions];
        for (const session of live) session.drain();
        const drained = Promise.all(live.map((session) => session.closed));
        const timeout = new Promise<'timeout'>((resolve) =>
          setTimeout(() => resolve('timeout'), options.drainTimeoutMs ?? 10_000).unref(),
        );
        if ((await Promise.race([drained, timeout])) === 'timeout') {
          logger.warn({ connections: sessions.size }, 'drain timed out; dropping connections');
          for (const session of sessions) session.destroy();
        }
        await stopped;
      })();
      return closed;
    },
  };
}
