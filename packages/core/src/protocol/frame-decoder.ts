import { CHUNK_STREAM_KEY, DEFAULT_MAX_MESSAGE_BYTES } from './constants.js';
import { isProtocolError, ProtocolError } from './protocol-error.js';

/**
 * What precedes the JSON messages on a connection:
 * - `client-hello`: the server's view: a protocol line (`PRSERVICE 1.0`), header lines, an empty line.
 * - `server-headers`: the client's view after it sent `needs-headers: true`: header lines, an empty line.
 * - `none`: messages from the first byte.
 */
export type FramePreamble = 'client-hello' | 'server-headers' | 'none';

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** What the peer sends before its first message. */
  readonly preamble: FramePreamble;
  /**
   * Upper bound, in bytes, on one incoming message: a single line, or the whole text of a chunk
   * stream. The preamble (protocol line and header lines together) has the same bound.
   * Exceeding it raises a `MESSAGE_TOO_LARGE` {@link ProtocolError}. Default 1 MiB.
   */
  readonly maxMessageBytes?: number;
  /**
   * Whether a `{"chunk-stream": null}` line starts a chunk stream (asyncrpc). Default true; a
   * protocol without chunk streams turns it off, so such a line is an ordinary message.
   */
  readonly chunkStreams?: boolean;
}

/** Header names are lower-cased, values trimmed, as BitBake's asyncrpc server does. */
export type FrameHeaders = Readonly<Record<string, string>>;

/** A whole unit decoded from the byte stream. */
export type DecodedFrame =
  | { readonly type: 'hello'; readonly protocol: string; readonly version: string; readonly headers: FrameHeaders }
  | { readonly type: 'headers'; readonly headers: FrameHeaders }
  | { readonly type: 'message'; readonly message: unknown };

type Phase = 'protocol-line' | 'headers' | 'messages' | 'chunks' | 'failed';

const NEWLINE = 0x0a;

/**
 * Stateful asyncrpc decoder. Feed it byte chunks exactly as they arrive from a socket (split
 * anywhere, including inside a UTF-8 sequence); it returns every whole frame completed so far
 * and keeps the partial rest. Messages come in either form BitBake uses: one JSON line, or a
 * `{"chunk-stream": null}` line followed by pieces and an empty line.
 *
 * After a {@link ProtocolError} (thrown by `push`, returned by `decode`) the decoder is spent: the
 * connection must be closed.
 */
export class FrameDecoder {
  readonly #maxMessageBytes: number;
  readonly #chunkStreams: boolean;
  // ignoreBOM: each line is decoded on its own, and a chunk piece may begin with U+FEFF that
  // belongs to the text (a decoder that strips it would change the key the client sent).
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #phase: Phase;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #hello: { protocol: string; version: string } | undefined;
  #headers: Record<string, string> = {};
  #chunks: string[] = [];
  #chunkBytes = 0;
  #preambleBytes = 0;

  constructor(options: FrameDecoderOptions) {
    const max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (!Number.isInteger(max) || max <= 0) {
      throw new RangeError(`maxMessageBytes must be a positive integer, got ${String(max)}`);
    }
    this.#maxMessageBytes = max;
    this.#chunkStreams = options.chunkStreams ?? true;
    this.#phase =
      options.preamble === 'client-hello' ? 'protocol-line' : options.preamble === 'server-headers' ? 'headers' : 'messages';
  }

  /** Bytes received but not yet part of a whole line. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  /** True once the preamble is behind and the decoder is between messages. */
  get idle(): boolean {
    return this.#phase === 'messages' && this.#pendingBytes === 0;
  }

  /** Decodes `chunk` and returns the frames it completed, in order; throws at invalid input. */
  push(chunk: Uint8Array): DecodedFrame[] {
    const { frames, error } = this.decode(chunk);
    if (error) throw error;
    return frames;
  }

  /**
   * Decodes `chunk` without throwing at invalid input: the frames completed before it, in order,
   * and the error that ended decoding, if any. A server answers those frames before it refuses,
   * so that a pipelined request is never left without its answer.
   */
  decode(chunk: Uint8Array): { frames: DecodedFrame[]; error?: ProtocolError } {
    if (this.#phase === 'failed') {
      return { frames: [], error: new ProtocolError('DECODER_FAILED', 'the connection already sent invalid data') };
    }
    const frames: DecodedFrame[] = [];
    try {
      let start = 0;
      for (;;) {
        const end = chunk.indexOf(NEWLINE, start);
        if (end === -1) break;
        const segment = chunk.subarray(start, end);
        const lineBytes = this.#pendingBytes + segment.length;
        const line = this.#takeLine(segment);
        start = end + 1;
        const frame = this.#acceptLine(line, lineBytes);
        if (frame) frames.push(frame);
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        this.#pendingBytes += rest.length;
        this.#checkLineSize(this.#pendingBytes);
        // Copy: the caller may reuse its buffer once decode() returns.
        this.#pending.push(rest.slice());
      }
    } catch (error) {
      this.#phase = 'failed';
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#chunks = [];
      this.#headers = {};
      if (!isProtocolError(error)) throw error;
      return { frames, error };
    }
    return { frames };
  }

