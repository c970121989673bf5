import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createPrEngine,
  createRevisionQueries,
  type OpenPrStoreOptions,
  openPrStore,
  type PrDatabase,
  type PrStore,
  PrStoreError,
} from '@prserv/core';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { toPrStoreError } from '../../src/errors/pr-store-error.js';

// A read-only store must be read-only in the database itself, not only in the engine: these tests
// reach past the engine to the Kysely instance the store opened and try to write through it.

/** PostgreSQL's SQLSTATE for a write in a read-only transaction (`read_only_sql_transaction`). */
const READ_ONLY_SQL_TRANSACTION = '25006';
const INSUFFICIENT_PRIVILEGE = '42501';

interface OpenedStore {
  readonly store: PrStore;
  /** The database handle the store's engine runs on. */
  readonly db: Kysely<PrDatabase>;
}

/** Opens a store and keeps the database handle it gives its engine. */
async function openKeepingHandle(options: OpenPrStoreOptions): Promise<OpenedStore> {
  let db: Kysely<PrDatabase> | undefined;
  const store = await openPrStore({
    ...options,
    createEngine: (opened, engineOptions) => {
      db = opened;
      return createPrEngine(opened, engineOptions);
    },
  });
  return { store, db: db! };
}

interface Contents {
  readonly rows: number;
  /** md5 over every row with its physical position and inserting transaction, in heap order. */
  readonly revisions: string;
  /** md5 over Kysely's record of the migrations that ran. */
  readonly migrations: string;
}

/**
 * What the database holds, such that any write changes it: `ctid` and `xmin` change whenever a
 * row is inserted, updated or deleted and put back, even with the same values.
 */
async function contentsOf(db: Kysely<PrDatabase>): Promise<Contents> {
  const { rows } = await sql<Contents>`SELECT
      (SELECT count(*)::int FROM prserv_revision) AS rows,
      (SELECT md5(coalesce(string_agg(concat_ws(' ', r.ctid, r.xmin, r), E'\n' ORDER BY r.ctid), ''))
         FROM prserv_revision r) AS revisions,
      (SELECT md5(coalesce(string_agg(m::text, E'\n' ORDER BY m.name), '')) FROM kysely_migration m) AS migrations`.execute(db);
  return rows[0]!;
}

/** The reason `work` rejects with; fails the test if it resolves. */
async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got a result');
}

const pkgA = { version: '1.0-r0', pkgarch: 'core2-64' };
const pkgB = { version: '2.0-r0', pkgarch: 'core2-64' };
const unknownPkg = { version: '9.9-r0', pkgarch: 'armv8a' };

/** Stores rows of every kind a writer makes: no-history and history allocations, imports. */
async function fill(store: PrStore): Promise<void> {
  // docs/protocol.md's worked example: c0…c3 → 0…3, c0 again (no-history) → 4.
  for (const checksum of ['c0', 'c1', 'c2', 'c3', 'c0']) await store.getPr({ ...pkgA, checksum });
  await store.getPr({ ...pkgB, checksum: 'h0', history: true });
  await store.getPr({ ...pkgB, checksum: 'h1', history: true });
  expect(await store.importOne({ ...pkgB, checksum: 'imported', value: '7' })).toBe('7');
  expect(await store.importOne({ ...pkgB, checksum: 'dotted', value: '7.1' })).toBe('7.1');
}

