import { connect, type Socket } from 'node:net';
import type { ServerAddress } from '@prserv/client';
import { encodeClientHello, FrameDecoder } from '@prserv/core';
import type { StressProtocol } from './stress-settings.js';

/** What a {@link RpcLink} reports to its owner. Plain methods: no closure or promise per message. */
export interface RpcLinkHandler {
  /** The TCP connection is up and the hello is on its way: the first request may go. */
  linkConnected(link: RpcLink): void;
  /** One decoded answer, in order. */
  linkMessage(link: RpcLink, message: unknown): void;
  /**
   * The connection is gone (refused, dropped, timed out, or closed by {@link RpcLink.close}).
   * Called exactly once; `connected` says whether it ever came up.
   */
  linkClosed(link: RpcLink, error: Error | undefined, connected: boolean): void;
}

/** BitBake's hello (`PRSERVICE 1.0`, `needs-headers: false`), the same for every connection. */
const HELLO = encodeClientHello();

/**
 * Every link reads into this one buffer: a read is handled synchronously, and the decoder copies
 * what it keeps of a partial line, so the buffer is free again when the callback returns.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * One client connection stripped to what a load generator needs: it writes request lines and
 * hands each decoded answer to its handler. It does not pair answers with requests; its owner
 * sends one request at a time. Owners speak asyncrpc; over `jsonrpc` the link wraps each line in
 * the envelope and hands on the result, or an error as asyncrpc's invoke-error.
 */
export class RpcLink {
  readonly address: ServerAddress;
  /** Free for the owner: which request is in flight, which worker this is. */
  slot = -1;
  readonly #socket: Socket;
  readonly #handler: RpcLinkHandler;
  readonly #protocol: StressProtocol;
  readonly #decoder: FrameDecoder;
  #nextId = 0;
  readonly #connectTimer: NodeJS.Timeout;
  #connected = false;
  #error: Error | undefined;

  constructor(address: ServerAddress, handler: RpcLinkHandler, protocol: StressProtocol = 'asyncrpc', connectTimeoutMs = 10_000) {
    this.address = address;
    this.#handler = handler;
    this.#protocol = protocol;
    this.#decoder = new FrameDecoder({ preamble: 'none', chunkStreams: protocol === 'asyncrpc' });
    this.#socket = connect({
      host: address.host,
      port: address.port,
      onread: {
        buffer: READ_BUFFER,
        callback: (length, buffer) => {
          this.#read(buffer, length);
          return true;
        },
      },
    });
    this.#socket.setNoDelay(true);
    this.#connectTimer = setTimeout(() => {
      this.#socket.destroy(new Error(`no connection to ${address.host}:${address.port} within ${connectTimeoutMs} ms`));
    }, connectTimeoutMs);
    this.#socket.once('connect', () => {
      clearTimeout(this.#connectTimer);
      this.#connected = true;
      if (protocol === 'asyncrpc') this.#socket.write(HELLO, 'latin1');
      handler.linkConnected(this);
    });
    this.#socket.on('error', (error) => {
      this.#error ??= error;
    });
    this.#socket.once('close', () => {
      clearTimeout(this.#connectTimer);
      handler.linkClosed(this, this.#error, this.#connected);
    });
  }

  /** Writes one request line, `{"<method>": {params}}` (ASCII, ending in a newline). */
  send(line: string): void {
    this.#socket.write(this.#protocol === 'jsonrpc' ? envelope(line, ++this.#nextId) : line, 'latin1');
  }

  /** Drops the connection; the handler hears of it through `linkClosed`. */
  close(error?: Error): void {
    if (error) this.#error ??= error;
    this.#socket.destroy();
  }

  #read(buffer: Uint8Array, length: number): void {
    let frames;
    try {
      frames = this.#decoder.push(buffer.subarray(0, length));
    } catch (error) {
      this.close(error as Error);
      return;
    }
    for (let index = 0; index < frames.length && !this.#socket.destroyed; index += 1) {
      const frame = frames[index]!;
      if (frame.type !== 'message') continue;
      this.#handler.linkMessage(this, this.#protocol === 'jsonrpc' ? unwrap(frame.message) : frame.message);
    }
  }
}

/** `{"<method>": <params>}\n` as the JSON-RPC envelope: `{"id": n, "method": "<method>", "params": <params>}\n`. */
function envelope(line: string, id: number): string {
  const methodEnd = line.indexOf('"', 2);
  const params = line.slice(line.indexOf(':', methodEnd) + 1, line.lastIndexOf('}'));
  return `{"id": ${id}, "method": "${line.slice(2, methodEnd)}", "params":${params}}\n`;
}

/** An envelope answer as asyncrpc would have given it: the result, or an invoke-error. */
function unwrap(message: unknown): unknown {
  const { result, error } = (message ?? {}) as { result?: unknown; error?: { message?: unknown } | null };
  return error ? { 'invoke-error': { message: String(error.message) } } : result;
}
