import { describe, expect, it } from 'vitest';
import {
  PR_METHODS,
  ProtocolError,
  type ProtocolErrorCode,
  exportMetainfo,
  fromWireRevision,
  isPrMethod,
  isProtocolError,
  parseRequest,
  toWireRevision,
} from '@prserv/core';

const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
const sum = { ...pkg, checksum: 'ab12cd34' };

function rejection(message: unknown): ProtocolError {
  try {
    parseRequest(message);
  } catch (error) {
    expect(isProtocolError(error)).toBe(true);
    return error as ProtocolError;
  }
  throw new Error(`parseRequest accepted ${JSON.stringify(message)}`);
}

function expectRejected(message: unknown, code: ProtocolErrorCode, ...mentions: string[]): void {
  const error = rejection(message);
  expect(error).toBeInstanceOf(ProtocolError);
  expect(error.code).toBe(code);
  for (const text of mentions) expect(error.message).toContain(text);
}

describe('parseRequest', () => {
  describe('valid requests of every method', () => {
    const valid: Record<(typeof PR_METHODS)[number], [unknown, unknown]> = {
      ping: [{}, { method: 'ping' }],
      'is-readonly': [{}, { method: 'is-readonly' }],
      'get-stats': [{}, { method: 'get-stats' }],
      'reset-stats': [null, { method: 'reset-stats' }],
      'get-pr': [{ ...sum, history: false }, { method: 'get-pr', ...sum, history: false }],
      'test-pr': [{ ...sum, history: true }, { method: 'test-pr', ...sum, history: true }],
      'test-package': [pkg, { method: 'test-package', ...pkg }],
      'max-package-pr': [pkg, { method: 'max-package-pr', ...pkg }],
      'import-one': [{ ...sum, value: '0.3' }, { method: 'import-one', ...sum, value: '0.3', valueWasNumber: false }],
      export: [
        { ...sum, colinfo: true, history: false },
        { method: 'export', ...sum, colinfo: true, history: false },
      ],
      'preview-pr': [{ ...sum, history: true }, { method: 'preview-pr', ...sum, history: true }],
      'package-history': [{ ...pkg, checksum: 'ab12cd34' }, { method: 'package-history', ...pkg, checksum: 'ab12cd34' }],
    };

    it('covers every method', () => {
      expect(Object.keys(valid).sort()).toEqual([...PR_METHODS].sort());
    });

    it.each(PR_METHODS)('parses %s', (method) => {
      const [params, expected] = valid[method];
      expect(isPrMethod(method)).toBe(true);
      expect(parseRequest({ [method]: params })).toEqual(expected);
    });
  });

  it('accepts ping and is-readonly with null or extra parameters', () => {
    expect(parseRequest({ ping: null })).toEqual({ method: 'ping' });
    expect(parseRequest({ 'is-readonly': { extra: 1 } })).toEqual({ method: 'is-readonly' });
  });

  it('marks a get-pr without a history key as legacy (history undefined)', () => {
    const request = parseRequest({ 'get-pr': sum });
    expect(request).toEqual({ method: 'get-pr', ...sum, history: undefined });
    expect(request).toHaveProperty('history', undefined);
    expect(parseRequest({ 'test-pr': sum })).toEqual({ method: 'test-pr', ...sum, history: undefined });
  });

  it('keeps the history flag of a modern request, false as well as true', () => {
    expect(parseRequest({ 'get-pr': { ...sum, history: false } })).toMatchObject({ history: false });
    expect(parseRequest({ 'get-pr': { ...sum, history: true } })).toMatchObject({ history: true });
    // Python treats 0 and 1 as booleans.
    expect(parseRequest({ 'test-pr': { ...sum, history: 1 } })).toMatchObject({ history: true });
    expect(parseRequest({ 'test-pr': { ...sum, history: 0 } })).toMatchObject({ history: false });
  });

  it('ignores unknown parameters', () => {
    expect(parseRequest({ 'test-package': { ...pkg, extra: [1] } })).toEqual({ method: 'test-package', ...pkg });
  });

  describe('preview-pr and package-history', () => {
    it('needs a checksum for preview-pr, and takes history as get-pr does', () => {
      expectRejected({ 'preview-pr': pkg }, 'INVALID_PARAMS', 'preview-pr', '"checksum"');
      expect(parseRequest({ 'preview-pr': sum })).toEqual({ method: 'preview-pr', ...sum, history: undefined });
    });

    it('takes package-history without a checksum, or a null or empty one, as the whole package', () => {
      for (const params of [pkg, { ...pkg, checksum: null }, { ...pkg, checksum: '' }]) {
        expect(parseRequest({ 'package-history': params })).toEqual({ method: 'package-history', ...pkg, checksum: null });
      }
      expectRejected({ 'package-history': { version: '1.0-r0' } }, 'INVALID_PARAMS', 'package-history', '"pkgarch"');
      expectRejected({ 'package-history': { ...pkg, checksum: 3 } }, 'INVALID_PARAMS', 'package-history', '"checksum"');
    });
  });

  describe('export', () => {
    it.each([null, '', undefined])('treats a %j filter as no filter', (filter) => {
      const params: Record<string, unknown> = { colinfo: false, history: true };
      if (filter !== undefined) Object.assign(params, { version: filter, pkgarch: filter, checksum: filter });
      expect(parseRequest({ export: params })).toEqual({
        method: 'export',
        version: null,
        pkgarch: null,
        checksum: null,
        colinfo: false,
        history: true,
      });
    });

    it('defaults colinfo to false and leaves history undefined for a legacy client', () => {
      expect(parseRequest({ export: { version: '1.0-r0' } })).toEqual({
        method: 'export',
        version: '1.0-r0',
        pkgarch: null,
        checksum: null,
        colinfo: false,
        history: undefined,
      });
    });

    it('rejects an ill-typed filter naming it', () => {
      expectRejected({ export: { pkgarch: 5 } }, 'INVALID_PARAMS', 'export', '"pkgarch"');
      expectRejected({ export: { colinfo: 'yes' } }, 'INVALID_PARAMS', 'export', '"colinfo"');
    });
  });

  describe('import-one', () => {
    it('takes an integer value from a legacy client and remembers it was a number', () => {
      expect(parseRequest({ 'import-one': { ...sum, value: 7 } })).toEqual({
        method: 'import-one',
        ...sum,
        value: '7',
        valueWasNumber: true,
      });
      expect(parseRequest({ 'import-one': { ...sum, value: 0 } })).toMatchObject({ value: '0', valueWasNumber: true });
    });

    it('takes a string value as sent', () => {
      expect(parseRequest({ 'import-one': { ...sum, value: '7' } })).toMatchObject({ value: '7', valueWasNumber: false });
      expect(parseRequest({ 'import-one': { ...sum, value: '1.10' } })).toMatchObject({ value: '1.10', valueWasNumber: false });
    });

    it.each([
      ['missing', undefined, 'missing parameter "value"'],
      ['null', null, 'missing parameter "value"'],
      ['negative', -1, '"value"'],
      ['fractional', 1.5, '"value"'],
      ['unsafe', 2 ** 53, '"value"'],
      ['boolean', true, '"value"'],
      ['an array', ['1'], '"value"'],
    ])('rejects a %s value', (_, value, mention) => {
      const params: Record<string, unknown> = { ...sum };
      if (value !== undefined) params.value = value;
      expectRejected({ 'import-one': params }, 'INVALID_PARAMS', 'import-one', mention);
    });
  });

  describe('malformed requests', () => {
    it.each([
      ['null', null],
      ['an array', [{ ping: {} }]],
      ['a string', 'ping'],
      ['a number', 3],
    ])('rejects %s as INVALID_PARAMS', (_, message) => {
      expectRejected(message, 'INVALID_PARAMS', 'JSON object');
    });

    it('rejects an object without a method', () => {
      expectRejected({}, 'INVALID_PARAMS', 'exactly one key', 'none');
    });

    it('rejects an object with two methods, naming both', () => {
      expectRejected({ ping: {}, 'get-pr': sum }, 'INVALID_PARAMS', 'exactly one key', '"ping"', '"get-pr"');
    });

    it('rejects an unknown method as UNKNOWN_METHOD, naming it', () => {
      expectRejected({ 'get-pr-now': sum }, 'UNKNOWN_METHOD', '"get-pr-now"');
      expectRejected({ 'chunk-stream': null }, 'UNKNOWN_METHOD', '"chunk-stream"');
      expectRejected({ __proto__: null, constructor: {} }, 'UNKNOWN_METHOD', '"constructor"');
      expect(isPrMethod('toString')).toBe(false);
    });

    it('cuts a very long unknown method name short in the message', () => {
      const error = rejection({ ['x'.repeat(10_000)]: {} });
      expect(error.code).toBe('UNKNOWN_METHOD');
      expect(error.message.length).toBeLessThan(200);
    });

    it.each(['get-pr', 'test-pr', 'import-one'] as const)('rejects parameters of %s that are not an object', (method) => {
      expectRejected({ [method]: [sum] }, 'INVALID_PARAMS', method, 'parameters must be a JSON object');
      expectRejected({ [method]: 'x' }, 'INVALID_PARAMS', method);
    });

    it.each(['version', 'pkgarch', 'checksum'])('rejects a get-pr without "%s", naming it', (name) => {
      const params: Record<string, unknown> = { ...sum, history: false };
      delete params[name];
      expectRejected({ 'get-pr': params }, 'INVALID_PARAMS', 'get-pr', `missing parameter "${name}"`);
      expectRejected({ 'get-pr': { ...params, [name]: null } }, 'INVALID_PARAMS', `missing parameter "${name}"`);
    });

    it.each(['version', 'pkgarch'])('rejects a test-package with an ill-typed "%s", naming it', (name) => {
      expectRejected({ 'test-package': { ...pkg, [name]: 12 } }, 'INVALID_PARAMS', 'test-package', `"${name}"`, 'must be a string');
      expectRejected({ 'max-package-pr': { ...pkg, [name]: {} } }, 'INVALID_PARAMS', 'max-package-pr', `"${name}"`);
      expectRejected({ 'max-package-pr': { ...pkg, [name]: '' } }, 'INVALID_PARAMS', `"${name}"`, 'empty');
    });

    it('rejects an ill-typed history flag, naming it', () => {
      expectRejected({ 'get-pr': { ...sum, history: 'false' } }, 'INVALID_PARAMS', 'get-pr', '"history"', 'true or false');
      expectRejected({ 'test-pr': { ...sum, history: null } }, 'INVALID_PARAMS', 'test-pr', '"history"');
      expectRejected({ export: { history: 2 } }, 'INVALID_PARAMS', 'export', '"history"');
    });

    it('does not echo a huge ill-typed value back', () => {
      const error = rejection({ 'get-pr': { ...sum, checksum: ['a'.repeat(100_000)] } });
      expect(error.code).toBe('INVALID_PARAMS');
      expect(error.message.length).toBeLessThan(200);
      const long = rejection({ 'get-pr': { ...sum, history: 'b'.repeat(100_000) } });
      expect(long.message.length).toBeLessThan(200);
    });
  });
});

