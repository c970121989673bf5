import { connect as netConnect, type Socket } from 'node:net';
import { PrClientError } from './client-errors.js';
import type { ServerAddress } from './server-address.js';

/** Opens the byte stream to a server; replaceable so tests and tools can bring their own transport. */
export type SocketFactory = (address: ServerAddress) => Socket;

/** Options of a connection's `open`. */
export interface ConnectionOptions {
  readonly connectTimeoutMs: number;
  readonly maxMessageBytes?: number;
  readonly signal?: AbortSignal;
  readonly createSocket?: SocketFactory;
}

const defaultSocketFactory: SocketFactory = ({ host, port }) => netConnect({ host, port });

/** Connects to a server. Rejects with `CONNECT_FAILED`, `TIMEOUT` or `ABORTED`. */
export function openSocket(address: ServerAddress, options: ConnectionOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new PrClientError('ABORTED', 'aborted before connecting', { cause: options.signal.reason }));
      return;
    }
    const socket = (options.createSocket ?? defaultSocketFactory)(address);
    socket.setNoDelay(true);
    const where = `${address.host}:${address.port}`;
    const settle = (error?: Error) => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      options.signal?.removeEventListener('abort', onAbort);
      if (error) {
        socket.destroy();
        reject(error);
      }
    };
    const onConnect = () => {
      settle();
      resolve(socket);
    };
    const onError = (error: Error) =>
      settle(new PrClientError('CONNECT_FAILED', `cannot connect to PR server ${where}: ${error.message}`, { cause: error }));
    const onAbort = () => settle(new PrClientError('ABORTED', `aborted while connecting to ${where}`, { cause: options.signal?.reason }));
    const timer = setTimeout(
      () => settle(new PrClientError('TIMEOUT', `timed out after ${options.connectTimeoutMs} ms connecting to PR server ${where}`)),
      options.connectTimeoutMs,
    );
    socket.once('connect', onConnect);
    socket.once('error', onError);
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
