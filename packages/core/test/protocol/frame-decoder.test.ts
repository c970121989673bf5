import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  type DecodedFrame,
  FrameDecoder,
  type FrameDecoderOptions,
  ProtocolError,
  type ProtocolErrorCode,
} from '@prserv/core';

// Expected bytes are written out literally here, never produced by the encoder.

const utf8 = new TextEncoder();
const bytes = (text: string): Uint8Array => utf8.encode(text);

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

const NONE: FrameDecoderOptions = { preamble: 'none' };
const HELLO: FrameDecoderOptions = { preamble: 'client-hello' };
const SERVER_HEADERS: FrameDecoderOptions = { preamble: 'server-headers' };

/** Feeds `input` cut at the given ascending offsets, one push per piece, and collects the frames. */
function decodeWithCuts(input: Uint8Array, cuts: readonly number[], options: FrameDecoderOptions): DecodedFrame[] {
  const decoder = new FrameDecoder(options);
  const frames: DecodedFrame[] = [];
  let start = 0;
  for (const cut of [...cuts, input.length]) {
    frames.push(...decoder.push(input.slice(start, cut)));
    start = cut;
  }
  return frames;
}

/**
 * Decodes `input` whole, split once at every byte offset, byte by byte and (for short inputs)
 * split twice at every pair of offsets; every way must give `expected`.
 */
function expectFramesAtEverySplit(input: Uint8Array, options: FrameDecoderOptions, expected: DecodedFrame[]): void {
  expect(decodeWithCuts(input, [], options)).toEqual(expected);
  for (let cut = 0; cut <= input.length; cut += 1) {
    expect(decodeWithCuts(input, [cut], options), `split at ${cut}`).toEqual(expected);
  }
  const everyByte = Array.from({ length: input.length }, (_, index) => index);
  expect(decodeWithCuts(input, everyByte, options), 'byte by byte').toEqual(expected);
  if (input.length <= 120) {
    for (let first = 1; first < input.length; first += 1) {
      for (let second = first + 1; second < input.length; second += 1) {
        expect(decodeWithCuts(input, [first, second], options), `split at ${first} and ${second}`).toEqual(expected);
      }
    }
  }
}

/** Runs `work` and returns the ProtocolError it throws. */
function protocolErrorOf(work: () => unknown): ProtocolError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError, but nothing was thrown');
}

/** `input` must fail with `code` however it is split, and the decoder must stay failed afterwards. */
function expectErrorAtEverySplit(input: Uint8Array, options: FrameDecoderOptions, code: ProtocolErrorCode): ProtocolError {
  let first: ProtocolError | undefined;
  for (let cut = 0; cut <= input.length; cut += 1) {
    const decoder = new FrameDecoder(options);
    const error = protocolErrorOf(() => {
      decoder.push(input.slice(0, cut));
      decoder.push(input.slice(cut));
    });
    expect(error.code, `split at ${cut}`).toBe(code);
    expect(error.name).toBe('ProtocolError');
    expect(protocolErrorOf(() => decoder.push(bytes('{"ping": {}}\n'))).code).toBe('DECODER_FAILED');
    first ??= error;
  }
  return first!;
}

const message = (value: unknown): DecodedFrame => ({ type: 'message', message: value });

