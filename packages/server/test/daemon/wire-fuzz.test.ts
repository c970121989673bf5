/**
 * Throws random and mutated frames at a running server, in both protocols of its port, while clean
 * clients work alongside.
 *
 * asyncrpc (docs/protocol.md §2, §4.7, §9, §10): garbage, binary bytes, truncated, mutated and
 * deeply nested JSON, huge numbers, wrong types, unknown methods, oversize lines, values only the
 * engine refuses (long keys, NUL, unpaired surrogates, non-revisions), bad hellos, and chunk streams
 * misused (never ended, nested, empty, oversize, inside the hello; pieces may start with U+FEFF).
 * One bad frame per connection: a bad hello, or one after a valid hello and up to three valid
 * read-only requests; often a valid storing request follows it. Each connection gets the answers
 * due before its bad frame, then exactly one invoke-error and the close (or nothing, for a frame
 * never finished). A few connections pipeline valid requests only. Clients often shut down their
 * sending side (half-close) at once after writing: the answers due must still all come.
 *
 * JSON-RPC (§11), a share of the connections: valid enveloped read-only requests with ids of every
 * kind, interleaved with bad lines (bad envelopes, chunk-stream lines, unknown methods, bad or
 * missing parameters, values only the engine refuses, storing requests with a bad parameter). Each
 * gets exactly one response with its id (null when none is readable) and the code §9.3 and §11 give
 * it, in any order, and the connection stays open. Often a last line that is not JSON, not UTF-8 or
 * past the size limit follows: the answers to everything before it, then one error with a null id,
 * then the close.
 *
 * Every bad frame is invalid by construction (the spec rules below decide), so the database ends
 * as it began, apart from the clean clients' rows, which must match their model; the server logs
 * nothing above info, still serves, and keeps no connection.
 *
 * Knobs (environment variables):
 * - PRSERV_FUZZ_FRAMES: fuzzing connections per store; each asyncrpc one carries one bad frame
 *   (a few none), each JSON-RPC one one bad line or more. Default 5000, which keeps this file
 *   within CI's time (about 20 s for both stores). The full run is PRSERV_FUZZ_FRAMES=100000:
 *   about 1.5 minutes on PostgreSQL and 4 on the embedded store, on two busy cores
 *   (PRSERV_TEST_STORES picks the stores).
 * - PRSERV_FUZZ_SEED: the fast-check seed; a failure names the seed that replays it.
 */
import { isUtf8 } from 'node:buffer';
import { connect } from 'node:net';
import { setTimeout as delay, setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, type PrClient } from '@prserv/client';
import { openPrStore, type PrStore, type RevisionRow } from '@prserv/core';
import { type RunningPrServer, type ServerLogger, startPrServer } from '@prserv/server';
import { RawSocket, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

const FRAMES = countFromEnv('PRSERV_FUZZ_FRAMES', 5_000);
const SEED = countFromEnv('PRSERV_FUZZ_SEED', Math.floor(Math.random() * 2 ** 31));
/** Small, so that oversize frames are cheap to send; the real default is 1 MiB. */
const MAX_MESSAGE_BYTES = 64 * 1024;
const HANDSHAKE_TIMEOUT_MS = 3_000;
/** Fuzzing connections open at once: well under the server's 1000 clients. */
const CONCURRENCY = 48;
const BATCH = 500;

function countFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const count = Number(text);
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return count;
}

// ---------------------------------------------------------------------------------------------
// What the database holds before the fuzzing. Near-valid frames aim at these packages, so a frame
// that got through would show up as a new row in them.

const FUZZ = { version: 'fuzz-1.0-r0', pkgarch: 'fuzz-arch' } as const;
/** Answers about it carry characters the server must escape (§2.3). */
const FUZZ_UNICODE = { version: 'fuzz-ünï-😀-1.0', pkgarch: 'ärch\u2028' } as const;
/**
 * Its keys hold U+FEFF, where chunk pieces are cut: a piece starting with it must keep it. The
 * pkgarch begins with one: a store must read such a key back with it (export shows it).
 */
const FUZZ_BOM = { version: 'fuzz-\ufeff-1.0', pkgarch: '\ufeffar\ufeffch' } as const;
/** The seeded packages the valid requests ask about, with their greatest revisions. */
const SEEDED_PACKAGES = [
  { pkg: FUZZ, max: '1.5' },
  { pkg: FUZZ_UNICODE, max: '3' },
  { pkg: FUZZ_BOM, max: '2' },
] as const;
const SEEDED_ROWS: readonly RevisionRow[] = [
  { ...FUZZ, checksum: 'seeded-0', value: '0' },
  { ...FUZZ, checksum: 'seeded-1', value: '1.5' },
  { ...FUZZ_UNICODE, checksum: 'ç-0', value: '3' },
  { ...FUZZ_BOM, checksum: 'bom-\ufeff0', value: '2' },
  ...Array.from({ length: 20 }, (_, index) => ({
    version: `seed-${index % 4}.0`,
    pkgarch: 'core2-64',
    checksum: `seed-checksum-${index}`,
    value: String(index),
  })),
];
/** The clean client's packages: the only rows allowed to appear. */
const CLEAN_PREFIX = 'clean-';

// ---------------------------------------------------------------------------------------------
// Spec rules the generators use to keep every bad frame bad (docs/protocol.md §2.1, §4.7, §5).

const PR_METHODS = ['ping', 'is-readonly', 'get-pr', 'test-pr', 'test-package', 'max-package-pr', 'import-one', 'export'];
/** prserv's own methods (§4.8 to §4.10): known, so never an unknown method. */
const PRSERV_METHODS = ['get-stats', 'reset-stats', 'preview-pr', 'package-history'];
const KNOWN_METHODS = [...PR_METHODS, ...PRSERV_METHODS];
const CHUNK_STREAM_KEY = 'chunk-stream';
// ignoreBOM: the server keeps a U+FEFF that starts a line (a chunk piece may begin with one that
// belongs to a key), so a line that starts with it is not JSON, as for BitBake's server.
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** True when `text` holds an unpaired surrogate (with the u flag, a pair is one code point). */
const hasLoneSurrogate = (text: string) => /[\ud800-\udfff]/u.test(text);
const acceptedKeyPart = (value: unknown) =>
  typeof value === 'string' &&
  value.length > 0 &&
  Buffer.byteLength(value) <= 512 &&
  !value.includes('\u0000') &&
  !hasLoneSurrogate(value);
const acceptedFlag = (value: unknown) => value === true || value === false || value === 0 || value === 1;
const acceptedImportValue = (value: unknown) =>
  (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) ||
  (typeof value === 'string' && value.length <= 128 && /^\d+(?:\.\d+)*$/.test(value));
const acceptedFilter = (value: unknown) => value === null || value === '' || acceptedKeyPart(value);

/** The JSON value of a line as the server reads it, or `undefined` when it is not JSON at all. */
function jsonOf(bytes: Uint8Array): { value: unknown } | undefined {
  if (!isUtf8(bytes)) return undefined;
  try {
    return { value: JSON.parse(decoder.decode(bytes)) as unknown };
  } catch {
    return undefined;
  }
}

type HelloVerdict = 'ok' | 'refused' | 'incomplete';

