import { describe, expect, it } from 'vitest';
import { parseRequest, type PrEngine, type RevisionRow } from '@prserv/core';
import { type ClientGeneration, type DispatchContext, dispatchRequest } from '../../src/daemon/dispatch.js';

const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
const sum = { ...pkg, checksum: 'c1' };

/** What the fake engine answers unless a test says otherwise. */
interface CannedAnswers {
  readonly readOnly: boolean;
  readonly getPr: string;
  readonly testPr: string | null;
  readonly testPackage: boolean;
  readonly maxPackagePr: string | null;
  readonly importOne: string | null;
  readonly exportRows: RevisionRow[];
  /** When set, every engine method rejects with exactly this value. */
  readonly failure?: unknown;
}

const defaultAnswers: CannedAnswers = {
  readOnly: false,
  getPr: '3',
  testPr: '3',
  testPackage: true,
  maxPackagePr: '4',
  importOne: '7',
  exportRows: [],
};

type EngineMethod = Exclude<keyof PrEngine, 'readOnly'>;

/** One engine call as dispatch made it: the method and its one argument. */
type EngineCall = [method: EngineMethod, argument: unknown];

/** A `PrEngine` that records its calls and answers canned values, so only dispatch is under test. */
function createFakeEngine(overrides: Partial<CannedAnswers> = {}): { engine: PrEngine; calls: EngineCall[] } {
  const answers = { ...defaultAnswers, ...overrides };
  const calls: EngineCall[] = [];
  async function answer<T>(method: EngineMethod, argument: unknown, value: T): Promise<T> {
    calls.push([method, argument]);
    if ('failure' in answers) throw answers.failure;
    return value;
  }
  const engine: PrEngine = {
    readOnly: answers.readOnly,
    getPr: (query) => answer('getPr', query, answers.getPr),
    testPr: (query) => answer('testPr', query, answers.testPr),
    testPackage: (key) => answer('testPackage', key, answers.testPackage),
    maxPackagePr: (key) => answer('maxPackagePr', key, answers.maxPackagePr),
    importOne: (input) => answer('importOne', input, answers.importOne),
    exportRows: (query) => answer('exportRows', query, answers.exportRows),
  };
  return { engine, calls };
}

function contextFor(
  engine: PrEngine,
  options: { defaultHistory?: boolean; generation?: ClientGeneration } = {},
): DispatchContext {
  return { engine, defaultHistory: options.defaultHistory ?? false, generation: options.generation ?? 'unknown' };
}

/** Dispatches a request given as the JSON object a client sends, through the real request parser. */
function dispatch(message: unknown, context: DispatchContext) {
  return dispatchRequest(parseRequest(message), context);
}

// Request shapes as BitBake's clients send them (docs/protocol.md §3.1, §4).
const modernGetPr = (history: boolean) => ({ 'get-pr': { ...sum, history } });
const legacyGetPr = () => ({ 'get-pr': { ...sum } });
const modernTestPr = (history: boolean) => ({ 'test-pr': { ...sum, history } });
const legacyTestPr = () => ({ 'test-pr': { ...sum } });
const modernExport = (colinfo: boolean, history: boolean) => ({
  export: { version: pkg.version, pkgarch: null, checksum: null, colinfo, history },
});
const legacyExport = (colinfo: boolean) => ({
  export: { version: pkg.version, pkgarch: null, checksum: null, colinfo },
});
const maxPackagePr = () => ({ 'max-package-pr': { ...pkg } });
const importOne = (value: string | number) => ({ 'import-one': { ...sum, value } });

