import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.each(STORE_KINDS)('provenance of stored rows on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;

  beforeAll(async () => {
    database = await create(`provenance_${kind}`);
    store = await openPrStore({ database: database.url });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('records when, how, from where and after which maximum each row was stored', async () => {
    const pkg = { version: `prov-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
    const before = Date.now();
    await store.getPr({ ...pkg, checksum: 'A', client: '10.1.2.3' });
    await store.getPr({ ...pkg, checksum: 'B', history: true, client: '2001:db8::7' });
    await store.getPr({ ...pkg, checksum: 'A', client: '10.1.2.3' });
    await store.importOne({ ...pkg, checksum: 'C', value: '9', client: '10.9.9.9' });
    await store.getPr({ ...pkg, checksum: 'D' });
    // Lookups store nothing and change nothing.
    await store.getPr({ ...pkg, checksum: 'D', client: '10.0.0.1' });

    const history = await store.packageHistory(pkg);
    expect(history.map(({ storedAt, ...rest }) => rest)).toEqual([
      { checksum: 'A', value: '0', storedBy: '10.1.2.3', storedHow: 'get-pr-nohist', previousMax: null },
      { checksum: 'B', value: '1', storedBy: '2001:db8::7', storedHow: 'get-pr-history', previousMax: '0' },
      { checksum: 'A', value: '2', storedBy: '10.1.2.3', storedHow: 'get-pr-nohist', previousMax: '1' },
      { checksum: 'C', value: '9', storedBy: '10.9.9.9', storedHow: 'import-one', previousMax: '2' },
      { checksum: 'D', value: '10', storedBy: null, storedHow: 'get-pr-nohist', previousMax: '9' },
    ]);
    for (const row of history) {
      expect(row.storedAt).toMatch(ISO_UTC);
      // The database's clock, which on this machine is the test's.
      expect(Date.parse(row.storedAt!)).toBeGreaterThanOrEqual(before - 5_000);
      expect(Date.parse(row.storedAt!)).toBeLessThanOrEqual(Date.now() + 5_000);
    }
    expect((await store.packageHistory({ ...pkg, checksum: 'A' })).map((row) => row.value)).toEqual(['0', '2']);
    expect(await store.packageHistory({ version: 'nothing-here', pkgarch: 'x' })).toEqual([]);
  });

  it('records the batch’s own earlier allocations as the maximum before, in one coalesced batch', async () => {
    const pkg = { version: `prov-batch-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
    await Promise.all(Array.from({ length: 6 }, (_, index) => store.getPr({ ...pkg, checksum: `c${index}`, client: '192.0.2.1' })));
    const history = await store.packageHistory(pkg);
    expect(history.map((row) => [row.value, row.previousMax])).toEqual([
      ['0', null],
      ['1', '0'],
      ['2', '1'],
      ['3', '2'],
      ['4', '3'],
      ['5', '4'],
    ]);
  });
});
