import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DataStore, migrateStore, openDataStore } from '@prserv/core';
import { createEmbeddedFolder, createPostgresDatabase, type TestDatabase } from '@prserv/test-support';

describe('migrating an embedded store to PostgreSQL', () => {
  let from: TestDatabase;
  let to: TestDatabase;
  let source: DataStore;
  let target: DataStore;

  beforeAll(async () => {
    [from, to] = await Promise.all([createEmbeddedFolder('migrate_from'), createPostgresDatabase('migrate_to')]);
    [source, target] = await Promise.all([openDataStore({ database: from.url }), openDataStore({ database: to.url })]);
  });

  afterAll(async () => {
    await Promise.all([source?.store.close(), target?.store.close()]);
    await Promise.all([from?.drop(), to?.drop()]);
  });

  it('keeps every row with its provenance, and every freeze', async () => {
    const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
    await source.store.getPr({ ...pkg, checksum: 'a' });
    await source.store.getPr({ ...pkg, checksum: 'b', history: true });
    await source.store.importOne({ ...pkg, checksum: 'c', value: '5' });
    await source.store.freeze({ version: '2.*', pkgarch: 'arm*', reason: 'released' });

    const report = await migrateStore(source.db, target.db);
    expect(report.rowsCopied).toBe(3);
    const before = await source.store.packageHistory(pkg);
    expect(before.map((row) => row.storedHow)).toEqual(['get-pr-nohist', 'get-pr-history', 'import-one']);
    // Not the import tool's stamp, nor the time of the copy: what the source recorded.
    expect(await target.store.packageHistory(pkg)).toEqual(before);
    expect((await target.store.listFreezes()).map(({ version, pkgarch, reason }) => ({ version, pkgarch, reason }))).toEqual([
      { version: '2.*', pkgarch: 'arm*', reason: 'released' },
    ]);
  });
});
