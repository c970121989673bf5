import { type Kysely, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPrEngine, type OpenPrStoreOptions, openPrStore, type PrDatabase, type PrStore } from '@prserv/core';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { checkSessionReadOnly } from '../../src/store/read-only-sessions.js';

/** Opens a store and keeps the database handle it gives its engine. */
async function openKeepingHandle(options: OpenPrStoreOptions): Promise<{ store: PrStore; db: Kysely<PrDatabase> }> {
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

async function settingsOf(db: Kysely<PrDatabase>): Promise<{ readOnly: string; workMem: string }> {
  const { rows } = await sql<{ readOnly: string; workMem: string }>`SELECT
    current_setting('default_transaction_read_only') AS "readOnly", current_setting('work_mem') AS "workMem"`.execute(db);
  return rows[0]!;
}

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('read-only PostgreSQL sessions', () => {
  let database: TestDatabase;
  const opened: PrStore[] = [];
  const savedPgOptions = process.env.PGOPTIONS;

  beforeAll(async () => {
    database = await createPostgresDatabase('read_only_sessions');
  });
  afterEach(async () => {
    if (savedPgOptions === undefined) delete process.env.PGOPTIONS;
    else process.env.PGOPTIONS = savedPgOptions;
    for (const store of opened.splice(0)) await store.close();
  });
  afterAll(async () => {
    await database?.drop();
  });

  async function open(options: OpenPrStoreOptions): Promise<Kysely<PrDatabase>> {
    const { store, db } = await openKeepingHandle(options);
    opened.push(store);
    return db;
  }

  it('start read-only on a read-only store, and read-write on a writable one', async () => {
    expect((await settingsOf(await open({ database: database.url, readOnly: true }))).readOnly).toBe('on');
    expect((await settingsOf(await open({ database: database.url }))).readOnly).toBe('off');
  });

  it('keep the startup options of the URL, and stay read-only when those ask for read-write', async () => {
    const url = new URL(database.url);
    url.searchParams.set('options', '-c work_mem=5MB -c default_transaction_read_only=off');
    expect(await settingsOf(await open({ database: url.toString(), readOnly: true }))).toEqual({ readOnly: 'on', workMem: '5MB' });
    // Without the store's option the URL's own wins: the test above is not vacuous.
    expect(await settingsOf(await open({ database: url.toString() }))).toEqual({ readOnly: 'off', workMem: '5MB' });
  });

  it('keep the startup options of PGOPTIONS', async () => {
    process.env.PGOPTIONS = '-c work_mem=6MB';
    expect(await settingsOf(await open({ database: database.url, readOnly: true }))).toEqual({ readOnly: 'on', workMem: '6MB' });
  });

  it('start read-only without prepared statements too', async () => {
    const db = await open({ database: database.url, readOnly: true, preparedStatements: false });
    expect((await settingsOf(db)).readOnly).toBe('on');
  });

  it('are checked: a session that did not start read-only is refused with a clear error', async () => {
    await expect(checkSessionReadOnly(await open({ database: database.url, readOnly: true }))).resolves.toBeUndefined();
    await expect(checkSessionReadOnly(await open({ database: database.url }))).rejects.toMatchObject({
      name: 'PrStoreError',
      code: 'DATABASE_ERROR',
      message: expect.stringMatching(/did not start read-only .*options/),
    });
  });
});
