import { PrClientError } from './client-errors.js';

/** A TCP endpoint. */
export interface ServerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `host:port` or `[v6-address]:port` (the forms BitBake's PRSERV_HOST and
 * `--upstream` take).
 */
export function parseServerAddress(text: string): ServerAddress {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new PrClientError('INVALID_ADDRESS', `invalid server address ${JSON.stringify(text)}: expected HOST:PORT or [IPv6]:PORT`);
  }
  return { host: match[1]!, port };
}

/** Formats an address back to `host:port` (`[v6]:port` for IPv6). */
export function formatServerAddress(address: ServerAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