/** What §2.1 and §10 make of a hello: accepted, refused, or still waiting for its empty line. */
function helloVerdict(bytes: Buffer): HelloVerdict {
  let words: string[] | undefined;
  let offset = 0;
  // Lines without their newlines count towards the limit (§10).
  let size = 0;
  for (;;) {
    const end = bytes.indexOf(0x0a, offset);
    if (end === -1) return size + bytes.length - offset > MAX_MESSAGE_BYTES ? 'refused' : 'incomplete';
    const raw = bytes.subarray(offset, end);
    offset = end + 1;
    size += raw.length;
    if (size > MAX_MESSAGE_BYTES) return 'refused';
    if (!isUtf8(raw)) return 'refused';
    const line = decoder.decode(raw).trimEnd();
    if (words === undefined) {
      words = line.split(/\s+/).filter((word) => word.length > 0);
      if (words.length !== 2) return 'refused';
    } else if (line === '') {
      return words[0] === 'PRSERVICE' && words[1] === '1.0' ? 'ok' : 'refused';
    } else if (line.indexOf(':') <= 0) {
      return 'refused';
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/** One valid request the server must answer, with its answer. None of them stores anything. */
interface Exchange {
  readonly method: string;
  readonly params: unknown;
  /** The asyncrpc message. */
  readonly text: string;
  readonly answer: unknown;
}
const exchange = (method: string, params: unknown, answer: unknown): Exchange => ({
  method,
  params,
  text: JSON.stringify({ [method]: params }),
  answer,
});

/** Well-formed strings of any Unicode: what a valid key may hold. */
const anyString = (constraints: { minLength?: number; maxLength: number }) =>
  fc.oneof(
    fc.string({ ...constraints, unit: 'binary' }),
    fc.string({ ...constraints, unit: 'grapheme' }),
    fc.string({ ...constraints, unit: 'binary-ascii' }),
    fc.string({ ...constraints, unit: 'grapheme-ascii' }),
  );
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
/** Strings that may hold unpaired surrogates too, which JSON spells as escapes (`"\ud800"`). */
const anyText = (constraints: { minLength?: number; maxLength: number }) =>
  fc.oneof(
    { arbitrary: anyString(constraints), weight: 4 },
    {
      arbitrary: fc.string({
        ...constraints,
        unit: fc.oneof({ arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }), weight: 3 }, loneSurrogate),
      }),
      weight: 1,
    },
  );
const flag = fc.constantFrom(true, false, 1, 0);
const isSet = (value: boolean | number) => value === true || value === 1;
/** A key part no seeded row uses, with any Unicode in it. */
const unusedKey = anyString({ minLength: 1, maxLength: 24 })
  .filter((text) => !text.includes('\u0000'))
  .map((text) => `fz-${text}`);
const rowsOf = (rows: readonly RevisionRow[]) =>
  rows.map(({ version, pkgarch, checksum, value }) => ({ version, pkgarch, checksum, value }));

const validRequest: fc.Arbitrary<Exchange> = fc.oneof(
  fc
    .oneof(fc.constant({}), fc.constant(null), fc.jsonValue({ maxDepth: 2 }).map((junk) => ({ junk })))
    .map((params) => exchange('ping', params, { alive: true })),
  fc.constant(exchange('is-readonly', {}, { readonly: false })),
  fc.constantFrom(FUZZ, FUZZ_UNICODE, FUZZ_BOM).map((pkg) => exchange('test-package', pkg, { value: true })),
  unusedKey.map((version) => exchange('test-package', { version, pkgarch: FUZZ.pkgarch }, { value: false })),
  fc.constantFrom(...SEEDED_PACKAGES).map(({ pkg, max }) => exchange('max-package-pr', pkg, { value: max })),
  unusedKey.map((pkgarch) => exchange('max-package-pr', { ...FUZZ, pkgarch }, { value: null })),
  fc
    .tuple(fc.constantFrom('seeded-0', 'seeded-1'), flag)
    .map(([checksum, history]) => exchange('test-pr', { ...FUZZ, checksum, history }, { value: checksum === 'seeded-0' ? '0' : '1.5' })),
  fc.tuple(unusedKey, flag).map(([checksum, history]) => exchange('test-pr', { ...FUZZ, checksum, history }, { value: null })),
  flag.map((history) => exchange('test-pr', { ...FUZZ_BOM, checksum: 'bom-\ufeff0', history }, { value: '2' })),
  fc.tuple(fc.constantFrom(...SEEDED_PACKAGES), flag, fc.constantFrom(null, '', undefined)).map(([{ pkg, max }, history, filter]) => {
    const rows = SEEDED_ROWS.filter((row) => row.version === pkg.version);
    // No-history mode exports only the rows at the package's greatest revision (§6.4).
    const expected = isSet(history) ? rows : rows.filter((row) => row.value === max);
    const params = { version: pkg.version, pkgarch: filter, checksum: filter, history };
    return exchange('export', params, { metainfo: {}, datainfo: rowsOf(expected) });
  }),
  unusedKey.map((version) => exchange('export', { version, history: true }, { metainfo: {}, datainfo: [] })),
);

/** A request the server would store from (a new checksum of a seeded package) were it whole and valid. */
const storingRequest = fc.oneof(
  fc
    .tuple(unusedKey, fc.option(flag, { nil: undefined }))
    .map(([checksum, history]) => ({ 'get-pr': { ...FUZZ, checksum, history } })),
  fc
    .tuple(unusedKey, fc.constantFrom<unknown>('7', 7, '2.0.1', '0'))
    .map(([checksum, value]) => ({ 'import-one': { ...FUZZ, checksum, value } })),
);
const storingLine = storingRequest.map((request) => Buffer.from(`${JSON.stringify(request)}\n`));

/** The kinds of parameter §4.7 knows, and what each accepts. */
type FieldKind = 'key' | 'flag' | 'import-value' | 'filter';
const ACCEPTS: Record<FieldKind, (value: unknown) => boolean> = {
  key: acceptedKeyPart,
  flag: acceptedFlag,
  'import-value': acceptedImportValue,
  filter: acceptedFilter,
};

interface Template {
  readonly method: string;
  readonly params: Record<string, unknown>;
  readonly fields: Readonly<Record<string, FieldKind>>;
  /** False when `null` parameters (read as `{}`) make a valid request. */
  readonly needsParams: boolean;
}

const KEY_FIELDS = { version: 'key', pkgarch: 'key', checksum: 'key' } as const;
const template: fc.Arbitrary<Template> = fc.oneof(
  fc.tuple(fc.constantFrom('get-pr', 'test-pr'), unusedKey, flag).map(([method, checksum, history]) => ({
    method,
    params: { ...FUZZ, checksum, history },
    fields: { ...KEY_FIELDS, history: 'flag' as const },
    needsParams: true,
  })),
  fc.tuple(unusedKey, fc.constantFrom<unknown>('7', 7, '1.5.1')).map(([checksum, value]) => ({
    method: 'import-one',
    params: { ...FUZZ, checksum, value },
    fields: { ...KEY_FIELDS, value: 'import-value' as const },
    needsParams: true,
  })),
  fc.constantFrom('test-package', 'max-package-pr').map((method) => ({
    method,
    params: { ...FUZZ },
    fields: { version: 'key' as const, pkgarch: 'key' as const },
    needsParams: true,
  })),
  fc.tuple(flag, flag).map(([colinfo, history]) => ({
    method: 'export',
    params: { ...FUZZ, checksum: null, colinfo, history },
    fields: { version: 'filter', pkgarch: 'filter', checksum: 'filter', colinfo: 'flag', history: 'flag' } as const,
    needsParams: false,
  })),
  fc.constantFrom('ping', 'is-readonly').map((method) => ({ method, params: {}, fields: {}, needsParams: false })),
);

/** A run of `length` digits: a random pattern repeated, which is cheap at any length. */
const digits = (length: number) =>
  fc
    .string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 12 })
    .map((pattern) => pattern.repeat(Math.ceil(length / pattern.length)).slice(0, length));
