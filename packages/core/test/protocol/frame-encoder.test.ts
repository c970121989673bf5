import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ASYNCRPC_MAX_CHUNK,
  type DecodedFrame,
  FrameDecoder,
  encodeClientHello,
  encodeHeaders,
  encodeMessage,
  toAsciiJson,
} from '@prserv/core';

const CHUNK_START = '{"chunk-stream": null}\n';

/** A JSON string literal whose text is exactly `length` characters. */
const jsonStringOfLength = (length: number) => `"${'a'.repeat(length - 2)}"`;

function decodeAll(text: string, cuts: readonly number[] = []): DecodedFrame[] {
  const input = new TextEncoder().encode(text);
  const decoder = new FrameDecoder({ preamble: 'none', maxMessageBytes: 16 * 1024 * 1024 });
  const frames: DecodedFrame[] = [];
  let start = 0;
  for (const cut of [...cuts, input.length]) {
    frames.push(...decoder.push(input.slice(start, cut)));
    start = cut;
  }
  expect(decoder.idle).toBe(true);
  return frames;
}

describe('encodeMessage', () => {
  it('sends a short message as one line', () => {
    expect(encodeMessage({ ping: {} })).toBe('{"ping":{}}\n');
    expect(encodeMessage({ value: '3' })).toBe('{"value":"3"}\n');
    expect(encodeMessage({ value: null })).toBe('{"value":null}\n');
    expect(encodeMessage({ 'invoke-error': { message: 'no' } })).toBe('{"invoke-error":{"message":"no"}}\n');
  });

  it('sends a text of 32766 characters as one line', () => {
    expect(ASYNCRPC_MAX_CHUNK).toBe(32768);
    const text = jsonStringOfLength(32766);
    expect(encodeMessage(JSON.parse(text))).toBe(`${text}\n`);
  });

  it('sends a text of 32767 characters as a chunk stream of one piece', () => {
    // BitBake chunkify: one line only when len(msg) < max_chunk - 1.
    const text = jsonStringOfLength(32767);
    expect(encodeMessage(JSON.parse(text))).toBe(`${CHUNK_START}${text}\n\n`);
  });

  it('cuts a long text into pieces of 32767 characters', () => {
    const text = jsonStringOfLength(2 * 32767 + 1);
    expect(encodeMessage(JSON.parse(text))).toBe(
      `${CHUNK_START}${text.slice(0, 32767)}\n${text.slice(32767, 65534)}\n${text.slice(65534)}\n\n`,
    );
    const exact = jsonStringOfLength(2 * 32767);
    expect(encodeMessage(JSON.parse(exact))).toBe(`${CHUNK_START}${exact.slice(0, 32767)}\n${exact.slice(32767)}\n\n`);
  });

  it('uses pieces of maxChunk - 1 characters with a small maxChunk', () => {
    // maxChunk 8: texts under 7 characters are one line.
    expect(encodeMessage('abcd', 8)).toBe('"abcd"\n');
    expect(encodeMessage('abcde', 8)).toBe(`${CHUNK_START}"abcde"\n\n`);
    expect(encodeMessage('abcdefghij', 8)).toBe(`${CHUNK_START}"abcdef\nghij"\n\n`);
    expect(encodeMessage('abcdefghijkl', 8)).toBe(`${CHUNK_START}"abcdef\nghijkl"\n\n`);
    expect(encodeMessage('abcdefghijklm', 8)).toBe(`${CHUNK_START}"abcdef\nghijklm\n"\n\n`);
    expect(encodeMessage([1, 2, 3], 3)).toBe(`${CHUNK_START}[1\n,2\n,3\n]\n\n`);
  });

  it('never makes a piece longer than maxChunk - 1 nor an empty piece', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 2, max: 40 }), (value, maxChunk) => {
        const encoded = encodeMessage(value, maxChunk);
        expect(encoded.endsWith('\n')).toBe(true);
        if (!encoded.startsWith(CHUNK_START)) {
          expect(encoded.length - 1).toBeLessThan(maxChunk - 1);
          expect(encoded.slice(0, -1)).not.toContain('\n');
          return;
        }
        expect(encoded.endsWith('\n\n')).toBe(true);
        const pieces = encoded.slice(CHUNK_START.length, -2).split('\n');
        for (const piece of pieces) {
          expect(piece.length).toBeGreaterThan(0);
          expect(piece.length).toBeLessThanOrEqual(maxChunk - 1);
        }
        expect(pieces.slice(0, -1).every((piece) => piece.length === maxChunk - 1)).toBe(true);
        expect(pieces.join('')).toBe(toAsciiJson(value).replaceAll(' ', '\\u0020'));
        // BitBake strips trailing whitespace from each piece it reads: none may end in one.
        expect(pieces.every((piece) => !/\s$/.test(piece))).toBe(true);
      }),
    );
  });

  it('escapes spaces in chunked messages so that no piece ends in whitespace', () => {
    expect(encodeMessage('ab cd', 4)).toBe(`${CHUNK_START}"ab\n\\u0\n020\ncd"\n\n`);
    expect(JSON.parse(encodeMessage({ s: 'a b' }, 4).slice(CHUNK_START.length, -2).split('\n').join(''))).toEqual({ s: 'a b' });
  });

  it('escapes every non-ASCII character as \\uXXXX, as Python json.dumps does', () => {
    expect(encodeMessage({ x: 'é€𝄞\u007f~' })).toBe('{"x":"\\u00e9\\u20ac\\ud834\\udd1e\\u007f~"}\n');
    expect(encodeMessage({ 'clé': 1 })).toBe('{"cl\\u00e9":1}\n');
    expect(toAsciiJson('\u0000\n\t"\\')).toBe('"\\u0000\\n\\t\\"\\\\"');
    expect(toAsciiJson('\ud800')).toBe('"\\ud800"');
  });

  it('produces only printable ASCII and newlines', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 2, max: 64 }), (value, maxChunk) => {
        expect(encodeMessage(value, maxChunk)).toMatch(/^[\x20-\x7e\n]*$/);
      }),
    );
  });

  it('chunks the escaped text, so one character is one byte on the wire', () => {
    // "\u00e9\u20ac" is 14 characters once escaped.
    expect(encodeMessage('é€', 8)).toBe(`${CHUNK_START}"\\u00e9\n\\u20ac"\n\n`);
    // A piece break may fall inside an escape: the receiver joins the text before parsing.
    const cutInside = encodeMessage('é€', 6);
    expect(cutInside).toBe(`${CHUNK_START}"\\u00\ne9\\u2\n0ac"\n\n`);
    expect(decodeAll(cutInside)).toEqual([{ type: 'message', message: 'é€' }]);
  });

  it('refuses a value JSON cannot represent', () => {
    expect(() => encodeMessage(undefined)).toThrow(TypeError);
    expect(() => encodeMessage(() => 1)).toThrow(TypeError);
    expect(() => encodeMessage(10n)).toThrow(TypeError);
  });

  it.each([1, 0, -5, 2.5, Number.NaN])('refuses maxChunk %s with a RangeError', (maxChunk) => {
    expect(() => encodeMessage({ ping: {} }, maxChunk)).toThrow(RangeError);
  });

  it('round-trips any JSON value through the decoder, split at random offsets', () => {
    fc.assert(
      fc.property(
        fc.jsonValue(),
        fc.integer({ min: 2, max: 48 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (value, maxChunk, rawCuts) => {
          const encoded = encodeMessage(value, maxChunk);
          const cuts = [...new Set(rawCuts.map((cut) => cut % (encoded.length + 1)))].sort((a, b) => a - b);
          expect(decodeAll(encoded, cuts)).toEqual([{ type: 'message', message: JSON.parse(JSON.stringify(value)) }]);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('round-trips several messages sent back to back', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 5 }), fc.integer({ min: 2, max: 32 }), fc.nat(), (values, maxChunk, cut) => {
        const encoded = values.map((value) => encodeMessage(value, maxChunk)).join('');
        const frames = decodeAll(encoded, [cut % (encoded.length + 1)]);
        expect(frames).toEqual(values.map((value) => ({ type: 'message', message: JSON.parse(JSON.stringify(value)) })));
      }),
      { numRuns: 200 },
    );
  });

  it('round-trips a large export at the default chunk size', () => {
    const datainfo = Array.from({ length: 2000 }, (_, index) => ({
      version: '1.0-r0',
      pkgarch: 'core2-64',
      checksum: `${index}`.padStart(64, 'f'),
      value: String(index),
    }));
    const response = { metainfo: {}, datainfo };
    const encoded = encodeMessage(response);
    expect(encoded.startsWith(CHUNK_START)).toBe(true);
    expect(decodeAll(encoded, [1000, 40_000, 100_001])).toEqual([{ type: 'message', message: response }]);
  });
});

