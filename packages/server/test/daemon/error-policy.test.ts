import { describe, expect, it } from 'vitest';
import {
  PR_STORE_ERROR_CODES,
  PROTOCOL_ERROR_CODES,
  PrStoreError,
  type PrStoreErrorCode,
  ProtocolError,
} from '@prserv/core';
import { classifyError, type ErrorDisposition, errorChain } from '../../src/daemon/error-policy.js';

type LogLine = Pick<ErrorDisposition, 'level' | 'logMessage'>;

const clientMistake: LogLine = { level: 'info', logMessage: 'bad request refused' };
const healsByItself: LogLine = { level: 'warn', logMessage: 'request failed' };
const needsAnOperator: LogLine = { level: 'error', logMessage: 'request failed' };

// Every protocol error is the client's mistake. Store errors are decided one by one; a code added
// to PR_STORE_ERROR_CODES without a line here fails the tests below.
const expectedStoreLogLine: Record<PrStoreErrorCode, LogLine> = {
  INVALID_ARGUMENT: clientMistake,
  UPSTREAM_UNAVAILABLE: healsByItself,
  DATABASE_UNAVAILABLE: healsByItself,
  OVERLOADED: healsByItself,
  STORE_LOCKED: needsAnOperator,
  STORE_CLOSED: needsAnOperator,
  STORE_NOT_FOUND: needsAnOperator,
  DATABASE_ERROR: needsAnOperator,
  DRIVER_MISSING: needsAnOperator,
  PACKAGE_FROZEN: clientMistake,
};

/** What a driver error looks like: its message quotes the statement. */
function driverErrorWithSql(): Error {
  const sql = 'INSERT INTO revision (version, pkgarch, checksum, value) VALUES ($1, $2, $3, $4)';
  return Object.assign(new Error(`duplicate key value violates unique constraint "revision_pkey" in ${sql}`), {
    code: '23505',
  });
}

describe('classifyError', () => {
  it('has an expected log line for exactly the exported store codes', () => {
    expect(Object.keys(expectedStoreLogLine).sort()).toEqual([...PR_STORE_ERROR_CODES].sort());
  });

  it.each(PROTOCOL_ERROR_CODES)('refuses a %s protocol error with its own message at info', (code) => {
    const message = `${code.toLowerCase()}: what the client got wrong`;
    expect(classifyError(new ProtocolError(code, message))).toStrictEqual({
      wireMessage: message,
      code,
      ...clientMistake,
      causeChain: message,
    });
  });

  it.each(PR_STORE_ERROR_CODES)('answers a %s store error with its own message and its log level', (code) => {
    const message = `${code.toLowerCase()}: what the store could not do`;
    expect(classifyError(new PrStoreError(code, message))).toStrictEqual({
      wireMessage: message,
      code,
      ...expectedStoreLogLine[code],
      causeChain: message,
    });
  });

  it.each(PR_STORE_ERROR_CODES)('keeps the SQL of a driver error under a %s store error off the wire', (code) => {
    const driverError = driverErrorWithSql();
    const error = new PrStoreError(code, 'database error while trying to allocate a revision', { cause: driverError });
    const { wireMessage, causeChain } = classifyError(error);
    expect(wireMessage).toBe('database error while trying to allocate a revision');
    expect(wireMessage).not.toContain('INSERT');
    expect(wireMessage).not.toContain('revision_pkey');
    // The operator still needs it, in the log.
    expect(causeChain).toBe(`database error while trying to allocate a revision <- ${driverError.message}`);
  });

  it('sends only the own message of a protocol error that has a cause', () => {
    const error = new ProtocolError('MALFORMED_MESSAGE', 'malformed JSON', {
      cause: new SyntaxError('Unexpected token } in JSON at position 12'),
    });
    const disposition = classifyError(error);
    expect(disposition.wireMessage).toBe('malformed JSON');
    expect(disposition.causeChain).toBe('malformed JSON <- Unexpected token } in JSON at position 12');
  });

  const secret = 'SELECT value FROM revision WHERE checksum = $1; password=hunter2';
  it.each([
    ['a plain Error', new Error(secret), secret],
    ['a TypeError', new TypeError(`Cannot read properties of undefined (reading 'value') ${secret}`), secret],
    ['a thrown string', secret, secret],
    ['undefined', undefined, ''],
    ['null', null, ''],
    ['a plain object', { message: secret }, '[object Object]'],
    // Only the real classes are trusted: an error that merely carries a known code is a bug elsewhere.
    ['an Error with a store code', Object.assign(new Error(secret), { code: 'INVALID_ARGUMENT' }), secret],
    ['an Error with a protocol code', Object.assign(new Error(secret), { code: 'INVALID_PARAMS' }), secret],
    ['a driver error', driverErrorWithSql(), 'duplicate key value'],
  ])('answers %s as an internal server error without its text', (_case, error, logged) => {
    const disposition = classifyError(error);
    // An exact wire message: nothing of the error itself can reach the client.
    expect(disposition).toMatchObject({
      wireMessage: 'internal server error',
      code: 'INTERNAL',
      ...needsAnOperator,
    });
    expect(disposition.causeChain).toContain(logged);
  });
});

