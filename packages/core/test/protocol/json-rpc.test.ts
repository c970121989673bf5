import { describe, expect, it } from 'vitest';
import {
  encodeJsonRpcError,
  encodeJsonRpcRequest,
  encodeJsonRpcResult,
  jsonRpcIdOf,
  parseJsonRpcRequest,
  parseJsonRpcResponse,
} from '../../src/protocol/json-rpc.js';
import { isProtocolError } from '../../src/protocol/protocol-error.js';

const sum = { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'c1' };

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return isProtocolError(error) ? error.code : `not a ProtocolError: ${String(error)}`;
  }
  return undefined;
}

describe('parseJsonRpcRequest', () => {
  it('reads id, method and params into the request asyncrpc would make', () => {
    expect(parseJsonRpcRequest({ id: 7, method: 'get-pr', params: { ...sum, history: true } })).toEqual({
      id: 7,
      request: { method: 'get-pr', ...sum, history: true },
    });
    expect(parseJsonRpcRequest({ jsonrpc: '2.0', id: 'a', method: 'ping' })).toEqual({ id: 'a', request: { method: 'ping' } });
    expect(parseJsonRpcRequest({ id: 1, method: 'get-stats', params: null })).toEqual({ id: 1, request: { method: 'get-stats' } });
  });

  it('leaves history unset when absent, for the server to fill in with its mode', () => {
    expect(parseJsonRpcRequest({ id: 1, method: 'test-pr', params: sum }).request).toMatchObject({ history: undefined });
  });

  it.each([
    ['not an object', [1, 2], 'INVALID_REQUEST'],
    ['no id', { method: 'ping' }, 'INVALID_REQUEST'],
    ['an id that is an object', { id: {}, method: 'ping' }, 'INVALID_REQUEST'],
    ['an id that is not finite', { id: Number.POSITIVE_INFINITY, method: 'ping' }, 'INVALID_REQUEST'],
    ['no method', { id: 1, params: {} }, 'INVALID_REQUEST'],
    ['a stray member', { id: 1, method: 'ping', extra: true }, 'INVALID_REQUEST'],
    ['an unknown method', { id: 1, method: 'get-everything' }, 'UNKNOWN_METHOD'],
    ['params that are an array', { id: 1, method: 'get-pr', params: [] }, 'INVALID_PARAMS'],
    ['a missing checksum', { id: 1, method: 'get-pr', params: { version: 'v', pkgarch: 'a' } }, 'INVALID_PARAMS'],
    ['an integer import value', { id: 1, method: 'import-one', params: { ...sum, value: 3 } }, 'INVALID_PARAMS'],
  ])('refuses %s with %s', (_name, message, code) => {
    expect(codeOf(() => parseJsonRpcRequest(message))).toBe(code);
  });
});

describe('jsonRpcIdOf', () => {
  it('finds the id of a request it could not parse otherwise, and null where there is none', () => {
    expect(jsonRpcIdOf({ id: 3, method: 'nope' })).toBe(3);
    expect(jsonRpcIdOf({ id: 'x' })).toBe('x');
    expect(jsonRpcIdOf({ id: [1] })).toBeNull();
    expect(jsonRpcIdOf('text')).toBeNull();
  });
});

describe('responses', () => {
  it('encodes one line per response and reads it back', () => {
    const ok = encodeJsonRpcResult(1, { value: '42' });
    expect(ok).toBe('{"id":1,"result":{"value":"42"},"error":null}\n');
    expect(parseJsonRpcResponse(JSON.parse(ok))).toEqual({ id: 1, result: { value: '42' }, error: null });
    const failed = encodeJsonRpcError(null, { code: 'MALFORMED_MESSAGE', message: 'message is not valid JSON' });
    expect(parseJsonRpcResponse(JSON.parse(failed))).toEqual({
      id: null,
      result: null,
      error: { code: 'MALFORMED_MESSAGE', message: 'message is not valid JSON' },
    });
    expect(encodeJsonRpcRequest('r1', 'ping', {})).toBe('{"id":"r1","method":"ping","params":{}}\n');
  });

  it('refuses a response that is not one', () => {
    expect(codeOf(() => parseJsonRpcResponse([]))).toBe('MALFORMED_MESSAGE');
    expect(codeOf(() => parseJsonRpcResponse({ id: {}, result: 1 }))).toBe('MALFORMED_MESSAGE');
    expect(codeOf(() => parseJsonRpcResponse({ id: 1, error: 'bad' }))).toBe('MALFORMED_MESSAGE');
  });
});
