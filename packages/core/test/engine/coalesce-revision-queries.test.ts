import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  coalesceRevisionQueries,
  createPrEngineOver,
  createRevisionQueries,
  openPrStore,
  type PrStore,
  type PrStoreError,
  type RevisionQueries,
} from '@prserv/core';
import pg from 'pg';
import { sqlStateOf } from '../../src/errors/pr-store-error.js';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';

/** Counts the round trips that reach the real queries and can poison allocation batches. */
function instrument(queries: RevisionQueries) {
  const seen = { readBatches: [] as number[], allocateBatches: [] as number[], failWith: null as null | ((checksums: string[]) => Error | null) };
  const wrapped: RevisionQueries = {
    ...queries,
    readFacts: (keys) => {
      seen.readBatches.push(keys.length);
      return queries.readFacts(keys);
    },
    allocate: async (requests) => {
      seen.allocateBatches.push(requests.length);
      const failure = seen.failWith?.(requests.map((request) => request.checksum));
      if (failure) throw failure;
      return queries.allocate(requests);
    },
  };
  return { seen, wrapped };
}

/** An error as pg reports a CHECK violation: SQLSTATE 23514. */
function checkViolation(): Error {
  return Object.assign(new Error('new row violates check constraint'), { code: '23514' });
}

describe.each(STORE_KINDS)('coalescing engine on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let seen: ReturnType<typeof instrument>['seen'];

  beforeAll(async () => {
    database = await create(`coalesce_${kind}`);
    store = await openPrStore({
      database: database.url,
      createEngine: (db, options) => {
        const instrumented = instrument(createRevisionQueries(db));
        seen = instrumented.seen;
        return createPrEngineOver(coalesceRevisionQueries(instrumented.wrapped), options);
      },
    });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('serves 300 concurrent requests in far fewer round trips, values gap-free per package', async () => {
    seen.readBatches.length = 0;
    seen.allocateBatches.length = 0;
    const versions = [0, 1, 2].map((n) => `coalesce-${n}-${randomUUID().slice(0, 8)}`);
    const asks = Array.from({ length: 300 }, (_, index) => ({
      version: versions[index % 3]!,
      pkgarch: 'core2-64',
      checksum: `c${index % 150}`,
      history: true,
    }));
    const answers = await Promise.all(asks.map((ask) => store.getPr(ask)));
    for (const version of versions) {
      const values = new Map<string, string>();
      asks.forEach((ask, index) => {
        if (ask.version !== version) return;
        const earlier = values.get(ask.checksum);
        // History mode: both requests for one checksum got the same answer.
        if (earlier !== undefined) expect(answers[index]).toBe(earlier);
        values.set(ask.checksum, answers[index]!);
      });
      const numbers = [...values.values()].map(Number).sort((a, b) => a - b);
      expect(numbers).toEqual(Array.from({ length: 50 }, (_, n) => n));
      expect(await store.maxPackagePr({ version, pkgarch: 'core2-64' })).toBe('49');
    }
    expect(seen.readBatches.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(300);
    expect(seen.readBatches.length).toBeLessThan(30);
    expect(seen.allocateBatches.length).toBeLessThan(30);
  });

  it('fails only the request that breaks its batch; its neighbours are stored once and gap-free', async () => {
    const version = `poison-${randomUUID().slice(0, 8)}`;
    seen.failWith = (checksums) => (checksums.includes('poison') ? checkViolation() : null);
    seen.allocateBatches.length = 0;
    try {
      const asks = ['a', 'b', 'poison', 'c', 'd'].map((checksum) =>
        store.getPr({ version, pkgarch: 'x', checksum, history: true }).then(
          (value) => value,
          (error: { code?: string }) => `failed ${error.code}`,
        ),
      );
      expect(await Promise.all(asks)).toEqual(['0', '1', 'failed DATABASE_ERROR', '2', '3']);
      // The batch of five failed, then each request ran alone.
      expect(seen.allocateBatches).toEqual([5, 1, 1, 1, 1, 1]);
    } finally {
      seen.failWith = null;
    }
    expect(await store.exportRows({ version, history: true })).toHaveLength(4);
  });

  it('fails a batch that lost the database at once, without retrying each request', async () => {
    const version = `down-${randomUUID().slice(0, 8)}`;
    seen.failWith = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    seen.allocateBatches.length = 0;
    try {
      const asks = ['a', 'b', 'c'].map((checksum) =>
        store.getPr({ version, pkgarch: 'x', checksum }).catch((error: { code?: string }) => error.code),
      );
      expect(await Promise.all(asks)).toEqual(['DATABASE_UNAVAILABLE', 'DATABASE_UNAVAILABLE', 'DATABASE_UNAVAILABLE']);
      expect(seen.allocateBatches).toEqual([3]);
    } finally {
      seen.failWith = null;
    }
    expect(await store.getPr({ version, pkgarch: 'x', checksum: 'a' })).toBe('0');
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('coalescing engine past a statement timeout', () => {
  it('fails a batch that waited out its statement timeout at once, without retrying each request', async () => {
    const database = await createPostgresDatabase('coalesce_timeout');
    let seen: ReturnType<typeof instrument>['seen'] | undefined;
    const store = await openPrStore({
      database: database.url,
      statementTimeoutMs: 300,
      createEngine: (db, options) => {
        const instrumented = instrument(createRevisionQueries(db));
        seen = instrumented.seen;
        return createPrEngineOver(coalesceRevisionQueries(instrumented.wrapped), options);
      },
    });
    // An import holds the table against writers for longer than the statement timeout.
    const importer = new pg.Client({ connectionString: database.url });
    await importer.connect();
    try {
      await importer.query('BEGIN');
      await importer.query('LOCK TABLE prserv_revision IN SHARE ROW EXCLUSIVE MODE');
      const asks = ['a', 'b', 'c', 'd'].map((checksum) =>
        store.getPr({ version: '1.0', pkgarch: 'x', checksum }).catch((error: PrStoreError) => [error.code, sqlStateOf(error)]),
      );
      expect(await Promise.all(asks)).toEqual(Array.from({ length: 4 }, () => ['DATABASE_ERROR', '57014']));
      // One transaction waited out the timeout for all four; none was tried again alone.
      expect(seen!.allocateBatches).toEqual([4]);
      await importer.query('ROLLBACK');
      expect(await store.getPr({ version: '1.0', pkgarch: 'x', checksum: 'a' })).toBe('0');
    } finally {
      await importer.end();
      await store.close();
      await database.drop();
    }
  });
});