/** Every request of the engine on the rows {@link fill} stored, with what a writer would answer. */
async function driveEveryRequest(store: PrStore): Promise<void> {
  // get-pr, no-history: an existing newest checksum, a returning older one, a new one.
  expect(await store.getPr({ ...pkgA, checksum: 'c0' })).toBe('4');
  expect(await store.getPr({ ...pkgA, checksum: 'c1' })).toBe('5');
  expect(await store.getPr({ ...pkgA, checksum: 'new' })).toBe('5');
  // Nothing was stored, so asking again gets the same answer.
  expect(await store.getPr({ ...pkgA, checksum: 'new' })).toBe('5');
  expect(await store.getPr({ ...unknownPkg, checksum: 'first' })).toBe('0');
  // get-pr, history: existing and new checksums.
  expect(await store.getPr({ ...pkgA, checksum: 'c0', history: true })).toBe('0');
  expect(await store.getPr({ ...pkgB, checksum: 'h1', history: true })).toBe('1');
  expect(await store.getPr({ ...pkgB, checksum: 'new', history: true })).toBe('7.2');
  // Concurrent requests share round trips (the coalescer's batches) and still store nothing.
  const batch = await Promise.all(
    Array.from({ length: 24 }, (_, index) => store.getPr({ ...pkgA, checksum: `batch${index}`, history: index % 2 === 0 })),
  );
  expect(new Set(batch)).toEqual(new Set(['5']));
  expect(await store.testPr({ ...pkgA, checksum: 'c0' })).toBe('4');
  expect(await store.testPr({ ...pkgA, checksum: 'c0', history: true })).toBe('0');
  expect(await store.testPr({ ...pkgA, checksum: 'new' })).toBeNull();
  expect(await store.testPackage(pkgB)).toBe(true);
  expect(await store.testPackage(unknownPkg)).toBe(false);
  expect(await store.maxPackagePr(pkgA)).toBe('4');
  expect(await store.maxPackagePr(pkgB)).toBe('7.1');
  expect(await store.maxPackagePr(unknownPkg)).toBeNull();
  expect(await store.importOne({ ...pkgA, checksum: 'imported', value: '9' })).toBeNull();
  expect(await store.importOne({ ...pkgA, checksum: 'imported', value: '9', keepHigher: true })).toBeNull();
  expect((await store.exportRows({ history: true })).map((row) => `${row.version}/${row.checksum}=${row.value}`)).toEqual([
    '1.0-r0/c0=0',
    '1.0-r0/c1=1',
    '1.0-r0/c2=2',
    '1.0-r0/c3=3',
    '1.0-r0/c0=4',
    '2.0-r0/h0=0',
    '2.0-r0/h1=1',
    '2.0-r0/imported=7',
    '2.0-r0/dotted=7.1',
  ]);
  expect(await store.exportRows({ version: pkgA.version })).toEqual([{ ...pkgA, checksum: 'c0', value: '4' }]);
  const view = store.readOnlyView!();
  expect(await view.getPr({ ...pkgA, checksum: 'view' })).toBe('5');
  expect(await view.importOne({ ...pkgA, checksum: 'view', value: '1' })).toBeNull();
}

/**
 * Writes as a buggy engine would, through the store's own database handle: plain SQL, and the
 * engine's own write path (the table lock, package locks, facts, the INSERT, as prepared
 * statements where the store prepares them). Each must fail in PostgreSQL with 25006; with a role
 * that may only read (`readOnlyRole`), the write path fails earlier, at its table lock, with 42501.
 */
async function expectEveryWriteRefused(db: Kysely<PrDatabase>, kind: string, readOnlyRole = false): Promise<void> {
  const queries = createRevisionQueries(db, { singleSession: kind === 'embedded' });
  const writePathRefusal = readOnlyRole ? INSUFFICIENT_PRIVILEGE : READ_ONLY_SQL_TRANSACTION;
  // One at a time, each awaited before the next starts, so that no refusal goes unhandled.
  const attempts: [() => Promise<unknown>, string][] = [
    [() => sql`INSERT INTO prserv_revision (version, pkgarch, checksum, value) VALUES ('w', 'w', 'w', '0')`.execute(db), READ_ONLY_SQL_TRANSACTION],
    [() => sql`UPDATE prserv_revision SET value = '99' WHERE checksum = 'c0'`.execute(db), READ_ONLY_SQL_TRANSACTION],
    [() => sql`DELETE FROM prserv_revision`.execute(db), READ_ONLY_SQL_TRANSACTION],
    [() => sql`TRUNCATE prserv_revision`.execute(db), READ_ONLY_SQL_TRANSACTION],
    [() => sql`DROP INDEX prserv_revision_package`.execute(db), READ_ONLY_SQL_TRANSACTION],
    [() => db.transaction().execute((trx) => sql`DELETE FROM kysely_migration`.execute(trx)), READ_ONLY_SQL_TRANSACTION],
    [() => queries.allocate([{ ...pkgA, checksum: 'sneaky', history: false }]), writePathRefusal],
    [() => queries.allocateChained({ ...pkgA, checksum: 'sneaky' }, { packageMax: null, checksumValue: null }, false), writePathRefusal],
    [() => queries.importOne({ ...pkgA, checksum: 'sneaky', value: '100' }, false), writePathRefusal],
    [() => queries.importOne({ ...pkgA, checksum: 'c0', value: '100' }, true), writePathRefusal],
  ];
  for (const [attempt, code] of attempts) {
    const error = await rejectionOf(attempt());
    expect(error).toMatchObject({ code });
    // Classified as any refused statement: logged as an error, its SQL kept off the wire.
    expect(toPrStoreError(error, 'allocate a revision')).toMatchObject({ code: 'DATABASE_ERROR', cause: error });
  }
}