/** Number literals at and past every edge a JSON reader has. */
const numberLiteral = fc.oneof(
  fc.constantFrom('1e400', '-1e400', '1E309', '9007199254740992', '9007199254740993', '-9007199254740993', '-1', '-0', '0.5', '1.5'),
  fc.constantFrom('1e-400', '1e2', '1.0', '0e0', '2', '123456789012345678901234567890', '-0.0', '1E+2', '0.1e1'),
  fc
    .tuple(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 15, max: 3000 }))
    .chain(([first, length]) => digits(length).map((rest) => `${first}${rest}`)),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => JSON.stringify(value)),
  fc.bigInt().map(String),
);
/** Nested arrays and objects; deep ones go by their own category. */
const nested = (depth: number, shape: 'array' | 'object') =>
  shape === 'array' ? `${'['.repeat(depth)}${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
/** Any JSON text, as raw text so that number literals keep their spelling. */
const rawJson = fc.oneof(
  numberLiteral,
  fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
  fc.constantFrom('true', 'false', 'null', '""', '[]', '{}', '"true"', '"0"', '"1"', '[1]', '{"value":"1"}', '"null"'),
  anyText({ maxLength: 30 }).map((text) => JSON.stringify(text)),
  fc
    .tuple(fc.integer({ min: 1, max: 200 }), fc.constantFrom('array' as const, 'object' as const))
    .map(([levels, shape]) => nested(levels, shape)),
);

/** A message whose text is `message` with one value replaced by `raw`, spelled as given. */
const PLACEHOLDER = '@@fuzzed-value@@';
function withRaw(message: unknown, raw: string): string {
  return JSON.stringify(message).replace(JSON.stringify(PLACEHOLDER), () => raw);
}

interface BadContent {
  readonly kind: string;
  /** One line's worth, without its newline. */
  readonly bytes: Buffer;
}
const content =
  (kind: string) =>
  (text: string | Buffer): BadContent => ({ kind, bytes: Buffer.isBuffer(text) ? text : Buffer.from(text) });
const withoutNewlines = (bytes: Uint8Array) => Buffer.from(bytes.map((byte) => (byte === 0x0a ? 0x7b : byte)));
/** Content that is not JSON at all: refused as malformed (§9.3), whatever it looks like. */
const notJson = (bytes: Buffer) => jsonOf(bytes) === undefined;

const garbageText = anyString({ maxLength: 200 })
  .map((text) => withoutNewlines(Buffer.from(text)))
  .filter(notJson)
  .map(content('garbage text'));

const binaryBytes = fc
  .uint8Array({ maxLength: 300 })
  .map(withoutNewlines)
  .filter(notJson)
  .map(content('binary bytes'));

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 40 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;
function mutate(bytes: Buffer, change: Mutation): Buffer {
  const at = change.at % (bytes.length + 1);
  switch (change.op) {
    case 'flip': {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) copy[at % copy.length] = change.byte;
      return copy;
    }
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + change.length)]);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at), change.bytes, bytes.subarray(at)]);
    case 'duplicate':
      return Buffer.concat([bytes.subarray(0, at + change.length), bytes.subarray(at)]);
  }
}
/** Requests (often ones that would store) broken at the byte level until they are not JSON. */
const mutatedRequest = fc
  .tuple(fc.oneof(storingRequest, template.map((t) => ({ [t.method]: t.params }))), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([request, changes]) => withoutNewlines(changes.reduce(mutate, Buffer.from(JSON.stringify(request)))))
  .filter(notJson)
  .map(content('mutated request'));

const truncatedRequest = fc
  .tuple(fc.oneof(storingRequest, template.map((t) => ({ [t.method]: t.params }))), fc.nat())
  .map(([request, at]) => {
    const text = Buffer.from(JSON.stringify(request));
    // Any proper prefix of a JSON object leaves it open.
    return text.subarray(0, at % text.length);
  })
  .filter(notJson)
  .map(content('truncated request'));

const depth = fc.oneof(fc.integer({ min: 100, max: 2_000 }), fc.integer({ min: 2_000, max: 30_000 }));
const deeplyNested = fc
  .tuple(depth, fc.constantFrom('array', 'object', 'in-key-part', 'as-parameters', 'in-import-value', 'unbalanced'))
  .map(([levels, where]) => {
    switch (where) {
      case 'array':
        return nested(levels, where);
      case 'object':
        // Five bytes a level: deeper would only test the size limit.
        return nested(Math.min(levels, 10_000), where);
      case 'in-key-part':
        return withRaw({ 'get-pr': { ...FUZZ, checksum: PLACEHOLDER, history: false } }, nested(levels, 'array'));
      case 'as-parameters':
        return withRaw({ ping: PLACEHOLDER }, nested(levels, 'array'));
      case 'in-import-value':
        return withRaw({ 'import-one': { ...FUZZ, checksum: 'fz-deep', value: PLACEHOLDER } }, nested(levels, 'object'));
      default:
        return `${'['.repeat(levels)}${']'.repeat(levels - 1)}`;
    }
  })
  .map(content('deeply nested JSON'));

/** A request with one value swapped for `raw`, kept only when §4.7 refuses that value there. */
const wrongValue = (kind: string, values: fc.Arbitrary<string>) =>
  fc
    .tuple(template, values, fc.nat())
    .map(([{ method, params, fields, needsParams }, raw, pick]) => {
      const value = JSON.parse(raw) as unknown;
      const names = Object.keys(fields);
      // Besides the named parameters: the parameters object itself, and the whole message.
      const slot = pick % (names.length + 2);
      if (slot === names.length) {
        const refused = value === null ? needsParams : typeof value !== 'object' || Array.isArray(value);
        return refused ? withRaw({ [method]: PLACEHOLDER }, raw) : undefined;
      }
      if (slot === names.length + 1) {
        return typeof value !== 'object' || value === null || Array.isArray(value) ? raw : undefined;
      }
      const name = names[slot]!;
      return ACCEPTS[fields[name]!](value) ? undefined : withRaw({ [method]: { ...params, [name]: PLACEHOLDER } }, raw);
    })
    .filter((text): text is string => text !== undefined)
    .map(content(kind));

const wrongType = wrongValue('wrong type', rawJson);
const hugeNumber = wrongValue('huge or odd number', numberLiteral);

const missingParameter = template
  .chain((t) => {
    const required = Object.keys(t.fields).filter((name) => t.fields[name] === 'key' || t.fields[name] === 'import-value');
    return required.length === 0 ? fc.constant(undefined) : fc.constantFrom(...required).map((name) => ({ t, name }));
  })
  .filter((picked): picked is NonNullable<typeof picked> => picked !== undefined)
  .map(({ t, name }) => {
    const { [name]: _dropped, ...rest } = t.params;
    return JSON.stringify({ [t.method]: rest });
  })
  .map(content('missing parameter'));

/** Valid shapes with values only the engine refuses: too long, NUL, unpaired surrogate, not a revision (§4.7, §5). */
const longKey = fc
  .tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }), fc.integer({ min: 513, max: 3_000 }))
  .map(([unit, bytes]) => unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit))));
const keyWithNul = fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([before, after]) => `${before}\u0000${after}`);
/** Legal JSON (`"a\ud800b"`), but no Unicode text: stored, it would become U+FFFD and merge keys. */
const keyWithLoneSurrogate = fc
  .tuple(anyString({ maxLength: 10 }), loneSurrogate, anyString({ maxLength: 10 }))
  .map(([before, lone, after]) => `${before}${lone}${after}`)
  .filter(hasLoneSurrogate);
const refusedKey = fc.oneof(longKey, keyWithNul, keyWithLoneSurrogate);
const badRevision = fc.oneof(
  fc.constantFrom('', '1.', '.1', '1..2', '-1', '+1', ' 1', '1 ', '1e3', '0x1', '١', '１', 'r1', '1.2.', 'NaN', 'Infinity', '1,2', '1_000'),
  fc.integer({ min: 129, max: 600 }).chain((length) => digits(length)),
  fc.string({ unit: 'binary', maxLength: 20 }),
);
const engineRefusal = fc
  .tuple(template, refusedKey, badRevision, fc.nat())
  .map(([{ method, params, fields }, key, revision, pick]) => {
    const names = Object.keys(fields).filter((name) => fields[name] !== 'flag');
    if (names.length === 0) return undefined;
    const name = names[pick % names.length]!;
    const value = fields[name] === 'import-value' ? revision : key;
    return ACCEPTS[fields[name]!](value) ? undefined : JSON.stringify({ [method]: { ...params, [name]: value } });
  })
  .filter((text): text is string => text !== undefined)
  .map(content('value the engine refuses'));

const methodName = fc.oneof(
  anyText({ maxLength: 30 }),
  fc.mixedCase(fc.constantFrom(...PR_METHODS)),
  fc
    .tuple(fc.constantFrom(...PR_METHODS), fc.constantFrom(' ', '\t', '\u0000', '-', 's', '\u00a0'))
    .map(([name, extra]) => `${name}${extra}`),
  fc.constantFrom('get_pr', 'getPR', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'invoke-error', 'alive'),
);
const isUnknownMethod = (name: string) => !KNOWN_METHODS.includes(name) && name !== CHUNK_STREAM_KEY;
const unknownMethod = fc
  .tuple(
    methodName.filter(isUnknownMethod),
    fc.oneof(
      template.map((t) => t.params),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  )
  .map(([name, params]) => JSON.stringify({ [name]: params }))
  .map(content('unknown method'));

/** Valid JSON that is not a one-key object. */
const badShape = fc
  .oneof(
    fc.constant('{}'),
    fc
      .uniqueArray(fc.oneof(fc.constantFrom(...PR_METHODS), methodName), { minLength: 2, maxLength: 4 })
      .filter((names) => !names.includes(CHUNK_STREAM_KEY))
      .map((names) => JSON.stringify(Object.fromEntries(names.map((name) => [name, {}])))),
    template.map((t) => JSON.stringify([{ [t.method]: t.params }])),
    fc.constantFrom('"get-pr"', '42', 'null', 'true', '[]', '[{}]', '"{\\"ping\\": {}}"'),
  )
  .map(content('not a one-key object'));

const badContent: fc.Arbitrary<BadContent> = fc.oneof(
  { arbitrary: garbageText, weight: 3 },
  { arbitrary: binaryBytes, weight: 2 },
  { arbitrary: mutatedRequest, weight: 4 },
  { arbitrary: truncatedRequest, weight: 3 },
  { arbitrary: deeplyNested, weight: 2 },
  { arbitrary: wrongType, weight: 5 },
  { arbitrary: hugeNumber, weight: 3 },
  { arbitrary: missingParameter, weight: 2 },
  { arbitrary: engineRefusal, weight: 3 },
  { arbitrary: unknownMethod, weight: 2 },
  { arbitrary: badShape, weight: 1 },
);

/** Where a bad frame takes the connection: refused (an invoke-error, then closed), or no answer. */
type Outcome = 'refused' | 'silent' | 'dropped';

interface BadFrame {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly outcome: Outcome;
}

const cutPoints = fc.array(fc.nat(), { maxLength: 6 });
/** `bytes` cut into non-empty pieces at the given points (a piece may start with U+FEFF: it is text). */
function piecesOf(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => (bytes.length === 0 ? 0 : cut % bytes.length)))]
    .filter((point) => point > 0)
    .sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) pieces.push(bytes.subarray(start, point));
    start = point;
  }
  return pieces;
}
/** Cuts at code-point boundaries, as BitBake's chunkify does, so every piece is valid UTF-8. */
function textPiecesOf(text: string, cuts: readonly number[]): string[] {
  const points = Array.from(text);
  const at = [...new Set(cuts.map((cut) => cut % points.length))].filter((point) => point > 0).sort((a, b) => a - b);
  return [...at, points.length].map((end, index) => points.slice(index === 0 ? 0 : at[index - 1], end).join(''));
}

const chunkStart = fc.oneof(
  fc.constantFrom('{"chunk-stream": null}', '{"chunk-stream":null}', '{"chunk-stream":null,"ping":{}}', '{"get-pr":{},"chunk-stream":0}'),
  fc.jsonValue({ maxDepth: 2 }).map((value) => JSON.stringify({ [CHUNK_STREAM_KEY]: value })),
);
const line = (...parts: (string | Buffer)[]) => Buffer.concat(parts.flatMap((part) => [Buffer.from(part), Buffer.from('\n')]));

const badFrame: fc.Arbitrary<BadFrame> = fc.oneof(
  { arbitrary: badContent.map(({ kind, bytes }) => ({ kind, bytes: line(bytes), outcome: 'refused' as const })), weight: 20 },
  {
    arbitrary: fc.tuple(badContent, chunkStart, cutPoints).map(([{ kind, bytes }, start, cuts]) => ({
      kind: `${kind}, chunked`,
      bytes: Buffer.concat([line(start, ...piecesOf(bytes, cuts)), line('')]),
      outcome: 'refused' as const,
    })),
    weight: 6,
  },
  {
    // The inner start line heads the joined text, which then holds two JSON values: never one request.
    arbitrary: fc.tuple(storingRequest, chunkStart, chunkStart, cutPoints, fc.boolean()).map(([request, outer, inner, cuts, innerEnd]) => ({
      kind: 'nested chunk streams',
      bytes: Buffer.concat([
        line(outer, inner, ...textPiecesOf(JSON.stringify(request), cuts)),
        line(''),
        innerEnd ? line('') : Buffer.alloc(0),
      ]),
      outcome: 'refused' as const,
    })),
    weight: 2,
  },
  {
    arbitrary: chunkStart.map((start) => ({ kind: 'empty chunk stream', bytes: line(start, ''), outcome: 'refused' as const })),
    weight: 1,
  },
  {
    // Whole and valid inside, but never ended: nothing of it may be answered or stored.
    arbitrary: fc.tuple(storingRequest, chunkStart, cutPoints).map(([request, start, cuts]) => ({
      kind: 'chunk stream that never ends',
      bytes: line(start, ...textPiecesOf(JSON.stringify(request), cuts)),
      outcome: 'silent' as const,
    })),
    weight: 2,
  },
  {
    arbitrary: fc.tuple(chunkStart, fc.integer({ min: 1, max: 40_000 }), fc.boolean()).map(([start, pieceLength, ended]) => {
      const piece = `"${'x'.repeat(pieceLength)}`;
      const count = Math.ceil((MAX_MESSAGE_BYTES + 1) / piece.length) + 1;
      return {
        kind: 'chunk stream past the size limit',
        bytes: Buffer.concat([line(start, ...Array.from({ length: count }, () => piece)), ended ? line('') : Buffer.alloc(0)]),
        outcome: 'refused' as const,
      };
    }),
    weight: 1,
  },
  {
    arbitrary: fc
      .tuple(fc.oneof(storingRequest, fc.string()), fc.integer({ min: 1, max: 10_000 }), fc.boolean())
      .map(([request, extra, ended]) => {
        const pad = MAX_MESSAGE_BYTES + extra;
        // Padding in an ignored parameter keeps a storing request valid in all but its size.
        const padded = typeof request === 'string' ? undefined : Object.entries(request)[0]!;
        const text = padded
          ? JSON.stringify({ [padded[0]]: { pad: 'p'.repeat(pad), ...padded[1] } })
          : `${request as string}${' '.repeat(pad)}`;
        return { kind: 'line past the size limit', bytes: ended ? line(text) : Buffer.from(text), outcome: 'refused' as const };
      }),
    weight: 1,
  },
  {
    // A bad line the client never ends: the server has nothing to answer yet.
    arbitrary: badContent
      .filter(({ bytes }) => bytes.length < 1_000)
      .map(({ kind, bytes }) => ({ kind: `${kind}, unterminated`, bytes, outcome: 'silent' as const })),
    weight: 1,
  },
);

