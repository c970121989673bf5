import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PrStore, openPrStore } from '@prserv/core';
import { type TestDatabase, createPostgresDatabase } from '../../../../test/support/databases.js';

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
