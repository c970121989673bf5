import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  coalesceRevisionQueries,
  createPrEngine,
  createRevisionQueries,
  globToLike,
  openPrStore,
  type PrDatabase,
  type PrStore,
  PrStoreError,
  planAllocations,
  type UpstreamPrSource,
} from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { storeRefusal } from '../store-refusal.js';

function freshPackage(prefix = 'frz') {
  return { version: `${prefix}-${randomUUID().slice(0, 8)}-r0`, pkgarch: 'core2-64' };
}

describe('globToLike', () => {
  it('turns * and ? into LIKE wildcards and keeps LIKE’s own characters literal', () => {
    expect(globToLike('glibc-2.39*')).toBe('glibc-2.39%');
    expect(globToLike('a?c')).toBe('a_c');
    expect(globToLike('100%_x')).toBe('100\\%\\_x');
    expect(globToLike('lit\\*eral\\\\')).toBe('lit*eral\\\\');
  });

  it('refuses an empty pattern, a lone trailing backslash and line feeds', () => {
    for (const glob of ['', 'a\\', 'a\nb']) expect(() => globToLike(glob)).toThrow(PrStoreError);
  });
});

describe('planAllocations on a frozen package', () => {
  const frozenBy = { version: 'p*', pkgarch: '*' };
  const request = (checksum: string, version = 'p1') => ({ version, pkgarch: 'a', checksum, history: false });

  it('answers the package maximum and plans no row, while its neighbours allocate', () => {
    const plan = planAllocations(
      [request('new'), request('other', 'q1')],
      [
        { packageMax: '4', checksumFirst: null, checksumLast: null, frozenBy },
        { packageMax: '1', checksumFirst: null, checksumLast: null, frozenBy: null },
      ],
    );
    expect(plan.decisions).toEqual([{ value: '4', isNew: false }, { value: '2', isNew: true }]);
    expect(plan.rows.map((row) => [row.version, row.value, row.previousMax, row.storedHow])).toEqual([['q1', '2', '1', 'get-pr-nohist']]);
  });

  it('refuses a frozen package without any revision with PACKAGE_FROZEN naming the freeze', () => {
    const error = (() => {
      try {
        planAllocations([request('c0')], [{ packageMax: null, checksumFirst: null, checksumLast: null, frozenBy }]);
      } catch (caught) {
        return caught as PrStoreError;
      }
      throw new Error('not refused');
    })();
    expect(error.code).toBe('PACKAGE_FROZEN');
    expect(error.message).toContain('freeze "p*"');
  });
});