describe.each(STORE_KINDS)('read-only store on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let written: Contents;

  beforeAll(async () => {
    database = await create(`read_only_store_${kind}`);
    const writer = await openKeepingHandle({ database: database.url });
    try {
      await fill(writer.store);
      written = await contentsOf(writer.db);
    } finally {
      await writer.store.close();
    }
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('answers every request as a writer would, refuses writes in the database, and leaves it unchanged', async () => {
    expect(written.rows).toBe(9);
    const { store, db } = await openKeepingHandle({ database: database.url, readOnly: true });
    try {
      expect(store.readOnly).toBe(true);
      expect(await contentsOf(db)).toEqual(written);
      await driveEveryRequest(store);
      await expectEveryWriteRefused(db, kind);
      // The session is still usable after the refusals (each rolled back its own transaction).
      expect(await store.maxPackagePr(pkgA)).toBe('4');
      expect(await contentsOf(db)).toEqual(written);
    } finally {
      await store.close();
    }
    // Seen afresh by a writable store, after the read-only one has closed (PGlite has written
    // its files back): the same rows, where they were, from the same transactions.
    const writer = await openKeepingHandle({ database: database.url });
    try {
      expect(await contentsOf(writer.db)).toEqual(written);
    } finally {
      await writer.store.close();
    }
  });

  it('stores nothing on the chained path either (get-pr with an upstream)', async () => {
    const upstream = {
      name: 'stub upstream',
      maxPackagePr: async () => '4',
      testPr: async (key: { checksum: string }) => (key.checksum === 'known-upstream' ? '3' : null),
    };
    const { store, db } = await openKeepingHandle({ database: database.url, readOnly: true, upstream });
    try {
      expect(await store.getPr({ ...pkgA, checksum: 'new' })).toBe('4.0');
      expect(await store.getPr({ ...pkgA, checksum: 'new' })).toBe('4.0');
      expect(await store.getPr({ ...pkgA, checksum: 'c1' })).toBe('5');
      expect(await store.getPr({ ...pkgA, checksum: 'known-upstream' })).toBe('3');
      expect(await store.getPr({ ...pkgA, checksum: 'c0', history: true })).toBe('0');
      expect(await contentsOf(db)).toEqual(written);
    } finally {
      await store.close();
    }
  });

  it('answers from an empty table on a new database, with sessions that refuse writes', async () => {
    // PostgreSQL: a database without the schema, which the store creates. Embedded: a store
    // folder whose schema is current and whose table is empty.
    const empty = await create(`read_only_empty_${kind}`);
    try {
      const { store, db } = await openKeepingHandle({ database: empty.url, readOnly: true });
      try {
        expect(await store.getPr({ ...pkgA, checksum: 'c0' })).toBe('0');
        expect(await store.getPr({ ...pkgA, checksum: 'c0', history: true })).toBe('0');
        expect(await store.testPr({ ...pkgA, checksum: 'c0' })).toBeNull();
        expect(await store.testPackage(pkgA)).toBe(false);
        expect(await store.maxPackagePr(pkgA)).toBeNull();
        expect(await store.importOne({ ...pkgA, checksum: 'c0', value: '3' })).toBeNull();
        expect(await store.exportRows({ history: true })).toEqual([]);
        await expectEveryWriteRefused(db, kind);
        const contents = await contentsOf(db);
        expect(contents.rows).toBe(0);
        // The schema is complete: every migration is recorded, as a writer records them.
        const { rows } = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(db);
        expect(rows.map((row) => row.name)).toEqual([
          '0001-revision-table',
          '0002-package-index-on-expression',
          '0003-provenance-and-freeze',
        ]);
      } finally {
        await store.close();
      }
      // Nothing of the read-only store stays behind: a writable one opened next stores as usual.
      const writer = await openPrStore({ database: empty.url });
      try {
        expect(await writer.getPr({ ...pkgA, checksum: 'c0' })).toBe('0');
        expect(await writer.testPr({ ...pkgA, checksum: 'c0' })).toBe('0');
      } finally {
        await writer.close();
      }
    } finally {
      await empty.drop();
    }
  });
});

/** The URL of `database` for `role`. */
function urlAs(database: TestDatabase, role: { name: string; password: string }): string {
  const url = new URL(database.url);
  url.username = role.name;
  url.password = role.password;
  return url.toString();
}

/** Runs `work` as the test server's administrator, on `database` or else the administrator's own. */
async function asAdmin<T>(database: TestDatabase | undefined, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: database?.url ?? inject('postgresAdminUrl') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Lets `role` connect to the database and read every table in it, and nothing more. */
async function grantReadOnly(database: TestDatabase, role: string): Promise<void> {
  const name = new URL(database.url).pathname.slice(1);
  await asAdmin(database, async (client) => {
    // PostgreSQL before 15 lets everyone create tables in `public`; this role must not.
    await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await client.query(`REVOKE ALL ON DATABASE "${name}" FROM PUBLIC`);
    await client.query(`GRANT CONNECT ON DATABASE "${name}" TO ${role}`);
    await client.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await client.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
  });
}

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('read-only store with a role that may only read', () => {
  const role = { name: `prserv_reader_${randomBytes(4).toString('hex')}`, password: randomBytes(8).toString('hex') };
  let database: TestDatabase;
  let written: Contents;

  beforeAll(async () => {
    database = await createPostgresDatabase('read_only_role');
    const writer = await openKeepingHandle({ database: database.url });
    try {
      await fill(writer.store);
      written = await contentsOf(writer.db);
    } finally {
      await writer.store.close();
    }
    // A password too: servers with password authentication ask for one.
    await asAdmin(undefined, (client) => client.query(`CREATE ROLE ${role.name} LOGIN PASSWORD '${role.password}'`));
    await grantReadOnly(database, role.name);
  });
  afterAll(async () => {
    await database?.drop();
    // After the database: its grants go with it, and a role that still holds some cannot be dropped.
    await asAdmin(undefined, (client) => client.query(`DROP ROLE IF EXISTS ${role.name}`));
  });

  it('is refused a write by the role itself when the store is writable (the grants hold)', async () => {
    const { store } = await openKeepingHandle({ database: urlAs(database, role) });
    try {
      const error = await rejectionOf(store.getPr({ ...pkgA, checksum: 'writer' }));
      expect((error as PrStoreError).cause).toMatchObject({ code: '42501' });
    } finally {
      await store.close();
    }
  });

  it('serves every request when the schema is current, writing nothing', async () => {
    const { store, db } = await openKeepingHandle({ database: urlAs(database, role), readOnly: true });
    try {
      await driveEveryRequest(store);
      await expectEveryWriteRefused(db, 'postgres', true);
      expect(await contentsOf(db)).toEqual(written);
    } finally {
      await store.close();
    }
  });

  it('refuses to open, saying why, when the schema is missing, and creates nothing', async () => {
    const empty = await createPostgresDatabase('read_only_role_empty');
    try {
      await grantReadOnly(empty, role.name);
      const error = await rejectionOf(openPrStore({ database: urlAs(empty, role), readOnly: true }));
      expect(error).toBeInstanceOf(PrStoreError);
      expect(error).toMatchObject({ code: 'DATABASE_ERROR', cause: { code: '42501' } });
      expect((error as Error).message).toMatch(/schema of this database is missing or out of date.*may not create it/);
      const tables = await asAdmin(empty, (client) =>
        client.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`).then((result) => result.rows),
      );
      expect(tables).toEqual([]);
    } finally {
      await empty.drop();
    }
  });

  it('refuses to open, saying why, when the schema is missing and the role’s sessions are all read-only', async () => {
    // What a hot standby answers too: the role may create tables, but no session of it may write.
    const standbyLike = { name: `prserv_standby_${randomBytes(4).toString('hex')}`, password: randomBytes(8).toString('hex') };
    const empty = await createPostgresDatabase('read_only_role_standby');
    try {
      await asAdmin(undefined, async (client) => {
        await client.query(`CREATE ROLE ${standbyLike.name} LOGIN PASSWORD '${standbyLike.password}'`);
        await client.query(`ALTER ROLE ${standbyLike.name} SET default_transaction_read_only = on`);
      });
      await asAdmin(empty, (client) => client.query(`GRANT ALL ON SCHEMA public TO ${standbyLike.name}`));
      const error = await rejectionOf(openPrStore({ database: urlAs(empty, standbyLike), readOnly: true }));
      expect(error).toMatchObject({ name: 'PrStoreError', code: 'DATABASE_ERROR', cause: { code: READ_ONLY_SQL_TRANSACTION } });
      expect((error as Error).message).toMatch(/missing or out of date/);
    } finally {
      await empty.drop();
      await asAdmin(undefined, (client) => client.query(`DROP ROLE IF EXISTS ${standbyLike.name}`));
    }
  });
});