describe('encodeHeaders', () => {
  it('writes "name: value" lines and the empty line that ends them', () => {
    expect(encodeHeaders()).toBe('\n');
    expect(encodeHeaders({})).toBe('\n');
    expect(encodeHeaders({ 'needs-headers': 'true' })).toBe('needs-headers: true\n\n');
    expect(encodeHeaders({ a: '1', b: '' })).toBe('a: 1\nb: \n\n');
  });

  const unframeable: Record<string, string>[] = [{ 'a:b': '1' }, { 'a\nb': '1' }, { a: '1\n2' }, { a: '1\r' }];
  it.each(unframeable)('refuses a header that cannot be framed: %j', (headers) => {
    expect(() => encodeHeaders(headers)).toThrow(TypeError);
  });

  it('round-trips through the decoder as server headers', () => {
    const decoder = new FrameDecoder({ preamble: 'server-headers' });
    expect(decoder.push(new TextEncoder().encode(encodeHeaders({ Server: 'prserv', x: 'a b' })))).toEqual([
      { type: 'headers', headers: { server: 'prserv', x: 'a b' } },
    ]);
  });
});

describe('encodeClientHello', () => {
  it('writes the protocol line, the headers and the empty line', () => {
    // BitBake's asyncrpc client always says whether it needs the server's headers.
    expect(encodeClientHello()).toBe('PRSERVICE 1.0\nneeds-headers: false\n\n');
    expect(encodeClientHello({})).toBe('PRSERVICE 1.0\n\n');
    expect(encodeClientHello({ 'needs-headers': 'true' })).toBe('PRSERVICE 1.0\nneeds-headers: true\n\n');
  });

  it('round-trips through the decoder as a client hello', () => {
    const decoder = new FrameDecoder({ preamble: 'client-hello' });
    expect(decoder.push(new TextEncoder().encode(encodeClientHello({ 'needs-headers': 'true' }) + encodeMessage({ ping: {} })))).toEqual([
      { type: 'hello', protocol: 'PRSERVICE', version: '1.0', headers: { 'needs-headers': 'true' } },
      { type: 'message', message: { ping: {} } },
    ]);
  });
});