const headerLine = fc
  .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.string({ maxLength: 30 }))
  .filter(([name]) => name !== 'needs-headers')
  .map(([name, value]) => `${name}: ${value.replace(/\n/g, ' ')}`);

/**
 * The client's hello: valid, with whether the server answers it (§2.2). A chunk-stream line among
 * the headers is one more header there (its name is `{"chunk-stream"`), not a stream.
 */
const validHello = fc
  .tuple(
    fc.constantFrom(undefined, 'true', 'false'),
    fc.boolean(),
    fc.constantFrom('', '\r', ' ', '\t \r'),
    fc.array(fc.oneof({ arbitrary: headerLine, weight: 4 }, { arbitrary: chunkStart, weight: 1 }), { maxLength: 3 }),
  )
  .map(([needsHeaders, shout, lineEnd, headers]) => {
    const all = needsHeaders === undefined ? headers : [...headers, `${shout ? 'Needs-Headers' : 'needs-headers'}: ${needsHeaders}`];
    return { bytes: line(...[`PRSERVICE 1.0`, ...all].map((header) => `${header}${lineEnd}`), ''), answered: needsHeaders === 'true' };
  })
  .filter(({ bytes }) => helloVerdict(bytes) === 'ok');
const protocolLine = fc
  .oneof(
    fc.constantFrom('HASHEQUIVALENCE 1.1', 'PRSERVICE 1.1', 'PRSERVICE 2.0', 'prservice 1.0', 'PRSERVICE', 'PRSERVICE 1.0 x', ''),
    fc.mixedCase(fc.constant('PRSERVICE 1.0')),
    anyString({ maxLength: 60 }),
  )
  .map((text) => Buffer.from(text));
const badHelloBytes = fc.oneof(
  fc
    .tuple(protocolLine, fc.array(mutation, { maxLength: 3 }), fc.array(headerLine, { maxLength: 2 }))
    .map(([first, changes, headers]) => ({
      kind: 'bad protocol line',
      bytes: line(withoutNewlines(changes.reduce(mutate, first)), ...headers, ''),
    })),
  fc
    .tuple(fc.uint8Array({ maxLength: 200 }), fc.boolean())
    .map(([bytes, twice]) => ({
      kind: 'binary hello',
      bytes: Buffer.concat([Buffer.from(bytes), line(''), twice ? line('') : Buffer.alloc(0)]),
    })),
  fc
    .tuple(fc.array(headerLine, { maxLength: 2 }), anyString({ minLength: 1, maxLength: 40 }))
    .map(([headers, bad]) => ({ kind: 'bad header line', bytes: line('PRSERVICE 1.0', ...headers, bad.replace(/\n/g, ''), '') })),
  // A chunk stream where the hello belongs: as the protocol line, or among the headers.
  fc.tuple(chunkStart, storingRequest, cutPoints).map(([start, request, cuts]) => ({
    kind: 'chunk stream as the protocol line',
    bytes: line(` ${start}`, ...textPiecesOf(JSON.stringify(request), cuts), ''),
  })),
  fc.tuple(chunkStart, storingRequest, cutPoints).map(([start, request, cuts]) => ({
    kind: 'chunk stream among the headers',
    bytes: line('PRSERVICE 1.0', start, ...textPiecesOf(JSON.stringify(request), cuts), ''),
  })),
  fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.boolean()).map(([extra, protocol]) => ({
    kind: 'hello past the size limit',
    bytes: protocol
      ? Buffer.from(`PRSERVICE${' '.repeat(MAX_MESSAGE_BYTES + extra)}`)
      : line('PRSERVICE 1.0', `x-pad: ${'p'.repeat(MAX_MESSAGE_BYTES + extra)}`, ''),
  })),
);

/** A chunk stream opened inside the hello and never ended: the hello never completes. */
const unfinishedHello = fc
  .tuple(fc.constantFrom('PRSERVICE 1.0', ' {"chunk-stream": null}'), chunkStart, fc.array(headerLine, { maxLength: 3 }))
  .map(([first, start, headers]) => line(first, start, ...headers))
  .filter((bytes) => helloVerdict(bytes) === 'incomplete');

const badHello: fc.Arbitrary<BadFrame> = fc.oneof(
  {
    arbitrary: badHelloBytes
      .filter(({ bytes }) => helloVerdict(bytes) === 'refused')
      .map(({ kind, bytes }) => ({ kind: `hello: ${kind}`, bytes, outcome: 'refused' as const })),
    weight: 400,
  },
  {
    // A chunk stream opened inside the hello and never ended: the hello never completes.
    arbitrary: unfinishedHello.map((bytes) => ({ kind: 'hello: unfinished, client leaves', bytes, outcome: 'silent' as const })),
    weight: 20,
  },
  {
    // Each holds a connection for the whole handshake timeout: kept rare.
    arbitrary: unfinishedHello.map((bytes) => ({ kind: 'hello: unfinished, timed out', bytes, outcome: 'dropped' as const })),
    weight: 1,
  },
);

/**
 * prserv takes a connection whose first byte is `{` for its JSON-RPC envelope (§11.1), whose
 * scripts come further down. asyncrpc hellos start with anything else (a protocol line may start
 * with white space).
 */
const opensJsonRpc = (bytes: Buffer) => bytes[0] === 0x7b;

/** What identifies a JSON-RPC request in its response (§11.1). */
type JsonRpcId = string | number;

/** A JSON-RPC response due: the id it must carry, and its result or the error codes allowed. */
interface RpcExpected {
  readonly id: JsonRpcId | null;
  readonly result?: unknown;
  readonly codes?: readonly string[];
}

/** One connection: what the client sends, and what it must get back. */
interface Script {
  readonly kind: string;
  readonly protocol: 'asyncrpc' | 'jsonrpc';
  readonly bytes: Buffer;
  /** Where the bytes are split across writes, so that frames straddle TCP segments. */
  readonly cuts: readonly number[];
  /** asyncrpc: lines the server must send first, in order: '' for the end of its headers, else a JSON answer. */
  readonly expected: readonly ('' | { readonly answer: unknown })[];
  /** JSON-RPC: the responses due, in any order. */
  readonly responses: readonly RpcExpected[];
  /** JSON-RPC: codes of the null-id error that must come last (refused), or may (silent). */
  readonly lastCodes: readonly string[];
  /**
   * After the answers due: one error and the close (refused), at most one error (silent), the
   * close (answered), or the close at the hello timeout (dropped).
   */
  readonly outcome: Outcome | 'answered';
  /**
   * When the client shuts down its sending side: at once after its last write, once the answers
   * due are in (after sending `followUp`, whose answer is due too), or never.
   */
  readonly halfClose: 'at-once' | 'after-answers' | 'never';
  readonly followUp?: { readonly bytes: Buffer; readonly response: RpcExpected };
  /** Valid requests in `bytes`, besides the bad frames. */
  readonly validFrames: number;
  /** Bad frames (asyncrpc) or lines (JSON-RPC) in `bytes`. */
  readonly badFrames: number;
  /** What each bad JSON-RPC line was, for the report. */
  readonly lineKinds: readonly string[];
}

const asyncrpcScript = (
  fields: Pick<Script, 'kind' | 'bytes' | 'cuts' | 'expected' | 'outcome' | 'halfClose' | 'validFrames' | 'badFrames'>,
): Script => ({ ...fields, protocol: 'asyncrpc', responses: [], lastCodes: [], lineKinds: [] });

/** Where U+FEFF stands in `text`, in code points: cuts there start a piece with it. */
const bomPoints = (text: string) => Array.from(text).flatMap((char, index) => (char === '\ufeff' ? [index] : []));
const chunkedRequest = fc
  .tuple(validRequest, fc.option(fc.tuple(chunkStart, cutPoints, fc.boolean()), { freq: 4 }))
  .map(([request, chunked]) => {
    if (!chunked) return { exchange: request, bytes: line(request.text) };
    const [start, cuts, atBom] = chunked;
    const pieces = textPiecesOf(request.text, atBom ? [...cuts, ...bomPoints(request.text)] : cuts);
    return { exchange: request, bytes: Buffer.concat([line(start, ...pieces), line('')]) };
  });

/** How a client leaves after a bad frame: waiting for the close, or shutting down its side at once. */
const halfCloseAfter = (outcome: Outcome) =>
  outcome === 'dropped'
    ? fc.constant('never' as const)
    : outcome === 'silent'
      ? fc.constantFrom('at-once' as const, 'after-answers' as const)
      : fc.constantFrom('at-once' as const, 'never' as const);