describe('toWireRevision', () => {
  it('sends strings to modern clients', () => {
    expect(toWireRevision('3', false)).toBe('3');
    expect(toWireRevision('0.3', false)).toBe('0.3');
    expect(toWireRevision(null, false)).toBeNull();
  });

  it('sends plain integers to legacy clients as numbers', () => {
    expect(toWireRevision('0', true)).toBe(0);
    expect(toWireRevision('10', true)).toBe(10);
    expect(toWireRevision(String(Number.MAX_SAFE_INTEGER), true)).toBe(Number.MAX_SAFE_INTEGER);
    expect(toWireRevision(null, true)).toBeNull();
  });

  it('keeps a dotted or unsafe revision a string even for legacy clients', () => {
    expect(toWireRevision('0.3', true)).toBe('0.3');
    expect(toWireRevision('9007199254740993', true)).toBe('9007199254740993');
  });
});

describe('fromWireRevision', () => {
  it('reads strings and integers from either server generation', () => {
    expect(fromWireRevision('3')).toBe('3');
    expect(fromWireRevision('0.3')).toBe('0.3');
    expect(fromWireRevision(3)).toBe('3');
    expect(fromWireRevision(0)).toBe('0');
    expect(fromWireRevision(null)).toBeNull();
    expect(fromWireRevision(undefined)).toBeNull();
  });

  it('round-trips what toWireRevision sends', () => {
    for (const value of ['0', '7', '10', '0.3', '1.10', '9007199254740993']) {
      expect(fromWireRevision(toWireRevision(value, true))).toBe(value);
      expect(fromWireRevision(toWireRevision(value, false))).toBe(value);
    }
  });

  it.each([1.5, 2 ** 53 + 2, true, {}, ['1']])('refuses %j with a TypeError', (value) => {
    expect(() => fromWireRevision(value)).toThrow(TypeError);
  });
});

