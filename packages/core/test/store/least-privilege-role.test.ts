import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { importRevisions, openDataStore, openPrStore, type PrStore } from '@prserv/core';
import { storeRefusal } from '../store-refusal.js';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

// The rights docs/integration.md (*Requirements*, Rights) says a writer's role needs once the
// schema exists, granted one step at a time: each step allows what the page says and no more.

const INSUFFICIENT_PRIVILEGE = '42501';
const pkg = { version: 'rights-1.0-r0', pkgarch: 'core2-64' };

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('a writer role with the documented rights only', () => {
  const role = { name: `prserv_writer_${randomBytes(4).toString('hex')}`, password: randomBytes(8).toString('hex') };
  let database: TestDatabase;
  let roleUrl: string;

  const asAdmin = async (sqlText: string, onDatabase: boolean): Promise<void> => {
    const client = new pg.Client({ connectionString: onDatabase ? database.url : inject('postgresAdminUrl') });
    await client.connect();
    try {
      await client.query(sqlText);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    database = await createPostgresDatabase('writer_role');
    // The schema, made by its owner as on a first start.
    await (await openPrStore({ database: database.url })).close();
    await asAdmin(`CREATE ROLE ${role.name} LOGIN PASSWORD '${role.password}'`, false);
    const name = new URL(database.url).pathname.slice(1);
    // Nothing from PUBLIC but TEMPORARY, which PostgreSQL grants it by default.
    await asAdmin(
      `REVOKE CREATE ON SCHEMA public FROM PUBLIC; REVOKE ALL ON DATABASE "${name}" FROM PUBLIC;
       GRANT CONNECT, TEMPORARY ON DATABASE "${name}" TO ${role.name};
       GRANT USAGE ON SCHEMA public TO ${role.name};
       GRANT SELECT ON prserv_revision, prserv_freeze, kysely_migration, kysely_migration_lock TO ${role.name};
       GRANT INSERT ON prserv_revision TO ${role.name}`,
      true,
    );
    const url = new URL(database.url);
    url.username = role.name;
    url.password = role.password;
    roleUrl = url.toString();
  });

  afterAll(async () => {
    await database?.drop();
    // After the database: its grants go with it, and a role that still holds some cannot be dropped.
    await asAdmin(`DROP ROLE IF EXISTS ${role.name}`, false);
  });

  async function withStore<T>(work: (store: PrStore) => Promise<T>): Promise<T> {
    const store = await openPrStore({ database: roleUrl });
    try {
      return await work(store);
    } finally {
      await store.close();
    }
  }


  const importOneRow = (checksum: string, value: string) =>
    (async () => {
      const { store, db } = await openDataStore({ database: roleUrl });
      try {
        return await importRevisions(db, [{ ...pkg, checksum, value }]);
      } finally {
        await store.close();
      }
    })();

  it('serves a server’s every request with SELECT on the four tables and INSERT on prserv_revision', async () => {
    await withStore(async (store) => {
      expect(await store.getPr({ ...pkg, checksum: 'a' })).toBe('0');
      expect(await store.getPr({ ...pkg, checksum: 'b', history: true })).toBe('1');
      expect(await store.importOne({ ...pkg, checksum: 'c', value: '5' })).toBe('5');
      expect(await store.previewPr({ ...pkg, checksum: 'd' })).toMatchObject({ value: '6', isNew: true });
      expect(await store.maxPackagePr(pkg)).toBe('5');
      expect((await store.exportRows({ ...pkg, history: true })).map((row) => row.value)).toEqual(['0', '1', '5']);
      expect((await store.packageHistory(pkg)).map((row) => row.storedHow)).toEqual(['get-pr-nohist', 'get-pr-history', 'import-one']);
    });
  });

  it('needs INSERT and DELETE on prserv_freeze to freeze and thaw', async () => {
    await withStore(async (store) => {
      expect((await storeRefusal(store.freeze({ version: pkg.version }))).cause).toMatchObject({ code: INSUFFICIENT_PRIVILEGE });
    });
    await asAdmin(`GRANT INSERT, DELETE ON prserv_freeze TO ${role.name}`, true);
    await withStore(async (store) => {
      await store.freeze({ version: pkg.version });
      expect(await store.getPr({ ...pkg, checksum: 'frozen' })).toBe('5');
      await store.thaw({ version: pkg.version });
      expect(await store.getPr({ ...pkg, checksum: 'thawed' })).toBe('6');
    });
  });

  it('needs UPDATE on prserv_revision for a bulk import, which changes no stored row', async () => {
    expect((await storeRefusal(importOneRow('imported', '9'))).cause).toMatchObject({ code: INSUFFICIENT_PRIVILEGE });
    await asAdmin(`GRANT UPDATE ON prserv_revision TO ${role.name}`, true);
    const before = await withStore((store) => store.exportRows({ ...pkg, history: true }));
    expect((await importOneRow('imported', '9')).written).toBe(true);
    const after = await withStore((store) => store.exportRows({ ...pkg, history: true }));
    expect(after).toEqual([...before, { ...pkg, checksum: 'imported', value: '9' }]);
  });
});