const asyncrpcScripts = [
  {
    arbitrary: fc
      .tuple(validHello, fc.array(chunkedRequest, { maxLength: 3 }), badFrame, fc.option(storingLine), cutPoints)
      .chain(([hello, prefix, bad, trailer, cuts]) =>
        halfCloseAfter(bad.outcome).map((halfClose) => {
          // Requests behind a refused frame must be neither answered nor stored (§9.2).
          const behind = bad.outcome === 'refused' && trailer ? [trailer] : [];
          return asyncrpcScript({
            kind: bad.kind,
            bytes: Buffer.concat([hello.bytes, ...prefix.map((request) => request.bytes), bad.bytes, ...behind]),
            cuts,
            expected: [...(hello.answered ? ([''] as const) : []), ...prefix.map(({ exchange: sent }) => ({ answer: sent.answer }))],
            outcome: bad.outcome,
            halfClose,
            validFrames: prefix.length + behind.length,
            badFrames: 1,
          });
        }),
      ),
    weight: 8,
  },
  {
    arbitrary: fc
      .tuple(
        badHello.filter(({ bytes }) => !opensJsonRpc(bytes)),
        fc.option(storingLine),
        cutPoints,
      )
      .chain(([bad, trailer, cuts]) =>
        halfCloseAfter(bad.outcome).map((halfClose) => {
          // A good hello and a storing request after a refused hello: still nothing may come of them.
          const behind = bad.outcome === 'refused' && trailer ? [line('PRSERVICE 1.0', ''), trailer] : [];
          return asyncrpcScript({
            kind: bad.kind,
            bytes: Buffer.concat([bad.bytes, ...behind]),
            cuts,
            expected: [],
            outcome: bad.outcome,
            halfClose,
            validFrames: behind.length > 0 ? 1 : 0,
            badFrames: 1,
          });
        }),
      ),
    weight: 2,
  },
  {
    // Valid requests pipelined, then the client shuts down its sending side at once: every answer
    // is still due, then the close.
    arbitrary: fc.tuple(validHello, fc.array(chunkedRequest, { minLength: 1, maxLength: 6 }), cutPoints).map(([hello, requests, cuts]) =>
      asyncrpcScript({
        kind: 'pipelined, then half-closed',
        bytes: Buffer.concat([hello.bytes, ...requests.map((request) => request.bytes)]),
        cuts,
        expected: [...(hello.answered ? ([''] as const) : []), ...requests.map(({ exchange: sent }) => ({ answer: sent.answer }))],
        outcome: 'answered',
        halfClose: 'at-once',
        validFrames: requests.length,
        badFrames: 0,
      }),
    ),
    weight: 1,
  },
];

// ---------------------------------------------------------------------------------------------
// JSON-RPC connections (§11): valid requests and bad lines, each answered with its id, the
// connection open throughout; often a last line that is not JSON, which closes it.

/** `get-stats` answers counts that change: any stats object will do (§4.8). */
const STATS = Symbol('stats');
const ENVELOPE_MEMBERS = ['id', 'method', 'params', 'jsonrpc'];
const ID_PLACEHOLDER = '@@fuzzed-id@@';

/** `message` as text, each placeholder replaced by raw JSON text spelled as given. */
function withRaws(message: unknown, raws: Readonly<Record<string, string>>): string {
  let text = JSON.stringify(message);
  for (const [placeholder, raw] of Object.entries(raws)) text = text.replace(JSON.stringify(placeholder), () => raw);
  return text;
}

/** The id a response to `message` carries (§11.1): null unless a string of at most 256 characters or a finite number. */
function readableId(message: unknown): JsonRpcId | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return null;
  const { id } = message as Record<string, unknown>;
  if (typeof id === 'string' && id.length <= 256) return id;
  return typeof id === 'number' && Number.isFinite(id) ? id : null;
}

/**
 * How a request's id is spelled, from its position on the connection (so ids are unique on it):
 * integers, fractions, odd spellings, huge numbers, strings with any text, the longest string.
 */
const idSpelling: fc.Arbitrary<(index: number) => string> = fc.oneof(
  fc.constant((index: number) => String(index)),
  fc.constant((index: number) => String(-index - 0.5)),
  fc.constant((index: number) => `${index}.000e0`),
  fc.constant((index: number) => `${index + 1}e300`),
  anyText({ maxLength: 20 }).map((text) => (index: number) => JSON.stringify(`${index}:${text}`)),
  fc.constant((index: number) => JSON.stringify(`${index}:`.padEnd(256, 'i'))),
);
/** Ids no response can carry back: the response's id is null (§11.3). */
const unreadableId = fc.constantFrom(
  'true',
  'false',
  'null',
  '{}',
  '[]',
  '[1]',
  '{"id":1}',
  '1e400',
  '-1e400',
  JSON.stringify('x'.repeat(257)),
  JSON.stringify('😀'.repeat(129)),
);

/** One line of a JSON-RPC script, given how its id is spelled, and the response it is due. */
interface RpcLine {
  readonly kind: string;
  readonly valid: boolean;
  readonly text: (id: string) => string;
  /** False when the response's id must be null. */
  readonly idReadable: boolean;
  readonly result?: unknown;
  readonly codes?: readonly string[];
}

const envelope = (id: string, members: Record<string, unknown>, raws: Readonly<Record<string, string>> = {}) =>
  withRaws({ id: ID_PLACEHOLDER, ...members }, { ...raws, [ID_PLACEHOLDER]: id });

const rpcValid: fc.Arbitrary<RpcLine> = fc
  .tuple(
    fc.oneof({ arbitrary: validRequest, weight: 9 }, fc.constant(exchange('get-stats', {}, STATS))),
    fc.constantFrom('plain', 'id last', 'jsonrpc member', 'no params'),
  )
  .map(([request, style]) => ({
    kind: 'valid',
    valid: true,
    idReadable: true,
    result: request.answer,
    text: (id: string) => {
      // Absent or null parameters are none (§11.1), as `{}` is.
      const noParams = style === 'no params' && (request.params === null || JSON.stringify(request.params) === '{}');
      const members = { method: request.method, ...(noParams ? {} : { params: request.params }) };
      if (style === 'id last') return withRaws({ ...members, id: ID_PLACEHOLDER }, { [ID_PLACEHOLDER]: id });
      return envelope(id, style === 'jsonrpc member' ? { jsonrpc: '2.0', ...members } : members);
    },
  }));

/** The templates with import values as strings: the envelope refuses integers (§11.1). */
const rpcTemplate = template.map((t) =>
  typeof t.params.value === 'number' ? { ...t, params: { ...t.params, value: String(t.params.value) } } : t,
);
const aRequest = fc.oneof(
  rpcTemplate.map((t) => ({ method: t.method, params: t.params as unknown })),
  validRequest.map((request) => ({ method: request.method, params: request.params })),
);
const invalidRequest = (kind: string, idReadable: boolean, text: (id: string) => string): RpcLine => ({
  kind,
  valid: false,
  idReadable,
  codes: ['INVALID_REQUEST'],
  text,
});
const notAnObject = (raw: string) => {
  const value = JSON.parse(raw) as unknown;
  return typeof value !== 'object' || value === null || Array.isArray(value);
};
const strayMember = fc
  .oneof(
    fc.constantFrom(CHUNK_STREAM_KEY, '__proto__', 'constructor', 'ID', 'Id', 'Method', 'param', 'result', 'error', '', 'id '),
    anyText({ maxLength: 12 }),
  )
  .filter((name) => !ENVELOPE_MEMBERS.includes(name));

/** Bad envelopes (§11.1): answered INVALID_REQUEST, with the id when one can be read. */
const rpcBadEnvelope: fc.Arbitrary<RpcLine> = fc.oneof(
  aRequest.map(({ method, params }) => invalidRequest('envelope without id', false, () => JSON.stringify({ method, params }))),
  fc
    .tuple(aRequest, unreadableId)
    .map(([{ method, params }, raw]) => invalidRequest('envelope with an unreadable id', false, () => envelope(raw, { method, params }))),
  aRequest.map(({ params }) => invalidRequest('envelope without method', true, (id) => envelope(id, { params }))),
  fc
    .tuple(aRequest, rawJson.filter((raw) => typeof JSON.parse(raw) !== 'string'))
    .map(([{ params }, raw]) =>
      invalidRequest('method not a string', true, (id) => envelope(id, { method: PLACEHOLDER, params }, { [PLACEHOLDER]: raw })),
    ),
  fc
    .tuple(aRequest, strayMember, fc.jsonValue({ maxDepth: 1 }))
    .map(([{ method, params }, name, value]) =>
      // fromEntries: a `__proto__` member is then one of its own, as JSON.parse makes it.
      invalidRequest('envelope with a stray member', true, (id) =>
        envelope(id, Object.fromEntries([['method', method], ['params', params], [name, value]])),
      ),
    ),
  // Batches, strings, numbers, deep arrays, objects without id: no id to answer to.
  fc
    .oneof(
      rawJson.filter((raw) => notAnObject(raw) || readableId(JSON.parse(raw)) === null),
      rpcTemplate.map((t) => JSON.stringify([{ id: 1, method: t.method, params: t.params }])),
    )
    .map((raw) => invalidRequest('not an envelope', false, () => raw)),
  // A chunk-stream line is an ordinary line here (§11.1): no stream begins.
  chunkStart.map((start) => invalidRequest('chunk-stream line', readableId(JSON.parse(start)) !== null, () => start)),
);

/** The error codes of a parameter refused in the envelope (§4.7, §9.3, §11.1), or undefined when it is accepted. */
function rpcCodes(kind: FieldKind, value: unknown): readonly string[] | undefined {
  switch (kind) {
    case 'flag':
      return acceptedFlag(value) ? undefined : ['INVALID_PARAMS'];
    case 'filter':
      if (acceptedFilter(value)) return undefined;
      return typeof value === 'string' ? ['INVALID_ARGUMENT'] : ['INVALID_PARAMS'];
    case 'key':
      if (acceptedKeyPart(value)) return undefined;
      if (typeof value !== 'string') return ['INVALID_PARAMS'];
      // §9.3 names an empty key under both codes.
      return value === '' ? ['INVALID_PARAMS', 'INVALID_ARGUMENT'] : ['INVALID_ARGUMENT'];
    case 'import-value':
      // Revisions are strings in the envelope: a number is refused, even a valid integer.
      if (typeof value !== 'string') return ['INVALID_PARAMS'];
      if (acceptedImportValue(value)) return undefined;
      return value === '' ? ['INVALID_PARAMS', 'INVALID_ARGUMENT'] : ['INVALID_ARGUMENT'];
  }
}

