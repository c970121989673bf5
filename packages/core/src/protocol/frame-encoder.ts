import { ASYNCRPC_MAX_CHUNK, CHUNK_STREAM_KEY, PRSERV_PROTOCOL_NAME, PRSERV_PROTOCOL_VERSION } from './constants.js';

/**
 * Serialises a JSON value the way Python's `json.dumps` does by default as far as the wire
 * cares: every non-ASCII character escaped, so one character is one byte and BitBake's
 * character-counted chunking stays within its line buffer.
 */
export function toAsciiJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError('value cannot be represented as JSON');
  return text.replace(/[\u007f-\uffff]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Frames one message: a single line when its JSON text is shorter than `maxChunk - 1`
 * characters, otherwise a `{"chunk-stream": null}` line, pieces of `maxChunk - 1` characters each
 * on its own line, and an empty line (BitBake `chunkify`). Default `maxChunk` is 32 KiB.
 * @throws RangeError when `maxChunk` is not an integer of at least 2 (pieces would be empty).
 */
export function encodeMessage(message: unknown, maxChunk: number = ASYNCRPC_MAX_CHUNK): string {
  if (!Number.isInteger(maxChunk) || maxChunk < 2) {
    throw new RangeError(`maxChunk must be an integer of at least 2, got ${String(maxChunk)}`);
  }
  const text = toAsciiJson(message);
  const pieceLength = maxChunk - 1;
  if (text.length < pieceLength) return `${text}\n`;
  // BitBake's reader strips trailing whitespace from every piece, so a piece ending in a space
  // (only possible inside a JSON string: JSON.stringify puts none between tokens) would lose it.
  const chunked = text.replaceAll(' ', '\\u0020');
  const lines = [`{"${CHUNK_STREAM_KEY}": null}`];
  for (let offset = 0; offset < chunked.length; offset += pieceLength) {
    lines.push(chunked.slice(offset, offset + pieceLength));
  }
  lines.push('', '');
  return lines.join('\n');
}

/** Encodes header lines followed by the empty line that ends them. */
export function encodeHeaders(headers: Readonly<Record<string, string>> = {}): string {
  let text = '';
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n:]/.test(name) || /[\r\n]/.test(value)) {
      throw new TypeError(`header ${JSON.stringify(name)} cannot be framed`);
    }
    text += `${name}: ${value}\n`;
  }
  return `${text}\n`;
}

/**
 * The opening a PR client sends: `PRSERVICE 1.0`, its headers and an empty line. BitBake's
 * clients send `needs-headers: false`, the default here.
 */
export function encodeClientHello(headers: Readonly<Record<string, string>> = { 'needs-headers': 'false' }): string {
  return `${PRSERV_PROTOCOL_NAME} ${PRSERV_PROTOCOL_VERSION}\n${encodeHeaders(headers)}`;
}