describe('dispatchRequest', () => {
  describe('ping and is-readonly', () => {
    it('answers ping without asking the engine', async () => {
      const { engine, calls } = createFakeEngine();
      expect(await dispatch({ ping: {} }, contextFor(engine))).toStrictEqual({ alive: true });
      expect(calls).toEqual([]);
    });

    it.each([true, false])('answers is-readonly with the engine readOnly flag (%s)', async (readOnly) => {
      const { engine, calls } = createFakeEngine({ readOnly });
      expect(await dispatch({ 'is-readonly': {} }, contextFor(engine))).toStrictEqual({ readonly: readOnly });
      expect(calls).toEqual([]);
    });

    it('leaves the generation unknown after ping, is-readonly and test-package', async () => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch({ ping: null }, context);
      await dispatch({ 'is-readonly': {} }, context);
      await dispatch({ 'test-package': pkg }, context);
      expect(context.generation).toBe('unknown');
    });
  });

  describe.each([
    { method: 'get-pr', engineMethod: 'getPr', modern: modernGetPr, legacy: legacyGetPr },
    { method: 'test-pr', engineMethod: 'testPr', modern: modernTestPr, legacy: legacyTestPr },
  ] as const)('$method', ({ method, engineMethod, modern, legacy }) => {
    it.each([true, false])('passes a modern request with history %s to the engine as sent', async (history) => {
      const { engine, calls } = createFakeEngine();
      // The server default is the opposite, so a request that lost its own mode would show.
      await dispatch(modern(history), contextFor(engine, { defaultHistory: !history }));
      expect(calls).toEqual([[engineMethod, { ...sum, history }]]);
    });

    it.each([true, false])('gives a legacy request the server default history %s', async (defaultHistory) => {
      const { engine, calls } = createFakeEngine();
      await dispatch(legacy(), contextFor(engine, { defaultHistory }));
      expect(calls).toEqual([[engineMethod, { ...sum, history: defaultHistory }]]);
    });

    it('answers a modern request with a string and marks the connection modern', async () => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      expect(await dispatch(modern(false), context)).toStrictEqual({ value: '3' });
      expect(context.generation).toBe('modern');
    });

    it('answers a legacy request with an integer and marks the connection legacy', async () => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      expect(await dispatch(legacy(), context)).toStrictEqual({ value: 3 });
      expect(context.generation).toBe('legacy');
    });

    it.each([0, 1])('counts history %s as a modern request', async (history) => {
      const { engine, calls } = createFakeEngine();
      const context = contextFor(engine);
      expect(await dispatch({ [method]: { ...sum, history } }, context)).toStrictEqual({ value: '3' });
      expect(calls).toEqual([[engineMethod, { ...sum, history: history === 1 }]]);
      expect(context.generation).toBe('modern');
    });

    it('keeps a dotted revision a string for a legacy request', async () => {
      const { engine } = createFakeEngine({ getPr: '0.3', testPr: '0.3' });
      expect(await dispatch(legacy(), contextFor(engine))).toStrictEqual({ value: '0.3' });
    });

    it('keeps an integer past 2^53 a string for a legacy request', async () => {
      const huge = '9007199254740993';
      const { engine } = createFakeEngine({ getPr: huge, testPr: huge });
      expect(await dispatch(legacy(), contextFor(engine))).toStrictEqual({ value: huge });
    });

    it('answers each request in its own generation, whatever the connection showed first', async () => {
      const { engine } = createFakeEngine();
      const legacyFirst = contextFor(engine);
      await dispatch(legacy(), legacyFirst);
      expect(await dispatch(modern(false), legacyFirst)).toStrictEqual({ value: '3' });
      const modernFirst = contextFor(engine);
      await dispatch(modern(false), modernFirst);
      expect(await dispatch(legacy(), modernFirst)).toStrictEqual({ value: 3 });
    });
  });

  describe('test-pr of an unknown checksum', () => {
    it.each([
      ['modern', modernTestPr(false)],
      ['legacy', legacyTestPr()],
    ])('answers null to a %s request', async (_generation, message) => {
      const { engine } = createFakeEngine({ testPr: null });
      expect(await dispatch(message, contextFor(engine))).toStrictEqual({ value: null });
    });
  });

  describe('test-package', () => {
    it.each([true, false])('passes only the package and answers the engine boolean %s', async (known) => {
      const { engine, calls } = createFakeEngine({ testPackage: known });
      expect(await dispatch({ 'test-package': pkg }, contextFor(engine, { generation: 'legacy' }))).toStrictEqual({
        value: known,
      });
      expect(calls).toEqual([['testPackage', pkg]]);
    });
  });

  describe('max-package-pr', () => {
    it('passes only the package to the engine', async () => {
      const { engine, calls } = createFakeEngine();
      await dispatch(maxPackagePr(), contextFor(engine));
      expect(calls).toEqual([['maxPackagePr', pkg]]);
    });

    it.each([
      ['unknown', { value: '4' }],
      ['modern', { value: '4' }],
      ['legacy', { value: 4 }],
    ] as const)('on a connection that is %s answers %o', async (generation, expected) => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine, { generation });
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual(expected);
      // It looks the same in both generations, so it tells nothing about the client.
      expect(context.generation).toBe(generation);
    });

    it.each(['unknown', 'modern', 'legacy'] as const)('answers null for an unknown package (%s)', async (generation) => {
      const { engine } = createFakeEngine({ maxPackagePr: null });
      expect(await dispatch(maxPackagePr(), contextFor(engine, { generation }))).toStrictEqual({ value: null });
    });
  });

  describe('import-one', () => {
    it.each([
      // [connection, value as sent, keepHigher, answer]
      ['unknown', '7', false, '7'],
      ['modern', '7', false, '7'],
      ['legacy', '7', true, 7],
      ['unknown', 7, true, 7],
      ['modern', 7, true, 7],
      ['legacy', 7, true, 7],
    ] as const)(
      'on a %s connection, value %o imports with keepHigher %s and answers %o',
      async (generation, value, keepHigher, expected) => {
        const { engine, calls } = createFakeEngine({ importOne: '7' });
        const context = contextFor(engine, { generation });
        expect(await dispatch(importOne(value), context)).toStrictEqual({ value: expected });
        expect(calls).toEqual([['importOne', { ...sum, value: '7', keepHigher }]]);
        // Not one of the requests that tell the generation (docs/protocol.md §3.2).
        expect(context.generation).toBe(generation);
      },
    );

    it('answers what the engine kept under the legacy rule, not the value sent', async () => {
      const { engine } = createFakeEngine({ importOne: '9' });
      expect(await dispatch(importOne(7), contextFor(engine))).toStrictEqual({ value: 9 });
    });

    it('keeps a dotted revision a string under the legacy rule', async () => {
      const { engine } = createFakeEngine({ importOne: '1.2' });
      expect(await dispatch(importOne('1.2'), contextFor(engine, { generation: 'legacy' }))).toStrictEqual({
        value: '1.2',
      });
    });

    it.each([7, '7'])('answers a bare null, as BitBake does, when the engine is read-only (value %o)', async (value) => {
      const { engine } = createFakeEngine({ readOnly: true, importOne: null });
      expect(await dispatch(importOne(value), contextFor(engine))).toBeNull();
    });
  });

  describe('export', () => {
    const rows: RevisionRow[] = [
      { ...pkg, checksum: 'c0', value: '0' },
      { ...pkg, checksum: 'c1', value: '0.3' },
      { ...pkg, checksum: 'c2', value: '12' },
    ];

    it('passes the filters and the request history to the engine', async () => {
      const { engine, calls } = createFakeEngine();
      await dispatch(modernExport(false, true), contextFor(engine, { defaultHistory: false }));
      expect(calls).toEqual([['exportRows', { version: pkg.version, pkgarch: null, checksum: null, history: true }]]);
    });

    it.each([true, false])('gives a legacy export the server default history %s', async (defaultHistory) => {
      const { engine, calls } = createFakeEngine();
      await dispatch(legacyExport(false), contextFor(engine, { defaultHistory }));
      expect(calls).toEqual([
        ['exportRows', { version: pkg.version, pkgarch: null, checksum: null, history: defaultHistory }],
      ]);
    });

    it('answers a modern export without colinfo with string values and an empty metainfo', async () => {
      const { engine } = createFakeEngine({ exportRows: rows });
      const context = contextFor(engine);
      expect(await dispatch(modernExport(false, false), context)).toStrictEqual({
        metainfo: {},
        datainfo: [
          { ...pkg, checksum: 'c0', value: '0' },
          { ...pkg, checksum: 'c1', value: '0.3' },
          { ...pkg, checksum: 'c2', value: '12' },
        ],
      });
      expect(context.generation).toBe('modern');
    });

    it('answers a legacy export with integer values where they are integers', async () => {
      const { engine } = createFakeEngine({ exportRows: rows });
      const context = contextFor(engine);
      expect(await dispatch(legacyExport(false), context)).toStrictEqual({
        metainfo: {},
        datainfo: [
          { ...pkg, checksum: 'c0', value: 0 },
          { ...pkg, checksum: 'c1', value: '0.3' },
          { ...pkg, checksum: 'c2', value: 12 },
        ],
      });
      expect(context.generation).toBe('legacy');
    });

    it('answers an export of nothing with no rows', async () => {
      const { engine } = createFakeEngine({ exportRows: [] });
      expect(await dispatch(modernExport(false, true), contextFor(engine))).toStrictEqual({ metainfo: {}, datainfo: [] });
    });

    // The table descriptions are BitBake's (docs/protocol.md §4.6), written out here rather than
    // taken from exportMetainfo so a wrong choice of table shows.
    it.each([
      ['modern, history', modernExport(true, true), false, 'PRMAIN', '2.0.0', 'TEXT'],
      ['modern, no-history', modernExport(true, false), true, 'PRMAIN', '2.0.0', 'TEXT'],
      ['legacy on a no-history server', legacyExport(true), false, 'PRMAIN_nohist', '1.0.0', 'INTEGER'],
      ['legacy on a history server', legacyExport(true), true, 'PRMAIN_hist', '1.0.0', 'INTEGER'],
    ] as const)(
      'describes the BitBake table with colinfo (%s)',
      async (_case, message, defaultHistory, tableName, coreVersion, valueType) => {
        const { engine } = createFakeEngine({ exportRows: rows });
        const response = (await dispatch(message, contextFor(engine, { defaultHistory })))!;
        const metainfo = response.metainfo as { tbl_name: string; core_ver: string; col_info: { name: string; type: string }[] };
        expect(metainfo.tbl_name).toBe(tableName);
        expect(metainfo.core_ver).toBe(coreVersion);
        expect(metainfo.col_info.map((column) => [column.name, column.type])).toEqual([
          ['version', 'TEXT'],
          ['pkgarch', 'TEXT'],
          ['checksum', 'TEXT'],
          ['value', valueType],
        ]);
        expect(response.datainfo).toHaveLength(rows.length);
      },
    );
  });

  describe('connection generation', () => {
    it.each([
      ['a modern get-pr', modernGetPr(false), 'modern'],
      ['a legacy get-pr', legacyGetPr(), 'legacy'],
      ['a modern test-pr', modernTestPr(true), 'modern'],
      ['a legacy test-pr', legacyTestPr(), 'legacy'],
      ['a modern export', modernExport(false, true), 'modern'],
      ['a legacy export', legacyExport(true), 'legacy'],
    ] as const)('is fixed by %s as the first telling request', async (_case, message, expected) => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch(message, context);
      expect(context.generation).toBe(expected);
      // A later request of the other generation does not change what the connection showed.
      await dispatch(expected === 'legacy' ? modernGetPr(false) : legacyGetPr(), context);
      expect(context.generation).toBe(expected);
    });

    it('answers max-package-pr and import-one in the modern way before anything told the generation', async () => {
      const { engine, calls } = createFakeEngine();
      const context = contextFor(engine);
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual({ value: '4' });
      expect(await dispatch(importOne('7'), context)).toStrictEqual({ value: '7' });
      expect(calls[1]).toEqual(['importOne', { ...sum, value: '7', keepHigher: false }]);
    });

    it('answers max-package-pr and import-one in the legacy way after a legacy get-pr', async () => {
      const { engine, calls } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch(legacyGetPr(), context);
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual({ value: 4 });
      expect(await dispatch(importOne('7'), context)).toStrictEqual({ value: 7 });
      expect(calls[2]).toEqual(['importOne', { ...sum, value: '7', keepHigher: true }]);
    });

    it('answers max-package-pr and import-one in the modern way after a modern test-pr, even after a legacy get-pr', async () => {
      const { engine, calls } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch(modernTestPr(false), context);
      await dispatch(legacyGetPr(), context);
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual({ value: '4' });
      expect(await dispatch(importOne('7'), context)).toStrictEqual({ value: '7' });
      expect(calls[3]).toEqual(['importOne', { ...sum, value: '7', keepHigher: false }]);
    });

    it('answers max-package-pr in the legacy way after a legacy export', async () => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch(legacyExport(false), context);
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual({ value: 4 });
    });

    it('is not told by an import-one with an integer value', async () => {
      const { engine } = createFakeEngine();
      const context = contextFor(engine);
      await dispatch(importOne(7), context);
      expect(await dispatch(maxPackagePr(), context)).toStrictEqual({ value: '4' });
    });
  });

  describe('engine errors', () => {
    it.each([
      ['get-pr', modernGetPr(false)],
      ['legacy get-pr', legacyGetPr()],
      ['test-pr', modernTestPr(false)],
      ['test-package', { 'test-package': pkg }],
      ['max-package-pr', maxPackagePr()],
      ['import-one', importOne('7')],
      ['legacy import-one', importOne(7)],
      ['export', modernExport(true, true)],
    ])('rejects a %s with the very error the engine threw', async (_case, message) => {
      const failure = new Error('engine failed');
      const { engine } = createFakeEngine({ failure });
      await expect(dispatch(message, contextFor(engine))).rejects.toBe(failure);
    });

    it('rejects with a thrown non-Error value unchanged', async () => {
      const failure = { reason: 'not an Error' };
      const { engine } = createFakeEngine({ failure });
      await expect(dispatch(modernGetPr(false), contextFor(engine))).rejects.toBe(failure);
    });
  });
});