describe.each(STORE_KINDS)('frozen packages on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let db: Kysely<PrDatabase>;

  beforeAll(async () => {
    database = await create(`freeze_${kind}`);
    store = await openPrStore({
      database: database.url,
      createEngine: (opened, options) => {
        db = opened;
        return createPrEngine(opened, options);
      },
    });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('keeps a frozen package’s PR where it is in both modes, stores nothing, and moves again once thawed', async () => {
    const pkg = freshPackage();
    expect(await store.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'c1' })).toBe('1');
    expect(await store.freeze({ version: pkg.version })).toBe(true);
    expect(await store.freeze({ version: pkg.version })).toBe(false);

    expect(await store.getPr({ ...pkg, checksum: 'c2' })).toBe('1');
    expect(await store.getPr({ ...pkg, checksum: 'c3', history: true })).toBe('1');
    // A returning checksum would move up in no-history mode: frozen, it answers the maximum.
    expect(await store.getPr({ ...pkg, checksum: 'c0' })).toBe('1');
    // Stored answers are served as ever.
    expect(await store.getPr({ ...pkg, checksum: 'c0', history: true })).toBe('0');
    expect(await store.exportRows({ ...pkg, history: true })).toHaveLength(2);
    expect(await store.testPr({ ...pkg, checksum: 'c2' })).toBeNull();

    expect(await store.thaw({ version: pkg.version })).toBe(true);
    expect(await store.thaw({ version: pkg.version })).toBe(false);
    expect(await store.getPr({ ...pkg, checksum: 'c2' })).toBe('2');
    // The max answered under the freeze was never stored: thawed, even history mode moves on.
    expect(await store.getPr({ ...pkg, checksum: 'c3', history: true })).toBe('3');
  });

  it('matches globs over version and pkgarch, and lists freezes', async () => {
    const prefix = `glob${randomUUID().slice(0, 6)}`;
    const armPkg = { version: `${prefix}-1.0-r0`, pkgarch: 'armv8a' };
    const x86Pkg = { version: `${prefix}-1.0-r0`, pkgarch: 'core2-64' };
    await store.getPr({ ...armPkg, checksum: 'a0' });
    await store.getPr({ ...x86Pkg, checksum: 'x0' });
    await store.freeze({ version: `${prefix}-1.?-*`, pkgarch: 'arm*', reason: 'release 5.0', frozenBy: 'me@here' });
    expect(await store.getPr({ ...armPkg, checksum: 'a1' })).toBe('0');
    expect(await store.getPr({ ...x86Pkg, checksum: 'x1' })).toBe('1');
    const listed = (await store.listFreezes()).find((freeze) => freeze.version.startsWith(prefix));
    expect(listed).toMatchObject({ version: `${prefix}-1.?-*`, pkgarch: 'arm*', reason: 'release 5.0', frozenBy: 'me@here' });
    expect(listed!.frozenAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await store.thaw({ version: `${prefix}-1.?-*`, pkgarch: 'arm*' });
  });

  it('refuses get-pr for a frozen package that has no revision, and import-one into any frozen package', async () => {
    const pkg = freshPackage('never');
    await store.freeze({ version: pkg.version });
    const refused = await storeRefusal(store.getPr({ ...pkg, checksum: 'c0' }));
    expect(refused.code).toBe('PACKAGE_FROZEN');
    expect(refused.message).toContain(`package ${pkg.version} core2-64 is frozen (freeze "${pkg.version}")`);
    const imported = await storeRefusal(store.importOne({ ...pkg, checksum: 'c0', value: '3' }));
    expect(imported.code).toBe('PACKAGE_FROZEN');
    expect(await store.maxPackagePr(pkg)).toBeNull();
    // A read-only view answers what a writer would: the same refusal.
    expect((await storeRefusal(store.readOnlyView!().getPr({ ...pkg, checksum: 'c0' }))).code).toBe('PACKAGE_FROZEN');
    await store.thaw({ version: pkg.version });
    expect(await store.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
  });

  it('in one coalesced batch, fails only the request of a frozen package without revision', async () => {
    const held = freshPackage('held');
    const empty = freshPackage('empty');
    const free = freshPackage('free');
    const queries = coalesceRevisionQueries(createRevisionQueries(db, { singleSession: kind === 'embedded' }));
    await queries.allocate([{ ...held, checksum: 'h0', history: false }]);
    await store.freeze({ version: held.version });
    await store.freeze({ version: empty.version });
    try {
      const outcomes = await Promise.allSettled([
        queries.allocate([{ ...held, checksum: 'h1', history: false }]),
        queries.allocate([{ ...empty, checksum: 'e0', history: false }]),
        queries.allocate([{ ...free, checksum: 'f0', history: false }]),
        queries.allocate([{ ...free, checksum: 'f1', history: true }]),
      ]);
      expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : (outcome.reason as PrStoreError).code))).toEqual([
        [{ value: '0', isNew: false }],
        'PACKAGE_FROZEN',
        [{ value: '0', isNew: true }],
        [{ value: '1', isNew: true }],
      ]);
      expect(await store.exportRows({ ...held, history: true })).toHaveLength(1);
    } finally {
      await store.thaw({ version: held.version });
      await store.thaw({ version: empty.version });
    }
  });

  it('previews what get-pr would answer without storing, frozen or not', async () => {
    const pkg = freshPackage('preview');
    expect(await store.previewPr({ ...pkg, checksum: 'c0' })).toEqual({ value: '0', isNew: true, packageMax: null, frozenBy: null });
    await store.getPr({ ...pkg, checksum: 'c0' });
    expect(await store.previewPr({ ...pkg, checksum: 'c0', history: true })).toEqual({ value: '0', isNew: false, packageMax: '0', frozenBy: null });
    expect(await store.previewPr({ ...pkg, checksum: 'c1' })).toEqual({ value: '1', isNew: true, packageMax: '0', frozenBy: null });
    await store.freeze({ version: pkg.version });
    const frozenBy = { version: pkg.version, pkgarch: '*' };
    expect(await store.previewPr({ ...pkg, checksum: 'c1' })).toEqual({ value: '0', isNew: false, packageMax: '0', frozenBy });
    await store.thaw({ version: pkg.version });
    expect(await store.exportRows({ ...pkg, history: true })).toHaveLength(1);
  });

  it('applies freezes to a chained server too', async () => {
    const pkg = freshPackage('chain');
    const upstream: UpstreamPrSource = { name: 'fake', maxPackagePr: async () => '5', testPr: async () => null };
    const chained = createPrEngine(db, { upstream, singleSession: kind === 'embedded', coalescing: false });
    expect(await chained.getPr({ ...pkg, checksum: 'c0' })).toBe('5.0');
    await store.freeze({ version: pkg.version });
    try {
      expect(await chained.getPr({ ...pkg, checksum: 'c1' })).toBe('5.0');
      expect(await chained.previewPr!({ ...pkg, checksum: 'c1' })).toMatchObject({ value: '5.0', isNew: false });
      const other = freshPackage('chain-empty');
      await store.freeze({ version: other.version });
      expect((await storeRefusal(chained.getPr({ ...other, checksum: 'c0' }))).code).toBe('PACKAGE_FROZEN');
      await store.thaw({ version: other.version });
    } finally {
      await store.thaw({ version: pkg.version });
    }
    expect(await chained.getPr({ ...pkg, checksum: 'c1' })).toBe('5.1');
    const history = await store.packageHistory(pkg);
    expect(history.map((row) => [row.value, row.storedHow, row.previousMax])).toEqual([
      ['5.0', 'get-pr-nohist-upstream', null],
      ['5.1', 'get-pr-nohist-upstream', '5.0'],
    ]);
  });
});
