import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';

describe.each(STORE_KINDS)('PrStore.readOnlyView on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  const pkg = { version: `view-${kind}`, pkgarch: 'core2-64' };

  beforeAll(async () => {
    database = await create(`read_only_view_${kind}`);
    store = await openPrStore({ database: database.url });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('answers as a writer would, over the same database, storing nothing', async () => {
    const view = store.readOnlyView!();
    expect(view.readOnly).toBe(true);
    expect(view.readOnlyView!()).toBe(view);
    expect(await view.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await view.importOne({ ...pkg, checksum: 'c9', value: '9' })).toBeNull();
    expect(await store.maxPackagePr(pkg)).toBeNull();
    expect(await store.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await view.testPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await view.getPr({ ...pkg, checksum: 'c1' })).toBe('1');
    expect(await store.testPr({ ...pkg, checksum: 'c1' })).toBeNull();
    expect(store.readOnly).toBe(false);
  });

  // Last: it closes the store.
  it('is closed with its store', async () => {
    const view = store.readOnlyView!();
    await store.close();
    await expect(view.getPr({ ...pkg, checksum: 'c0' })).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});