describe('FrameDecoder', () => {
  describe('client hello (the server side)', () => {
    it('decodes the protocol line, headers and the empty line, split anywhere', () => {
      const input = bytes('PRSERVICE 1.0\nneeds-headers: true\n\n');
      expectFramesAtEverySplit(input, HELLO, [
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: { 'needs-headers': 'true' } },
      ]);
    });

    it('decodes a hello without headers', () => {
      expectFramesAtEverySplit(bytes('PRSERVICE 1.0\n\n'), HELLO, [
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: {} },
      ]);
    });

    it('lower-cases header names and trims names and values', () => {
      const input = bytes('PRSERVICE 1.0\nNeeds-Headers:true\nX-Note :  a: b  \n\n');
      expect(decodeWithCuts(input, [], HELLO)).toEqual([
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: { 'needs-headers': 'true', 'x-note': 'a: b' } },
      ]);
    });

    it('tolerates CRLF line ends in the preamble', () => {
      const input = bytes('PRSERVICE 1.0\r\nneeds-headers: true\r\n\r\n{"ping": {}}\r\n');
      expect(decodeWithCuts(input, [], HELLO)).toEqual([
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: { 'needs-headers': 'true' } },
        message({ ping: {} }),
      ]);
    });

    it('hands over another protocol name and version for the server to judge', () => {
      expect(decodeWithCuts(bytes('HASHEQUIV 2.0\n\n'), [], HELLO)).toEqual([
        { type: 'hello', protocol: 'HASHEQUIV', version: '2.0', headers: {} },
      ]);
    });

    it('decodes the hello and the first requests arriving in one push', () => {
      const input = bytes('PRSERVICE 1.0\n\n{"ping": {}}\n{"is-readonly": {}}\n');
      expectFramesAtEverySplit(input, HELLO, [
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: {} },
        message({ ping: {} }),
        message({ 'is-readonly': {} }),
      ]);
    });

    it.each(['PRSERVICE\n', 'PRSERVICE 1.0 extra\n', '\n', '   \n'])('rejects the protocol line %j as BAD_HANDSHAKE', (line) => {
      const error = expectErrorAtEverySplit(bytes(line), HELLO, 'BAD_HANDSHAKE');
      expect(error.message).toContain('PRSERVICE 1.0');
    });

    it.each(['needs-headers true\n', ': true\n'])('rejects the header line %j as BAD_HEADER', (line) => {
      const error = expectErrorAtEverySplit(bytes(`PRSERVICE 1.0\n${line}`), HELLO, 'BAD_HEADER');
      expect(error.message).toContain(JSON.stringify(line.trimEnd()));
    });

    it('bounds the whole preamble, not just each line', () => {
      const decoder = new FrameDecoder({ preamble: 'client-hello', maxMessageBytes: 64 });
      decoder.push(bytes('PRSERVICE 1.0\n'));
      // Many short, distinct header lines must not grow the decoder without bound.
      const error = protocolErrorOf(() => {
        for (let index = 0; index < 100; index += 1) decoder.push(bytes(`h${index}: v\n`));
      });
      expect(error.code).toBe('MESSAGE_TOO_LARGE');
    });

    it('accepts a preamble of exactly maxMessageBytes bytes, newlines not counted, then bounds messages afresh', () => {
      // "PRSERVICE 1.0" is 13 bytes and "a: b" 4: 17 in all.
      const input = bytes('PRSERVICE 1.0\na: b\n\n"0123456789abcde"\n');
      expectFramesAtEverySplit(input, { preamble: 'client-hello', maxMessageBytes: 17 }, [
        { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: { a: 'b' } },
        message('0123456789abcde'),
      ]);
      expectErrorAtEverySplit(bytes('PRSERVICE 1.0\na: bc\n\n'), { preamble: 'client-hello', maxMessageBytes: 17 }, 'MESSAGE_TOO_LARGE');
    });
  });

  describe('server headers (the client side)', () => {
    it('decodes header lines up to the empty line, split anywhere', () => {
      expectFramesAtEverySplit(bytes('server: prserv\nx-other: 1\n\n{"alive": true}\n'), SERVER_HEADERS, [
        { type: 'headers', headers: { server: 'prserv', 'x-other': '1' } },
        message({ alive: true }),
      ]);
    });

    it('decodes an empty header block', () => {
      expectFramesAtEverySplit(bytes('\n'), SERVER_HEADERS, [{ type: 'headers', headers: {} }]);
    });

    it('rejects a header line without a colon as BAD_HEADER', () => {
      expectErrorAtEverySplit(bytes('no colon here\n\n'), SERVER_HEADERS, 'BAD_HEADER');
    });
  });

  describe('one-line messages', () => {
    it('decodes a request line, split anywhere', () => {
      const line = '{"get-pr": {"version": "1.0-r0", "pkgarch": "core2-64", "checksum": "ab12", "history": false}}\n';
      expectFramesAtEverySplit(bytes(line), NONE, [
        message({ 'get-pr': { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'ab12', history: false } }),
      ]);
    });

    it('decodes any JSON value as a message', () => {
      expectFramesAtEverySplit(bytes('[1, 2]\n"text"\n3\nnull\n{"value": "0.3"}\n'), NONE, [
        message([1, 2]),
        message('text'),
        message(3),
        message(null),
        message({ value: '0.3' }),
      ]);
    });

    it('decodes a raw multi-byte UTF-8 text split inside a character', () => {
      // é is 2 bytes, € 3 bytes, 𝄞 4 bytes: every split lands inside one of them somewhere.
      expectFramesAtEverySplit(bytes('{"x": "é€𝄞"}\n'), NONE, [message({ x: 'é€𝄞' })]);
    });

    it('decodes \\u escapes', () => {
      expectFramesAtEverySplit(bytes('{"x": "\\u00e9\\ud834\\udd1e"}\n'), NONE, [message({ x: 'é𝄞' })]);
    });

    it('keeps a partial line until its newline arrives', () => {
      const decoder = new FrameDecoder(NONE);
      expect(decoder.idle).toBe(true);
      expect(decoder.push(bytes('{"ping": '))).toEqual([]);
      expect(decoder.bufferedBytes).toBe(9);
      expect(decoder.idle).toBe(false);
      expect(decoder.push(bytes('{}}'))).toEqual([]);
      expect(decoder.push(bytes('\n'))).toEqual([message({ ping: {} })]);
      expect(decoder.bufferedBytes).toBe(0);
      expect(decoder.idle).toBe(true);
    });

    it('copies the partial rest so the caller may reuse its buffer', () => {
      const decoder = new FrameDecoder(NONE);
      const buffer = bytes('{"a": 1}\n{"b"');
      expect(decoder.push(buffer)).toEqual([message({ a: 1 })]);
      buffer.fill(0x20);
      expect(decoder.push(bytes(': 2}\n'))).toEqual([message({ b: 2 })]);
    });

    it.each([
      ['a truncated object', '{"ping": \n'],
      ['an empty line', '\n'],
      ['bare words', 'ping\n'],
      ['trailing garbage', '{"ping": {}} x\n'],
    ])('rejects %s as MALFORMED_MESSAGE', (_, line) => {
      expectErrorAtEverySplit(bytes(line), NONE, 'MALFORMED_MESSAGE');
    });
  });

  describe('chunk streams', () => {
    const stream = '{"chunk-stream": null}\n{"export": {"version"\n: null, "colinfo": \ntrue}}\n\n';

    it('joins the pieces up to the empty line, split anywhere', () => {
      expectFramesAtEverySplit(bytes(stream), NONE, [message({ export: { version: null, colinfo: true } })]);
    });

    it('decodes a single piece', () => {
      expectFramesAtEverySplit(bytes('{"chunk-stream": null}\n{"alive": true}\n\n'), NONE, [message({ alive: true })]);
    });

    it('decodes non-ASCII text spread over pieces, split inside characters across pushes', () => {
      // Pieces are cut between characters (BitBake cuts text, not bytes); the pushes cut anywhere.
      const input = bytes('{"chunk-stream": null}\n{"x": "hé\n€𝄞\n"}\n\n');
      expectFramesAtEverySplit(input, NONE, [message({ x: 'hé€𝄞' })]);
    });

    it('keeps a U+FEFF that starts a piece: it is text of the key, not a byte-order mark', () => {
      expectFramesAtEverySplit(bytes('{"chunk-stream": null}\n{"x": "a\n\ufeffb"}\n\n'), NONE, [message({ x: 'a\ufeffb' })]);
      // A piece of U+FEFF alone is a piece, not the empty line that ends the stream.
      expectFramesAtEverySplit(bytes('{"chunk-stream": null}\n{"x": "\n\ufeff\n"}\n\n'), NONE, [message({ x: '\ufeff' })]);
    });

    it('rejects a character whose bytes a piece break cuts apart, as BitBake does', () => {
      // BitBake decodes each line on its own, so such a piece is not UTF-8.
      const euro = bytes('€');
      const input = concat(bytes('{"chunk-stream": null}\n"'), euro.slice(0, 1), bytes('\n'), euro.slice(1), bytes('"\n\n'));
      expectErrorAtEverySplit(input, NONE, 'MALFORMED_MESSAGE');
    });

    it('decodes several messages of both forms arriving in one push', () => {
      const input = bytes(`{"a": 1}\n${stream}{"b": [2]}\n{"chunk-stream": null}\n"c"\n\n{"d": 4}\n`);
      expectFramesAtEverySplit(input, NONE, [
        message({ a: 1 }),
        message({ export: { version: null, colinfo: true } }),
        message({ b: [2] }),
        message('c'),
        message({ d: 4 }),
      ]);
    });

    it('is not idle in the middle of a stream', () => {
      const decoder = new FrameDecoder(NONE);
      expect(decoder.push(bytes('{"chunk-stream": null}\n{"a"\n'))).toEqual([]);
      expect(decoder.bufferedBytes).toBe(0);
      expect(decoder.idle).toBe(false);
      expect(decoder.push(bytes(': 1}\n\n'))).toEqual([message({ a: 1 })]);
      expect(decoder.idle).toBe(true);
    });

    it('rejects pieces that do not join into JSON as MALFORMED_MESSAGE', () => {
      expectErrorAtEverySplit(bytes('{"chunk-stream": null}\n{"a"\n: \n\n'), NONE, 'MALFORMED_MESSAGE');
      expectErrorAtEverySplit(bytes('{"chunk-stream": null}\n\n'), NONE, 'MALFORMED_MESSAGE');
    });
  });

  describe('invalid UTF-8', () => {
    it.each([
      ['a stray continuation byte', [0x22, 0x80, 0x22]],
      ['an invalid byte', [0x22, 0xff, 0x22]],
      ['a truncated sequence', [0x22, 0xc3, 0x22]],
      ['an overlong encoding of "/"', [0x22, 0xc0, 0xaf, 0x22]],
      ['an encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ])('rejects %s as MALFORMED_MESSAGE', (_, raw) => {
      const line = concat(new Uint8Array(raw), bytes('\n'));
      const error = expectErrorAtEverySplit(line, NONE, 'MALFORMED_MESSAGE');
      expect(error.message).toMatch(/UTF-8/);
      expectErrorAtEverySplit(concat(bytes('{"chunk-stream": null}\n'), line, bytes('\n')), NONE, 'MALFORMED_MESSAGE');
      expectErrorAtEverySplit(concat(bytes('PRSERVICE 1.0\nx: '), line), HELLO, 'MALFORMED_MESSAGE');
    });
  });

  describe('message size bound', () => {
    const limit = 64;
    const small: FrameDecoderOptions = { preamble: 'none', maxMessageBytes: limit };
    /** A JSON string literal of exactly `size` bytes. */
    const jsonText = (size: number) => `"${'x'.repeat(size - 2)}"`;

    it('accepts a line of exactly maxMessageBytes bytes', () => {
      expectFramesAtEverySplit(bytes(`${jsonText(limit)}\n`), small, [message('x'.repeat(limit - 2))]);
    });

    it('rejects a line one byte over as MESSAGE_TOO_LARGE', () => {
      const error = expectErrorAtEverySplit(bytes(`${jsonText(limit + 1)}\n`), small, 'MESSAGE_TOO_LARGE');
      expect(error.message).toContain(String(limit));
    });

    it('counts bytes, not characters', () => {
      // 31 two-byte characters plus quotes: 33 characters, 64 bytes; one more is 66 bytes.
      expectFramesAtEverySplit(bytes(`"${'é'.repeat(31)}"\n`), small, [message('é'.repeat(31))]);
      expectErrorAtEverySplit(bytes(`"${'é'.repeat(32)}"\n`), small, 'MESSAGE_TOO_LARGE');
    });

    it('fails as soon as a line without newline outgrows the limit', () => {
      const decoder = new FrameDecoder(small);
      for (let pushed = 10; pushed <= limit; pushed += 10) {
        expect(decoder.push(bytes('x'.repeat(10)))).toEqual([]);
        expect(decoder.bufferedBytes).toBe(pushed);
      }
      expect(protocolErrorOf(() => decoder.push(bytes('x'.repeat(10)))).code).toBe('MESSAGE_TOO_LARGE');
      expect(decoder.bufferedBytes).toBe(0);
      expect(protocolErrorOf(() => decoder.push(new Uint8Array(0))).code).toBe('DECODER_FAILED');
    });

    it('fails early under the default 1 MiB limit instead of buffering an endless line', () => {
      const decoder = new FrameDecoder(NONE);
      const piece = new Uint8Array(64 * 1024).fill(0x20);
      let pushes = 0;
      const error = protocolErrorOf(() => {
        for (;;) {
          pushes += 1;
          decoder.push(piece);
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_BYTES);
          if (pushes > 1000) throw new Error('the decoder kept buffering');
        }
      });
      expect(error.code).toBe('MESSAGE_TOO_LARGE');
      expect(pushes).toBe(DEFAULT_MAX_MESSAGE_BYTES / piece.length + 1);
    });

    it('fails when an oversize line arrives in one push with its newline', () => {
      const decoder = new FrameDecoder(small);
      expect(protocolErrorOf(() => decoder.push(bytes(`{"a": 1}\n${jsonText(limit + 1)}\n`))).code).toBe('MESSAGE_TOO_LARGE');
    });

    it('accepts a chunk stream of exactly maxMessageBytes bytes', () => {
      const text = jsonText(limit);
      const input = bytes(`{"chunk-stream": null}\n${text.slice(0, 20)}\n${text.slice(20, 40)}\n${text.slice(40)}\n\n`);
      expectFramesAtEverySplit(input, small, [message('x'.repeat(limit - 2))]);
    });

    it('rejects a chunk stream one byte over, though every piece is small', () => {
      const text = jsonText(limit + 1);
      const input = bytes(`{"chunk-stream": null}\n${text.slice(0, 20)}\n${text.slice(20, 40)}\n${text.slice(40)}\n\n`);
      expectErrorAtEverySplit(input, small, 'MESSAGE_TOO_LARGE');
    });

    it('fails as soon as a chunk stream outgrows the limit, before its empty line', () => {
      const decoder = new FrameDecoder(small);
      decoder.push(bytes('{"chunk-stream": null}\n'));
      for (let index = 0; index < 3; index += 1) expect(decoder.push(bytes(`${'y'.repeat(20)}\n`))).toEqual([]);
      // 60 bytes so far: a piece trickling in without its newline fails at byte 65.
      for (let index = 0; index < 4; index += 1) expect(decoder.push(bytes('z'))).toEqual([]);
      expect(protocolErrorOf(() => decoder.push(bytes('z'))).code).toBe('MESSAGE_TOO_LARGE');
    });

    it('bounds each message on its own, not the connection', () => {
      const line = `${jsonText(limit)}\n`;
      const input = bytes(line.repeat(5) + `{"chunk-stream": null}\n${jsonText(limit)}\n\n` + line);
      expect(decodeWithCuts(input, [], small)).toHaveLength(7);
    });

    it.each([0, -1, 1.5, Number.NaN])('refuses maxMessageBytes %s with a RangeError', (max) => {
      expect(() => new FrameDecoder({ preamble: 'none', maxMessageBytes: max })).toThrow(RangeError);
    });
  });

  it('stays failed after an error, whatever comes next', () => {
    const decoder = new FrameDecoder(NONE);
    expect(protocolErrorOf(() => decoder.push(bytes('{"ping": {}}\n}\n{"ping": {}}\n'))).code).toBe('MALFORMED_MESSAGE');
    for (const next of ['{"ping": {}}\n', '', '\n', '{"chunk-stream": null}\n']) {
      const error = protocolErrorOf(() => decoder.push(bytes(next)));
      expect(error.code).toBe('DECODER_FAILED');
      expect(error).toBeInstanceOf(ProtocolError);
    }
  });
});