describe('exportMetainfo', () => {
  const key = (name: string, pk: number) => ({ name, type: 'TEXT', notnull: 1, dflt_value: null, pk });

  it('describes BitBake 2.10+ PRMAIN to modern clients', () => {
    const expected = {
      tbl_name: 'PRMAIN',
      core_ver: '2.0.0',
      col_info: [
        key('version', 1),
        key('pkgarch', 2),
        key('checksum', 3),
        { name: 'value', type: 'TEXT', notnull: 0, dflt_value: null, pk: 4 },
      ],
    };
    expect(exportMetainfo({ legacy: false, history: false })).toEqual(expected);
    expect(exportMetainfo({ legacy: false, history: true })).toEqual(expected);
  });

  it('describes the legacy PRMAIN_nohist and PRMAIN_hist tables to legacy clients', () => {
    const columns = [
      key('version', 1),
      key('pkgarch', 2),
      key('checksum', 3),
      { name: 'value', type: 'INTEGER', notnull: 0, dflt_value: null, pk: 0 },
    ];
    expect(exportMetainfo({ legacy: true, history: false })).toEqual({ tbl_name: 'PRMAIN_nohist', core_ver: '1.0.0', col_info: columns });
    expect(exportMetainfo({ legacy: true, history: true })).toEqual({ tbl_name: 'PRMAIN_hist', core_ver: '1.0.0', col_info: columns });
  });

  it('lists the columns in table order and serialises with exactly these keys', () => {
    const text = JSON.stringify(exportMetainfo({ legacy: false, history: false }));
    expect(text).toContain('{"name":"version","type":"TEXT","notnull":1,"dflt_value":null,"pk":1}');
    expect(text.indexOf('"version"')).toBeLessThan(text.indexOf('"pkgarch"'));
    expect(text.indexOf('"pkgarch"')).toBeLessThan(text.indexOf('"checksum"'));
    expect(text.indexOf('"checksum"')).toBeLessThan(text.indexOf('"value"'));
  });
});