describe('errorChain', () => {
  /** Errors nested as written: the first is outermost, each caused by the next. */
  function nested(...messages: string[]): Error {
    return messages.reduceRight<Error | undefined>(
      (cause, message) => new Error(message, cause === undefined ? undefined : { cause }),
      undefined,
    )!;
  }

  it('lists an error without a cause as its message alone', () => {
    expect(errorChain(new Error('cannot open the store'))).toEqual(['cannot open the store']);
  });

  it('leaves out a cause that is neither an Error nor text, which the error wrapping it tells', () => {
    const wrapped = new Error('cannot open the embedded store in /s: ErrnoError 2', { cause: { name: 'ErrnoError', errno: 2 } });
    expect(errorChain(wrapped)).toEqual(['cannot open the embedded store in /s: ErrnoError 2']);
    expect(errorChain(new Error('outer', { cause: 'a reason given as text' }))).toEqual(['outer', 'a reason given as text']);
  });

  it('lists causes outermost first', () => {
    expect(errorChain(nested('cannot open the store', 'connect failed', 'connect ECONNREFUSED 127.0.0.1:5432'))).toEqual([
      'cannot open the store',
      'connect failed',
      'connect ECONNREFUSED 127.0.0.1:5432',
    ]);
  });

  it('lists a repeated message once', () => {
    expect(errorChain(nested('database unavailable', 'database unavailable', 'ECONNRESET'))).toEqual([
      'database unavailable',
      'ECONNRESET',
    ]);
  });

  it('leaves out a cause that an outer message already quotes', () => {
    const cause = new Error('EEXIST: file already exists, mkdir');
    const outer = new Error(`cannot open the embedded store in /etc/passwd: ${cause.message}`, { cause });
    expect(errorChain(outer)).toEqual([outer.message]);
  });

  it('ends on a cause chain that loops back on itself', () => {
    const first = new Error('first');
    const second = new Error('second', { cause: first });
    first.cause = second;
    const self = new Error('self');
    self.cause = self;
    expect(errorChain(first)).toEqual(['first', 'second']);
    expect(errorChain(self)).toEqual(['self']);
  });

  it('stops at four messages by default', () => {
    expect(errorChain(nested('one', 'two', 'three', 'four', 'five', 'six'))).toEqual(['one', 'two', 'three', 'four']);
  });

  it.each([1, 2, 3])('stops at a depth of %i', (depth) => {
    expect(errorChain(nested('one', 'two', 'three', 'four'), depth)).toEqual(['one', 'two', 'three', 'four'].slice(0, depth));
  });

  it('lists a cause that is not an Error as text, and ends there', () => {
    expect(errorChain(new Error('upstream failed', { cause: 'ECONNREFUSED' }))).toEqual(['upstream failed', 'ECONNREFUSED']);
  });

  it('lists a thrown string as itself', () => {
    expect(errorChain('boom')).toEqual(['boom']);
  });

  it.each([undefined, null])('lists nothing for %s', (value) => {
    expect(errorChain(value)).toEqual([]);
  });
});
