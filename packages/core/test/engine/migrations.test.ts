import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrStore, openPrStore } from '@prserv/core';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { type TestDatabase, createEmbeddedFolder, createPostgresDatabase } from '@prserv/test-support';

const REPLICAS = 8;
const PER_REPLICA = 8;

describe('schema migrations on PostgreSQL', () => {
  let database: TestDatabase;
  const stores: PrStore[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase('migrations');
  });

  afterAll(async () => {
    await Promise.allSettled(stores.map((store) => store.close()));
    await database?.drop();
  });

  it('lets 8 replicas start at the same moment on an empty database', async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: REPLICAS }, () => openPrStore({ database: database.url, poolSize: PER_REPLICA })),
    );
    for (const outcome of outcomes) if (outcome.status === 'fulfilled') stores.push(outcome.value);
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(failures).toEqual([]);
    expect(stores).toHaveLength(REPLICAS);
    for (const store of stores) expect(store.kind).toBe('postgres');
  });

  it('then allocates consistently through all of them: 64 new checksums get 0..63', async () => {
    expect(stores).toHaveLength(REPLICAS);
    const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
    const values = await Promise.all(
      stores.flatMap((store, replica) =>
        Array.from({ length: PER_REPLICA }, (_, index) => store.getPr({ ...pkg, checksum: `c${replica}-${index}` })),
      ),
    );
    expect(values.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: REPLICAS * PER_REPLICA }, (_, index) => index));

    // Every replica sees the same 64 rows and the same maximum.
    for (const store of stores) {
      expect(await store.maxPackagePr(pkg)).toBe('63');
      expect(await store.exportRows({ ...pkg, history: true })).toHaveLength(REPLICAS * PER_REPLICA);
    }
    // A checksum asked again through any replica keeps its value.
    const again = await Promise.all(stores.map((store) => store.getPr({ ...pkg, checksum: 'c0-0', history: true })));
    expect(new Set(again)).toEqual(new Set([values[0]]));
  });

  it('opens again on the current schema', async () => {
    const late = await openPrStore({ database: database.url, poolSize: 1 });
    try {
      expect(await late.maxPackagePr({ version: '1.0-r0', pkgarch: 'core2-64' })).toBe('63');
    } finally {
      await late.close();
    }
  });
});

/** Schema 0001 as the first release created it. */
const FIRST_SCHEMA = `
  CREATE TABLE prserv_revision (
    version text NOT NULL, pkgarch text NOT NULL, checksum text NOT NULL,
    value text NOT NULL CONSTRAINT prserv_revision_value_canonical
      CHECK (value ~ '^(0|[1-9][0-9]*)([.](0|[1-9][0-9]*))*$'),
    value_key numeric[] GENERATED ALWAYS AS (string_to_array(value, '.')::numeric[]) STORED,
    CONSTRAINT prserv_revision_pkey PRIMARY KEY (version, pkgarch, checksum, value_key));
  CREATE INDEX prserv_revision_package_value ON prserv_revision (version, pkgarch, value_key);`;
/** Kysely's record that migration 0001 ran. */
const FIRST_SCHEMA_RECORDED = `
  CREATE TABLE kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL);
  INSERT INTO kysely_migration VALUES ('0001-revision-table', '2026-11-01T00:00:00.000Z');`;

describe('upgrading a database made by the first schema', () => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await createPostgresDatabase('upgrade');
    // What a server of the first release left: schema 0001 with rows, recorded by Kysely's migrator.
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`${FIRST_SCHEMA}
        INSERT INTO prserv_revision (version, pkgarch, checksum, value)
          SELECT '1.0-r0', 'core2-64', 'c' || i, i::text FROM generate_series(0, 10) AS i;
        INSERT INTO prserv_revision (version, pkgarch, checksum, value) VALUES ('1.0-r0', 'core2-64', 'c3', '11');
        ${FIRST_SCHEMA_RECORDED}`);
    } finally {
      await client.end();
    }
  });

  afterAll(async () => {
    await database?.drop();
  });

  it('replaces the package index, keeps every answer, and leaves old rows without provenance', async () => {
    const store = await openPrStore({ database: database.url, poolSize: 2 });
    try {
      const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
      expect(await store.maxPackagePr(pkg)).toBe('11');
      expect(await store.testPr({ ...pkg, checksum: 'c3', history: true })).toBe('3');
      expect(await store.testPr({ ...pkg, checksum: 'c3' })).toBe('11');
      expect(await store.getPr({ ...pkg, checksum: 'new', history: true })).toBe('12');
    } finally {
      await store.close();
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const { rows } = await client.query(`SELECT indexname FROM pg_indexes WHERE tablename = 'prserv_revision' ORDER BY 1`);
      expect(rows.map((row) => row.indexname)).toEqual(['prserv_revision_package', 'prserv_revision_pkey']);
      const applied = await client.query('SELECT name FROM kysely_migration ORDER BY name');
      expect(applied.rows.map((row) => row.name)).toEqual([
        '0001-revision-table',
        '0002-package-index-on-expression',
        '0003-provenance-and-freeze',
      ]);
      // Rows stored before provenance existed say nothing of it; the row stored since says all.
      const { rows: provenance } = await client.query(
        `SELECT checksum, value, stored_at IS NOT NULL AS dated, stored_by, stored_how, previous_max
           FROM prserv_revision ORDER BY value_key, checksum`,
      );
      expect(provenance.slice(0, -1).every((row) => !row.dated && row.stored_how === null && row.previous_max === null)).toBe(true);
      expect(provenance.at(-1)).toEqual({
        checksum: 'new',
        value: '12',
        dated: true,
        stored_by: null,
        stored_how: 'get-pr-history',
        previous_max: '11',
      });
    } finally {
      await client.end();
    }
  });
});

describe('upgrading an embedded store made by the first schema', () => {
  let folder: TestDatabase;

  beforeAll(async () => {
    // A new store, made by hand as the first release left it: schema 0001 with rows.
    folder = await createEmbeddedFolder('upgrade-embedded', { fresh: true });
    await mkdir(folder.url, { recursive: true });
    const pglite = await PGlite.create(join(folder.url, 'pgdata'));
    try {
      await pglite.exec(`${FIRST_SCHEMA}
        INSERT INTO prserv_revision (version, pkgarch, checksum, value) VALUES ('1.0-r0', 'core2-64', 'old', '4');
        ${FIRST_SCHEMA_RECORDED}`);
    } finally {
      await pglite.close();
    }
  });

  afterAll(async () => {
    await folder?.drop();
  });

  it('shows the old rows’ provenance as unknown and records the new ones', async () => {
    const store = await openPrStore({ database: folder.url });
    try {
      const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
      expect(await store.getPr({ ...pkg, checksum: 'new', client: '10.0.0.1' })).toBe('5');
      const history = await store.packageHistory(pkg);
      expect(history).toEqual([
        { checksum: 'old', value: '4', storedAt: null, storedBy: null, storedHow: null, previousMax: null },
        { checksum: 'new', value: '5', storedAt: expect.any(String), storedBy: '10.0.0.1', storedHow: 'get-pr-nohist', previousMax: '4' },
      ]);
    } finally {
      await store.close();
    }
  });
});