const paramsLine = (kind: string, method: string, params: unknown, codes: readonly string[], raw?: string): RpcLine => ({
  kind,
  valid: false,
  idReadable: true,
  codes,
  // `raw`, when given, takes the place of the placeholder in `params`, spelled as given.
  text: (id) => envelope(id, { method, params }, raw === undefined ? {} : { [PLACEHOLDER]: raw }),
});

/** Requests whose envelope is good but whose method or parameters are not; often a storing one. */
const rpcBadRequest: fc.Arbitrary<RpcLine> = fc.oneof(
  {
    arbitrary: fc
      .tuple(methodName.filter(isUnknownMethod), fc.oneof(aRequest.map(({ params }) => params), fc.jsonValue({ maxDepth: 2 })))
      .map(([method, params]) => paramsLine('unknown method', method, params, ['UNKNOWN_METHOD'])),
    weight: 2,
  },
  {
    arbitrary: fc
      .tuple(fc.constantFrom(...KNOWN_METHODS), rawJson.filter((raw) => JSON.parse(raw) !== null && notAnObject(raw)))
      .map(([method, raw]) => paramsLine('parameters not an object', method, PLACEHOLDER, ['INVALID_PARAMS'], raw)),
    weight: 1,
  },
  {
    // One parameter of the wrong type or value: the parser refuses some, the engine others.
    arbitrary: fc
      .tuple(rpcTemplate, fc.oneof(rawJson, numberLiteral), fc.nat())
      .map(([{ method, params, fields }, raw, pick]) => {
        const names = Object.keys(fields);
        if (names.length === 0) return undefined;
        const name = names[pick % names.length]!;
        const codes = rpcCodes(fields[name]!, JSON.parse(raw) as unknown);
        return codes && paramsLine('bad parameter', method, { ...params, [name]: PLACEHOLDER }, codes, raw);
      })
      .filter((request) => request !== undefined),
    weight: 4,
  },
  {
    arbitrary: fc
      .tuple(rpcTemplate, fc.nat())
      .map(([{ method, params, fields }, pick]) => {
        const required = Object.keys(fields).filter((name) => fields[name] === 'key' || fields[name] === 'import-value');
        if (required.length === 0) return undefined;
        const { [required[pick % required.length]!]: _dropped, ...rest } = params;
        return paramsLine('missing parameter', method, rest, ['INVALID_PARAMS']);
      })
      .filter((request) => request !== undefined),
    weight: 1,
  },
  {
    // Values only the engine refuses (and integer import values, which the envelope refuses).
    arbitrary: fc
      .tuple(rpcTemplate, refusedKey, fc.oneof(badRevision, fc.nat().map(Number)), fc.nat())
      .map(([{ method, params, fields }, key, revision, pick]) => {
        const names = Object.keys(fields).filter((name) => fields[name] !== 'flag');
        if (names.length === 0) return undefined;
        const name = names[pick % names.length]!;
        const value = fields[name] === 'import-value' ? revision : key;
        const codes = rpcCodes(fields[name]!, value);
        return codes && paramsLine('value the engine refuses', method, { ...params, [name]: value }, codes);
      })
      .filter((request) => request !== undefined),
    weight: 3,
  },
);

/** The line that ends a JSON-RPC connection: not JSON, not UTF-8, or past the limit (§11.3). */
interface RpcTerminal {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly code: 'MALFORMED_MESSAGE' | 'MESSAGE_TOO_LARGE';
}
const malformed = (kind: string) => (bytes: Buffer) => ({ kind, bytes: line(bytes), code: 'MALFORMED_MESSAGE' as const });
const validEnvelopeText = fc.tuple(rpcValid, fc.nat({ max: 99 })).map(([request, id]) => Buffer.from(request.text(String(id))));
const rpcTerminal: fc.Arbitrary<RpcTerminal> = fc.oneof(
  garbageText.map(({ bytes }) => malformed('garbage text')(bytes)),
  binaryBytes.map(({ bytes }) => malformed('binary bytes')(bytes)),
  fc
    .tuple(
      fc.oneof(validEnvelopeText, storingRequest.map((request) => Buffer.from(JSON.stringify(request)))),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
    )
    .map(([text, changes]) => withoutNewlines(changes.reduce(mutate, text)))
    .filter(notJson)
    .map(malformed('mutated envelope')),
  fc
    .tuple(validEnvelopeText, fc.nat())
    .map(([text, at]) => text.subarray(0, at % text.length))
    .map(malformed('truncated envelope')),
  // Bytes no UTF-8 text has, inside a string of a valid envelope: an unpaired surrogate spelled
  // out, an overlong NUL, a lone continuation byte, a cut sequence, bytes never used.
  fc
    .tuple(validEnvelopeText, fc.constantFrom('eda080', 'edbfbf', 'c080', '80', 'e282', 'ff', 'fe', 'f4908080'), fc.nat())
    .map(([text, hex, pick]) => {
      const quotes = [...text.keys()].filter((at) => text[at] === 0x22);
      const at = quotes[pick % quotes.length]! + 1;
      return Buffer.concat([text.subarray(0, at), Buffer.from(hex, 'hex'), text.subarray(at)]);
    })
    .map(malformed('not UTF-8')),
  fc.constant(malformed('empty line')(Buffer.alloc(0))),
  fc.tuple(validEnvelopeText, fc.integer({ min: 1, max: 10_000 }), fc.boolean()).map(([text, extra, ended]) => {
    const padded = Buffer.concat([text, Buffer.from(' '.repeat(MAX_MESSAGE_BYTES + extra - text.length))]);
    return { kind: 'line past the size limit', bytes: ended ? line(padded) : padded, code: 'MESSAGE_TOO_LARGE' as const };
  }),
);

/** A storing request behind the last line: never answered, never stored. */
const rpcTrailer = storingRequest.map((request) => {
  const [method, params] = Object.entries(request)[0]!;
  return line(JSON.stringify({ id: 'behind', method, params }));
});
const PROBE_ID = 'probe';
/** Opens a connection whose every line is something else than an object. */
const FIRST_PING = {
  rpc: { kind: 'valid', valid: true, idReadable: true, text: () => '' } satisfies RpcLine,
  text: '{"id":"first","method":"ping"}',
  response: { id: 'first', result: { alive: true }, codes: undefined } satisfies RpcExpected,
};
const PROBE = { bytes: line(JSON.stringify({ id: PROBE_ID, method: 'ping' })), response: { id: PROBE_ID, result: { alive: true } } };

const rpcScript: fc.Arbitrary<Script> = fc
  .tuple(
    fc.array(
      fc.oneof({ arbitrary: rpcValid, weight: 5 }, { arbitrary: rpcBadEnvelope, weight: 2 }, { arbitrary: rpcBadRequest, weight: 4 }),
      { minLength: 1, maxLength: 10 },
    ),
    fc.array(idSpelling, { minLength: 10, maxLength: 10 }),
    fc.oneof(
      { arbitrary: rpcTerminal.map((terminal) => ({ type: 'terminal' as const, terminal })), weight: 4 },
      { arbitrary: fc.constant({ type: 'open' as const }), weight: 5 },
      {
        // A bad line the client never ends before it half-closes: nothing is due for it.
        arbitrary: fc
          .oneof(garbageText, binaryBytes, validEnvelopeText.map(content('valid')))
          .map(({ bytes }) => ({ type: 'unterminated' as const, bytes })),
        weight: 1,
      },
    ),
    fc.option(rpcTrailer),
    fc.boolean(),
    cutPoints,
  )
  .filter(([lines, , ending]) => ending.type !== 'open' || lines.some((rpc) => !rpc.valid))
  .map(([lines, spellings, ending, trailer, early, cuts]) => {
    const sent = lines.map((rpc, index) => {
      const idText = spellings[index]!(index);
      const text = rpc.text(idText);
      const id = rpc.idReadable ? (JSON.parse(idText) as JsonRpcId) : null;
      return { rpc, text, response: { id, result: rpc.result, codes: rpc.codes } satisfies RpcExpected };
    });
    // The first byte must open an object, or the connection speaks asyncrpc.
    const first = sent.findIndex(({ text }) => text.startsWith('{'));
    const ordered = first === -1 ? sent : [sent[first]!, ...sent.slice(0, first), ...sent.slice(first + 1)];
    if (first === -1) ordered.unshift(FIRST_PING);
    const body = Buffer.concat(ordered.map(({ text }) => line(text)));
    const bad = ordered.filter(({ rpc }) => !rpc.valid);
    const common = {
      protocol: 'jsonrpc' as const,
      cuts,
      expected: [],
      responses: ordered.map(({ response }) => response),
      validFrames: ordered.length - bad.length,
      lineKinds: bad.map(({ rpc }) => rpc.kind),
    };
    if (ending.type === 'terminal') {
      return {
        ...common,
        kind: `json-rpc, ends with: ${ending.terminal.kind}`,
        bytes: Buffer.concat([body, ending.terminal.bytes, ...(trailer ? [trailer] : [])]),
        lastCodes: [ending.terminal.code],
        outcome: 'refused' as const,
        halfClose: early ? ('at-once' as const) : ('never' as const),
        validFrames: common.validFrames + (trailer ? 1 : 0),
        badFrames: bad.length + 1,
      };
    }
    if (ending.type === 'unterminated') {
      return {
        ...common,
        kind: 'json-rpc, ends with an unterminated line',
        bytes: Buffer.concat([body, withoutNewlines(ending.bytes)]),
        lastCodes: ['MALFORMED_MESSAGE'],
        outcome: 'silent' as const,
        halfClose: early ? ('at-once' as const) : ('after-answers' as const),
        badFrames: bad.length + 1,
      };
    }
    // Open to the end: the client half-closes at once, or checks the connection still serves first.
    return {
      ...common,
      kind: early ? 'json-rpc, half-closed at once' : 'json-rpc, open to the end',
      bytes: body,
      lastCodes: [],
      outcome: 'answered' as const,
      halfClose: early ? ('at-once' as const) : ('after-answers' as const),
      followUp: early ? undefined : PROBE,
      badFrames: bad.length,
    };
  });

