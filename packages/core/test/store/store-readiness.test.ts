import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore } from '@prserv/core';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

describe.each(STORE_KINDS)('PrStore.checkReady and poolFigures on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;

  beforeAll(async () => {
    database = await create(`readiness_${kind}`);
    store = await openPrStore({ database: database.url });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('is ready on a current schema, and reports the pool only for PostgreSQL', async () => {
    await expect(store.checkReady()).resolves.toBeUndefined();
    const figures = store.poolFigures();
    if (kind === 'postgres') expect(figures).toMatchObject({ total: expect.any(Number), idle: expect.any(Number), waiting: 0 });
    else expect(figures).toBeUndefined();
  });
});

describe('PrStore.checkReady when the database changes under it', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPostgresDatabase('readiness_changes');
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('says why it is not ready: a schema it does not know, then a closed store', async () => {
    const store = await openPrStore({ database: database.url });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      // As if a newer version had been rolled back over this one's migrations.
      await admin.query(`DELETE FROM kysely_migration WHERE name = (SELECT max(name) FROM kysely_migration)`);
      await expect(store.checkReady()).rejects.toThrow('the database schema is not the one this prserv version expects');
    } finally {
      await admin.end();
      await store.close();
    }
    await expect(store.checkReady()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});
