import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DataStore, importRevisions, migrateStore, openDataStore } from '@prserv/core';
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

describe('migrating between PostgreSQL databases', () => {
  const databases: TestDatabase[] = [];
  const stores: DataStore[] = [];
  const open = async (label: string) => {
    const database = await createPostgresDatabase(label);
    databases.push(database);
    const data = await openDataStore({ database: database.url });
    stores.push(data);
    return data;
  };

  afterAll(async () => {
    await Promise.all(stores.map((data) => data.store.close()));
    await Promise.all(databases.map((database) => database.drop()));
  });

  it('leaves the target as it was when the check fails, so that it can be run again', async () => {
    const [source, target] = [await open('migrate_moving_from'), await open('migrate_moving_to')];
    const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
    for (const checksum of ['a', 'b', 'c']) await source.store.getPr({ ...pkg, checksum });
    await source.store.freeze({ version: '2.*' });
    // A server still running on the source allocates while the rows are copied.
    const failure = await migrateStore(source.db, target.db, {
      onStaged: () => void source.store.getPr({ ...pkg, checksum: 'd' }),
    }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'MIGRATION_MISMATCH', message: expect.stringContaining('nothing was kept') });
    expect(await target.store.exportRows({ history: true })).toEqual([]);
    expect(await target.store.listFreezes()).toEqual([]);

    expect(await migrateStore(source.db, target.db)).toMatchObject({ rowsCopied: 4 });
  });

  it('refuses a target that holds a freeze, though no rows', async () => {
    const [source, target] = [await open('migrate_frozen_from'), await open('migrate_frozen_to')];
    await source.store.getPr({ version: '1.0', pkgarch: 'a', checksum: 'a' });
    await target.store.freeze({ version: '1.*' });
    await expect(migrateStore(source.db, target.db)).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('already holds 0 rows and 1 freezes'),
    });
  });

  it('copies a revision held by two checksums as it is, as a chained server’s store holds them', async () => {
    const [source, target] = [await open('migrate_chained_from'), await open('migrate_chained_to')];
    const row = (checksum: string, value: string) => ({ version: '1.0', pkgarch: 'arch', checksum, value });
    // What contract §5 leaves in a chained server's store: c1 moved to 1, then c5 got the upstream's 1.
    expect(await importRevisions(source.db, [row('c1', '0'), row('c1', '1'), row('c5', '1')], { allowLower: true })).toMatchObject({ written: true });
    expect(await migrateStore(source.db, target.db)).toMatchObject({ rowsCopied: 3 });
    expect((await target.store.exportRows({ history: true })).map((copied) => [copied.checksum, copied.value])).toEqual([
      ['c1', '0'],
      ['c1', '1'],
      ['c5', '1'],
    ]);
  });
});