const script: fc.Arbitrary<Script> = fc.oneof(...asyncrpcScripts, { arbitrary: rpcScript, weight: 5 });

// ---------------------------------------------------------------------------------------------
// Running a script on its own connection.

interface Received {
  readonly text: string;
  readonly closedBy: 'server' | 'timeout';
}

async function play(port: number, script: Script): Promise<Received> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.setNoDelay(true);
  const chunks: Buffer[] = [];
  let newlines = 0;
  let closed = false;
  const closing = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  // The server may reset a connection it has refused while we still write; what it sent first counts.
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    for (const byte of chunk) if (byte === 0x0a) newlines += 1;
  });
  await new Promise<void>((resolve) => (socket.connecting ? socket.once('connect', resolve).once('close', resolve) : resolve()));
  let start = 0;
  for (const cut of [...new Set(script.cuts.map((cut) => cut % (script.bytes.length + 1)))].sort((a, b) => a - b)) {
    if (closed) break;
    socket.write(script.bytes.subarray(start, cut));
    start = cut;
    await nextTurn();
  }
  if (!closed) socket.write(script.bytes.subarray(start));
  const limit = script.outcome === 'dropped' ? HANDSHAKE_TIMEOUT_MS + 10_000 : 20_000;
  const deadline = Date.now() + limit;
  if (script.halfClose === 'at-once') {
    // Everything is sent: the answers due must all come even so.
    socket.end();
  } else if (script.halfClose === 'after-answers') {
    const due = script.protocol === 'asyncrpc' ? script.expected.length : script.responses.length;
    while (!closed && newlines < due && Date.now() < deadline) await delay(2);
    // The connection must still serve: one more request, then leave.
    if (script.followUp && !closed) socket.write(script.followUp.bytes);
    socket.end();
  }
  const how = await Promise.race([closing.then(() => 'server' as const), delay(Math.max(deadline - Date.now(), 0), 'timeout' as const)]);
  socket.destroy();
  return { text: Buffer.concat(chunks).toString('utf8'), closedBy: how };
}

/** Why the connection went wrong, or undefined when it went as the spec says. */
function judge(script: Script, received: Received): string | undefined {
  if (received.closedBy === 'timeout') return 'the connection was still open at the deadline';
  if (received.text !== '' && !received.text.endsWith('\n')) return 'the server sent a partial line';
  const lines = received.text === '' ? [] : received.text.slice(0, -1).split('\n');
  if (script.protocol === 'jsonrpc') return judgeJsonRpc(script, lines);
  for (const [index, expected] of script.expected.entries()) {
    const got = lines[index];
    if (got === undefined) return `answer ${index + 1} of ${script.expected.length} is missing`;
    if (expected === '') {
      if (got !== '') return `expected the empty line that ends the server's headers, got ${got}`;
    } else if (!sameAnswer(parse(got), expected.answer)) {
      return `answer ${index + 1} should be ${JSON.stringify(expected.answer)}, got ${got}`;
    }
  }
  const rest = lines.slice(script.expected.length);
  if (script.outcome === 'refused') {
    if (rest.length !== 1) return `expected one invoke-error after the answers, got ${rest.length} more lines`;
    return checkInvokeError(rest[0]!);
  }
  if (script.outcome === 'answered') {
    return rest.length === 0 ? undefined : `expected the close after the answers, got ${JSON.stringify(rest)}`;
  }
  // Nothing is due for an unfinished frame; an invoke-error saying so would be fair.
  if (rest.length > 1 || (rest.length === 1 && checkInvokeError(rest[0]!) !== undefined)) {
    return `expected nothing (or an invoke-error) for an unfinished frame, got ${JSON.stringify(rest)}`;
  }
  return undefined;
}

const idKey = (id: JsonRpcId | null) => (id === null ? 'null' : `${typeof id}:${String(id)}`);

/** Each response due exactly once, in any order, then the last error where one is due (§11.2, §11.3). */
function judgeJsonRpc(script: Script, lines: string[]): string | undefined {
  const all = script.followUp ? [...script.responses, script.followUp.response] : script.responses;
  const due = new Map<string, RpcExpected[]>();
  for (const expected of all) due.set(idKey(expected.id), [...(due.get(idKey(expected.id)) ?? []), expected]);
  const body = [...lines];
  const last = script.outcome === 'refused' || (script.outcome === 'silent' && body.length === all.length + 1) ? body.pop() : undefined;
  for (const text of body) {
    const response = rpcResponse(text);
    if (typeof response === 'string') return response;
    const expected = due.get(idKey(response.id))?.shift();
    if (!expected) return `a response nobody is due (or a second one): ${text}`;
    const problem = expected.codes
      ? checkRpcError(response, expected.codes, text)
      : response.error !== null
        ? `expected a result, got ${text}`
        : expected.result === STATS
          ? isStats(response.result)
            ? undefined
            : `expected stats, got ${text}`
          : sameAnswer(response.result, expected.result)
            ? undefined
            : `expected the result ${JSON.stringify(expected.result)}, got ${text}`;
    if (problem) return problem;
  }
  const missing = [...due.values()].flat();
  if (missing.length > 0) {
    const first = JSON.stringify(missing[0]!.id);
    return `${missing.length} of ${all.length} responses missing, as the one with id ${first}; got ${JSON.stringify(lines)}`;
  }
  if (script.outcome === 'refused' && last === undefined) return 'expected a last error with a null id, got nothing more';
  if (last !== undefined) {
    const response = rpcResponse(last);
    if (typeof response === 'string') return response;
    if (response.id !== null) return `expected the last error with a null id, got ${last}`;
    return checkRpcError(response, script.lastCodes, last);
  }
  return undefined;
}

interface RpcResponse {
  readonly id: JsonRpcId | null;
  readonly result: unknown;
  readonly error: { readonly code: unknown; readonly message: unknown } | null;
}

/** A response line as §11.1 has it, or what is wrong with it. */
function rpcResponse(text: string): RpcResponse | string {
  const value = parse(text);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `a response must be an object, got ${text}`;
  const keys = Object.keys(value).sort();
  if (JSON.stringify(keys) !== '["error","id","result"]') return `a response has id, result and error, got ${text}`;
  const { id, result, error } = value as Record<string, unknown>;
  if (id !== null && typeof id !== 'string' && typeof id !== 'number') return `bad response id in ${text}`;
  if (error !== null && (typeof error !== 'object' || Array.isArray(error) || result !== null)) return `bad response error in ${text}`;
  return { id, result, error: error as RpcResponse['error'] };
}

function checkRpcError(response: RpcResponse, codes: readonly string[], text: string): string | undefined {
  const { error } = response;
  if (error === null) return `expected an error (${codes.join(' or ')}), got ${text}`;
  if (typeof error.code !== 'string' || !codes.includes(error.code)) return `expected the code ${codes.join(' or ')}, got ${text}`;
  if (typeof error.message !== 'string' || error.message.length === 0) return `an error needs a message: ${text}`;
  return leaks(error.message) ? `the refusal leaks or hides its cause: ${text}` : undefined;
}

const isStats = (value: unknown) => {
  const stats = value as { since?: unknown; requests?: unknown } | null;
  return typeof stats === 'object' && stats !== null && typeof stats.since === 'string' && typeof stats.requests === 'object';
};

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { unparsable: text };
  }
}

/** Deep equality, export rows in any order (§4.6: clients must not rely on it). */
function sameAnswer(got: unknown, expected: unknown): boolean {
  const canonical = (value: unknown): string => {
    if (typeof value === 'object' && value !== null && 'datainfo' in value && Array.isArray(value.datainfo)) {
      return JSON.stringify({ ...value, datainfo: value.datainfo.map((row) => JSON.stringify(row)).sort() });
    }
    return JSON.stringify(value);
  };
  return canonical(got) === canonical(expected);
}

/**
 * Bad input is the client's mistake: it must be named, not reach the database or crash a handler
 * (§9.1). Quoted input is left out of the check: it may say anything.
 */
const leaks = (message: string) => /internal server error|database|sql/i.test(message.replace(/"(?:[^"\\]|\\.)*"/g, '""'));

function checkInvokeError(text: string): string | undefined {
  const message = (parse(text) as { 'invoke-error'?: { message?: unknown } } | null)?.['invoke-error']?.message;
  if (typeof message !== 'string' || message.length === 0) return `expected an invoke-error, got ${text}`;
  if (leaks(JSON.stringify(message))) return `the refusal leaks or hides its cause: ${text}`;
  return undefined;
}

/** Scripts drawn from `seed`, in batches so that large frames are not all held at once. */
function* scripts(count: number, seed: number): Generator<Script> {
  for (let done = 0, batch = 0; done < count; batch += 1) {
    const size = Math.min(BATCH, count - done);
    yield* fc.sample(script, { numRuns: size, seed: seed + batch });
    done += size;
  }
}

interface FuzzReport {
  readonly connections: Record<Script['protocol'], number>;
  readonly badFrames: Record<Script['protocol'], number>;
  readonly validFrames: number;
  readonly byKind: Record<string, number>;
  readonly failures: string[];
}

