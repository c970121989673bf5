import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore, PrStoreError } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';

/** A package no other test touches. */
function freshPackage() {
  return { version: `1.0-r0-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
}

describe.each(STORE_KINDS)('PR store on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;

  beforeAll(async () => {
    database = await create(`store_${kind}`);
    store = await openPrStore({ database: database.url, poolSize: 8 });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('reports its kind', () => {
    expect(store.kind).toBe(kind);
    expect(store.readOnly).toBe(false);
  });

  it('follows the worked example of docs/protocol.md §6.6', async () => {
    const pkg = freshPackage();
    const get = (checksum: string, history = false) => store.getPr({ ...pkg, checksum, history });
    expect(await get('c0')).toBe('0');
    expect(await get('c1')).toBe('1');
    expect(await get('c2')).toBe('2');
    expect(await get('c3')).toBe('3');
    expect(await get('c0')).toBe('4');
    expect(await get('c0', true)).toBe('0');
    expect(await store.maxPackagePr(pkg)).toBe('4');
  });

  it('gives the same checksum the same PR while it is the newest', async () => {
    const pkg = freshPackage();
    expect(await store.getPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'b' })).toBe('1');
    expect(await store.getPr({ ...pkg, checksum: 'b' })).toBe('1');
  });

  it('keeps keys made of quotes, backslashes, braces and unicode apart and intact', async () => {
    const version = `odd'1.0\\"{r0},${randomUUID().slice(0, 8)}`;
    const pkgarch = 'ärch\nNULL';
    // A leading U+FEFF is text of the key, not a byte-order mark to drop when reading it back.
    const checksums = ["it's", 'back\\slash', '"q"', '{a,b}', 'NULL', '𝄞', '\ufeffbom', 'bom'];
    const values = [];
    for (const checksum of checksums) values.push(await store.getPr({ version, pkgarch, checksum, history: true }));
    expect(values).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    for (const [index, checksum] of checksums.entries()) {
      expect(await store.testPr({ version, pkgarch, checksum, history: true })).toBe(String(index));
    }
    const rows = await store.exportRows({ version, history: true });
    expect(rows.map((row) => [row.pkgarch, row.checksum])).toEqual(checksums.map((checksum) => [pkgarch, checksum]));
    expect(await store.maxPackagePr({ version, pkgarch })).toBe('7');
  });

  it('never goes down in no-history mode across 9 → 10 → 11', async () => {
    const pkg = freshPackage();
    for (let index = 0; index <= 10; index += 1) {
      expect(await store.getPr({ ...pkg, checksum: `c${index}` })).toBe(String(index));
    }
    // A string comparison would take "9" as the maximum and hand out "10" twice.
    expect(await store.maxPackagePr(pkg)).toBe('10');
    expect(await store.getPr({ ...pkg, checksum: 'c9' })).toBe('11');
    expect(await store.getPr({ ...pkg, checksum: 'c11' })).toBe('12');
    expect(await store.testPr({ ...pkg, checksum: 'c9' })).toBe('11');
    expect(await store.testPr({ ...pkg, checksum: 'c9', history: true })).toBe('9');
  });

  it('answers the first PR of a checksum in history mode', async () => {
    const pkg = freshPackage();
    expect(await store.getPr({ ...pkg, checksum: 'x', history: true })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'y', history: true })).toBe('1');
    expect(await store.getPr({ ...pkg, checksum: 'x', history: false })).toBe('2');
    expect(await store.getPr({ ...pkg, checksum: 'x', history: true })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'y', history: true })).toBe('1');
  });

  it('answers test-pr, test-package and max-package-pr without storing', async () => {
    const pkg = freshPackage();
    expect(await store.testPr({ ...pkg, checksum: 'a' })).toBeNull();
    expect(await store.testPackage(pkg)).toBe(false);
    expect(await store.maxPackagePr(pkg)).toBeNull();
    await store.getPr({ ...pkg, checksum: 'a' });
    expect(await store.testPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await store.testPackage(pkg)).toBe(true);
    expect(await store.testPackage({ ...pkg, pkgarch: 'other' })).toBe(false);
    expect(await store.exportRows({ ...pkg, history: true })).toHaveLength(1);
  });

  it('imports rows and echoes the value as sent', async () => {
    const pkg = freshPackage();
    expect(await store.importOne({ ...pkg, checksum: 'a', value: '0.3' })).toBe('0.3');
    expect(await store.importOne({ ...pkg, checksum: 'b', value: '2' })).toBe('2');
    expect(await store.importOne({ ...pkg, checksum: 'b', value: '2' })).toBe('2');
    expect(await store.maxPackagePr(pkg)).toBe('2');
    expect(await store.testPr({ ...pkg, checksum: 'a' })).toBe('0.3');
    expect(await store.getPr({ ...pkg, checksum: 'c' })).toBe('3');
  });

  it('keeps the higher value on a legacy import', async () => {
    const pkg = freshPackage();
    expect(await store.importOne({ ...pkg, checksum: 'a', value: '5', keepHigher: true })).toBe('5');
    expect(await store.importOne({ ...pkg, checksum: 'a', value: '3', keepHigher: true })).toBe('5');
    expect(await store.exportRows({ ...pkg, history: true })).toEqual([{ ...pkg, checksum: 'a', value: '5' }]);
    expect(await store.importOne({ ...pkg, checksum: 'a', value: '07', keepHigher: true })).toBe('7');
    expect(await store.testPr({ ...pkg, checksum: 'a' })).toBe('7');
  });

  it('rejects an import whose value is not a revision, storing nothing', async () => {
    const pkg = freshPackage();
    await expect(store.importOne({ ...pkg, checksum: 'a', value: 'r1' })).rejects.toMatchObject({
      name: 'PrStoreError',
      code: 'INVALID_ARGUMENT',
    });
    await expect(store.importOne({ ...pkg, checksum: 'a', value: '-1' })).rejects.toBeInstanceOf(PrStoreError);
    expect(await store.testPackage(pkg)).toBe(false);
  });

  it('rejects an oversized import value, quoting only its start', async () => {
    const pkg = freshPackage();
    const value = '1.'.repeat(100) + '1';
    const error = await store.importOne({ ...pkg, checksum: 'a', value }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((error as Error).message.length).toBeLessThan(200);
    expect(await store.testPackage(pkg)).toBe(false);
  });

  it('rejects export filters that cannot be keys', async () => {
    await expect(store.exportRows({ version: 'a\u0000b' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(store.exportRows({ checksum: 'x'.repeat(600) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects empty and oversized keys', async () => {
    const pkg = freshPackage();
    await expect(store.getPr({ ...pkg, checksum: '' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(store.getPr({ ...pkg, checksum: 'x'.repeat(600) })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await store.testPackage(pkg)).toBe(false);
  });

  it('exports all rows in history mode and the rows at the maximum otherwise', async () => {
    const pkg = freshPackage();
    const other = freshPackage();
    for (const checksum of ['a', 'b', 'c']) await store.getPr({ ...pkg, checksum });
    await store.getPr({ ...pkg, checksum: 'a' }); // a: 0 and 3
    for (let index = 0; index < 11; index += 1) await store.getPr({ ...other, checksum: `o${index}` });

    const all = await store.exportRows({ version: pkg.version, history: true });
    expect(all.map((row) => `${row.checksum}=${row.value}`).sort()).toEqual(['a=0', 'a=3', 'b=1', 'c=2']);

    const latest = await store.exportRows({ version: pkg.version });
    expect(latest).toEqual([{ ...pkg, checksum: 'a', value: '3' }]);
    // Numeric, not string, maximum: "10" beats "9".
    expect(await store.exportRows({ version: other.version })).toEqual([{ ...other, checksum: 'o10', value: '10' }]);
    expect(await store.exportRows({ version: pkg.version, checksum: 'b', history: true })).toEqual([
      { ...pkg, checksum: 'b', value: '1' },
    ]);
    expect(await store.exportRows({ version: pkg.version, checksum: 'b' })).toEqual([]);
  });

  it('hands 64 concurrent new checksums of one package 64 distinct PRs 0..63', async () => {
    const pkg = freshPackage();
    const values = await Promise.all(
      Array.from({ length: 64 }, (_, index) => store.getPr({ ...pkg, checksum: `c${index}` })),
    );
    expect(values.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, index) => index));
  });

  it('gives one checksum asked concurrently one value', async () => {
    const pkg = freshPackage();
    await store.getPr({ ...pkg, checksum: 'seed' });
    const values = await Promise.all(
      Array.from({ length: 32 }, (_, index) => store.getPr({ ...pkg, checksum: 'same', history: index % 2 === 0 })),
    );
    expect(new Set(values)).toEqual(new Set(['1']));
    expect(await store.exportRows({ ...pkg, history: true })).toHaveLength(2);
  });

  it('answers alike with coalescing and prepared statements off', async () => {
    const extra = await create(`plain_${kind}`);
    const plain = await openPrStore({ database: extra.url, coalescing: false, preparedStatements: false });
    try {
      const pkg = freshPackage();
      const answers = await Promise.all(['a', 'b', 'c', 'a'].map((checksum) => plain.getPr({ ...pkg, checksum, history: true })));
      expect(answers.slice(0, 3).sort()).toEqual(['0', '1', '2']);
      expect(answers[3]).toBe(answers[0]);
      expect(await plain.getPr({ ...pkg, checksum: 'd', history: true })).toBe('3');
      expect(await plain.getPr({ ...pkg, checksum: 'a' })).toBe('4');
      expect(await plain.testPr({ ...pkg, checksum: 'a', history: true })).toBe(answers[0]);
      expect(await plain.maxPackagePr(pkg)).toBe('4');
    } finally {
      await plain.close();
      await extra.drop();
    }
  });

  it('answers what it accepted before close, and refuses calls after', async () => {
    const extra = await create(`closed_${kind}`);
    const other = await openPrStore({ database: extra.url });
    const pkg = freshPackage();
    // Accepted, most still in their lookup or waiting to write when close() is called.
    const accepted = Array.from({ length: 200 }, (_, index) => other.getPr({ ...pkg, checksum: `c${index}`, history: true }));
    const closed = other.close();
    await expect(other.getPr({ ...freshPackage(), checksum: 'a' })).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    const values = (await Promise.all(accepted)).map(Number).sort((a, b) => a - b);
    expect(values).toEqual(Array.from({ length: 200 }, (_, n) => n));
    await closed;
    await other.close();
    await extra.drop();
  });
});