  #takeLine(tail: Uint8Array): string {
    const total = this.#pendingBytes + tail.length;
    this.#checkLineSize(total);
    let bytes = tail;
    if (this.#pending.length > 0) {
      bytes = new Uint8Array(total);
      let offset = 0;
      for (const piece of this.#pending) {
        bytes.set(piece, offset);
        offset += piece.length;
      }
      bytes.set(tail, offset);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    try {
      return this.#utf8.decode(bytes);
    } catch (cause) {
      throw new ProtocolError('MALFORMED_MESSAGE', 'message is not valid UTF-8', { cause });
    }
  }

  #checkLineSize(bytes: number): void {
    if (bytes > this.#maxMessageBytes - this.#bytesSoFar()) this.#tooLarge();
  }

  /** Bytes already taken by the unit the current line belongs to. */
  #bytesSoFar(): number {
    switch (this.#phase) {
      case 'chunks':
        return this.#chunkBytes;
      // Each header line is short, but a peer must not grow the header map without end either.
      case 'protocol-line':
      case 'headers':
        return this.#preambleBytes;
      default:
        return 0;
    }
  }

  #tooLarge(): never {
    const what = this.#phase === 'protocol-line' || this.#phase === 'headers' ? 'the handshake' : 'message';
    throw new ProtocolError('MESSAGE_TOO_LARGE', `${what} exceeds the limit of ${this.#maxMessageBytes} bytes`);
  }

  #acceptLine(line: string, lineBytes: number): DecodedFrame | undefined {
    switch (this.#phase) {
      case 'protocol-line':
        // #checkLineSize already bounded this line by what the preamble has left.
        this.#preambleBytes += lineBytes;
        return this.#acceptProtocolLine(line.trimEnd());
      case 'headers':
        this.#preambleBytes += lineBytes;
        return this.#acceptHeaderLine(line.trimEnd());
      case 'messages':
        return this.#acceptMessageLine(line);
      case 'chunks':
        return this.#acceptChunkLine(line, lineBytes);
      case 'failed':
        throw new ProtocolError('DECODER_FAILED', 'the connection already sent invalid data');
    }
  }

  #acceptProtocolLine(line: string): undefined {
    const parts = line.split(/\s+/).filter((part) => part.length > 0);
    if (parts.length !== 2) {
      throw new ProtocolError('BAD_HANDSHAKE', `expected a protocol line such as "PRSERVICE 1.0", got ${quote(line)}`);
    }
    this.#hello = { protocol: parts[0]!, version: parts[1]! };
    this.#phase = 'headers';
    return undefined;
  }

  #acceptHeaderLine(line: string): DecodedFrame | undefined {
    if (line.length === 0) {
      this.#phase = 'messages';
      this.#preambleBytes = 0;
      const headers = Object.freeze({ ...this.#headers });
      this.#headers = {};
      if (this.#hello) return { type: 'hello', ...this.#hello, headers };
      return { type: 'headers', headers };
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      throw new ProtocolError('BAD_HEADER', `expected a header line "name: value", got ${quote(line)}`);
    }
    this.#headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    return undefined;
  }

  #acceptMessageLine(line: string): DecodedFrame | undefined {
    const message = parseJson(line);
    if (this.#chunkStreams && isChunkStreamStart(message)) {
      this.#phase = 'chunks';
      this.#chunks = [];
      this.#chunkBytes = 0;
      return undefined;
    }
    return { type: 'message', message };
  }

  #acceptChunkLine(line: string, lineBytes: number): DecodedFrame | undefined {
    if (line.length > 0) {
      // #checkLineSize already bounded this line by what the stream has left.
      this.#chunkBytes += lineBytes;
      this.#chunks.push(line);
      return undefined;
    }
    const text = this.#chunks.join('');
    this.#chunks = [];
    this.#chunkBytes = 0;
    this.#phase = 'messages';
    return { type: 'message', message: parseJson(text) };
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new ProtocolError('MALFORMED_MESSAGE', `message is not valid JSON: ${quote(text)}`, { cause });
  }
}

function isChunkStreamStart(message: unknown): boolean {
  return typeof message === 'object' && message !== null && !Array.isArray(message) && Object.hasOwn(message, CHUNK_STREAM_KEY);
}

/** Quotes a peer's text for an error message, cut short so errors stay one readable line. */
function quote(text: string): string {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return JSON.stringify(shown);
}