async function fuzz(port: number, count: number, seed: number): Promise<FuzzReport> {
  const source = scripts(count, seed);
  const byKind: Record<string, number> = {};
  const connections = { asyncrpc: 0, jsonrpc: 0 };
  const badFrames = { asyncrpc: 0, jsonrpc: 0 };
  const failures: string[] = [];
  let validFrames = 0;
  const worker = async () => {
    for (let next = source.next(); !next.done; next = source.next()) {
      const current = next.value;
      const problem = judge(current, await play(port, current));
      connections[current.protocol] += 1;
      badFrames[current.protocol] += current.badFrames;
      validFrames += current.validFrames;
      for (const kind of [current.kind, ...current.lineKinds.map((line) => `json-rpc line: ${line}`)]) {
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
      if (problem && failures.length < 10) {
        const shown = current.bytes.subarray(0, 600).toString('latin1');
        const sent = current.bytes.length > 600 ? `${shown}… (${current.bytes.length} bytes)` : shown;
        failures.push(`${current.kind} (seed ${seed}, half-close ${current.halfClose}): ${problem}; sent ${JSON.stringify(sent)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { connections, badFrames, validFrames, byKind, failures };
}

// ---------------------------------------------------------------------------------------------
// The clean client: its own packages, and a model of what the server must answer it (§6.1, §6.2).

interface CleanRun {
  /** Requests answered while the fuzzing ran. */
  operations: number;
  failure?: string;
  /** Every revision stored for each checksum, as the model says. */
  readonly rows: Map<string, number[]>;
}

const cleanOperation = fc.record({
  kind: fc.constantFrom('new', 'again', 'again', 'test', 'test-unknown', 'max', 'test-package'),
  history: fc.boolean(),
  pick: fc.nat(),
});

/** The clean clients: modern and legacy asyncrpc, and JSON-RPC. */
const CLEAN_CLIENTS = [
  { legacy: false, protocol: 'asyncrpc' },
  { legacy: true, protocol: 'asyncrpc' },
  { legacy: false, protocol: 'jsonrpc' },
] as const;

/**
 * Requests on one package of its own until `fuzzing()` turns false, each answer checked against
 * the model. A legacy client sends no `history`, so the server's default (no-history) applies.
 */
async function runCleanClient(
  address: string,
  version: string,
  { legacy, protocol }: (typeof CLEAN_CLIENTS)[number],
  seed: number,
  fuzzing: () => boolean,
): Promise<CleanRun> {
  const pkg = { version, pkgarch: 'clean-arch' };
  const client: PrClient = createPrClient({ address, legacy, protocol, requestTimeoutMs: 30_000 });
  const run: CleanRun = { operations: 0, rows: new Map() };
  // The package's greatest revision; -1 while it has none. Revisions here are plain integers.
  let packageMax = -1;
  const max = () => packageMax;
  const known: string[] = [];
  try {
    for (let batch = 0; fuzzing(); batch += 1) {
      for (const operation of fc.sample(cleanOperation, { numRuns: 50, seed: seed + batch })) {
        if (!fuzzing()) break;
        const { kind, pick } = operation;
        const history = operation.history && !legacy;
        const checksum = kind === 'new' || known.length === 0 ? `c${run.rows.size}` : known[pick % known.length]!;
        const values = run.rows.get(checksum);
        const args = { ...pkg, checksum, history: operation.history };
        let got: unknown;
        let want: unknown;
        if (kind === 'new' || kind === 'again') {
          if (!values) want = max() + 1;
          else if (history) want = Math.min(...values);
          else want = Math.max(...values) === max() ? max() : max() + 1;
          got = await client.getPr(args);
          if (!values) known.push(checksum);
          if (!values?.includes(want as number)) {
            run.rows.set(checksum, [...(values ?? []), want as number]);
            packageMax = Math.max(packageMax, want as number);
          }
        } else if (kind === 'test' || kind === 'test-unknown') {
          const asked = kind === 'test' ? args : { ...args, checksum: `never-${pick}` };
          const held = run.rows.get(asked.checksum);
          want = held ? (history ? Math.min(...held) : Math.max(...held)) : null;
          got = await client.testPr(asked);
        } else if (kind === 'max') {
          want = max() >= 0 ? max() : null;
          got = await client.maxPackagePr(pkg);
        } else {
          want = max() >= 0;
          got = await client.testPackage(pkg);
        }
        const expected = typeof want === 'number' ? String(want) : want;
        if (got !== expected) {
          run.failure = `${kind} ${JSON.stringify(args)} answered ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`;
          return run;
        }
        if (fuzzing()) run.operations += 1;
      }
    }
  } catch (error) {
    run.failure = `failed after ${run.operations} operations: ${String(error)}`;
  } finally {
    await client.close();
  }
  return run;
}

// ---------------------------------------------------------------------------------------------

/** Every row, as the engine exports them, sorted. */
async function exportedRows(store: PrStore): Promise<string[]> {
  const rows = await store.exportRows({ history: true });
  return rows.map((row) => JSON.stringify([row.version, row.pkgarch, row.checksum, row.value])).sort();
}

/** Every row as PostgreSQL holds it, read past the engine. */
async function tableRows(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: string; pkgarch: string; checksum: string; value: string }>(
      'SELECT version, pkgarch, checksum, value FROM prserv_revision',
    );
    return rows.map((row) => JSON.stringify([row.version, row.pkgarch, row.checksum, row.value])).sort();
  } finally {
    await client.end();
  }
}

const isClean = (row: string) => (JSON.parse(row) as string[])[0]!.startsWith(CLEAN_PREFIX);
const notClean = (rows: string[]) => rows.filter((row) => !isClean(row));

describe.each(STORE_KINDS)('the server under wire fuzzing on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;
  const complaints: string[] = [];
  // Bad input is the client's mistake and logged at info; warn or error would mean the server suffered.
  const logger: ServerLogger = {
    debug() {},
    info() {},
    warn: (fields, message) => complaints.push(`warn ${message} ${JSON.stringify(fields)}`),
    error: (fields, message) => complaints.push(`error ${message} ${JSON.stringify(fields)}`),
    isLevelEnabled: () => false,
  };

  beforeAll(async () => {
    database = await create(`wire_fuzz_${kind}`);
    store = await openPrStore({ database: database.url });
    for (const row of SEEDED_ROWS) await store.importOne(row);
    server = await startPrServer({
      engine: store,
      host: '127.0.0.1',
      port: 0,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      logger,
    });
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
    await database?.drop();
  });

  it(
    `survives ${FRAMES} bad frames, stores nothing from them and keeps answering a clean client`,
    async () => {
      const before = await exportedRows(store);
      const tableBefore = kind === 'postgres' ? await tableRows(database.url) : before;
      expect(notClean(before)).toHaveLength(SEEDED_ROWS.length);

      let fuzzing = true;
      const address = `127.0.0.1:${server.address.port}`;
      const clean = CLEAN_CLIENTS.map((options, index) =>
        runCleanClient(address, `${CLEAN_PREFIX}${kind}-${index}`, options, SEED + index, () => fuzzing),
      );
      const started = performance.now();
      const report = await fuzz(server.address.port, FRAMES, SEED).finally(() => {
        fuzzing = false;
      });
      const seconds = (performance.now() - started) / 1000;
      const cleanRuns = await Promise.all(clean);

      const { connections, badFrames } = report;
      console.log(
        `[wire fuzz] ${kind}: ${connections.asyncrpc} asyncrpc connections with ${badFrames.asyncrpc} bad frames, ` +
          `${connections.jsonrpc} JSON-RPC connections with ${badFrames.jsonrpc} bad lines ` +
          `(+${report.validFrames} valid requests around them) in ${seconds.toFixed(1)} s, seed ${SEED}; ` +
          `clean clients: ${cleanRuns.map((run) => run.operations).join(' + ')} requests; kinds: ${JSON.stringify(report.byKind)}`,
      );
      expect(report.failures).toEqual([]);
      expect(connections.asyncrpc + connections.jsonrpc).toBe(FRAMES);
      expect(cleanRuns.map((run) => run.failure)).toEqual(CLEAN_CLIENTS.map(() => undefined));
      // It worked alongside the fuzzing, not merely before or after it.
      if (FRAMES >= 1_000) for (const run of cleanRuns) expect(run.operations).toBeGreaterThanOrEqual(10);

      // Still serving, and every fuzzing connection is gone (none leaked).
      const probe = await RawSocket.greeted(server.address.port);
      probe.send({ ping: {} });
      expect(await probe.readMessage()).toEqual({ alive: true });
      probe.close();
      // The JSON-RPC envelope too (a half-closed connection gets its answer, then the close).
      const rpcProbe = await play(server.address.port, {
        kind: 'probe',
        protocol: 'jsonrpc',
        bytes: PROBE.bytes,
        cuts: [],
        expected: [],
        responses: [PROBE.response],
        lastCodes: [],
        outcome: 'answered',
        halfClose: 'at-once',
        validFrames: 1,
        badFrames: 0,
        lineKinds: [],
      });
      expect(rpcProbe).toEqual({ text: '{"id":"probe","result":{"alive":true},"error":null}\n', closedBy: 'server' });
      const deadline = Date.now() + 15_000;
      while (server.connections > 0 && Date.now() < deadline) await delay(50);
      expect(server.connections).toBe(0);
      expect(complaints).toEqual([]);

      const after = await exportedRows(store);
      expect(notClean(after)).toEqual(notClean(before));
      if (kind === 'postgres') expect(notClean(await tableRows(database.url))).toEqual(notClean(tableBefore));
      // The clean client's rows are exactly those its model expects.
      const cleanRows = cleanRuns.flatMap((run, index) =>
        [...run.rows].flatMap(([checksum, values]) =>
          values.map((value) => JSON.stringify([`${CLEAN_PREFIX}${kind}-${index}`, 'clean-arch', checksum, String(value)])),
        ),
      );
      expect(after.filter(isClean)).toEqual(cleanRows.sort());
    },
    120_000 + FRAMES * 10,
  );
});
