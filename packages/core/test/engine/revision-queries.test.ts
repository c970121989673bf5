import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Kysely } from 'kysely';
import {
  createPrEngine,
  createPrEngineOver,
  createRevisionQueries,
  importRevisions,
  openPrStore,
  type PrDatabase,
  type PipelinedSessions,
  type PrStore,
  type RevisionQueries,
  type UpstreamPrSource,
  type WriteBatchPath,
} from '@prserv/core';
import pg from 'pg';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { LOCK_PACKAGES } from '../../src/engine/revision-statements.js';

/** Counts the round trips of pipelined sessions: one per `run`. */
function countRoundTrips(sessions: PipelinedSessions) {
  const counter = { roundTrips: 0, sessions: undefined as unknown as PipelinedSessions };
  counter.sessions = async () => {
    const session = await sessions();
    return {
      run: (statements) => {
        counter.roundTrips += 1;
        return session.run(statements);
      },
      release: (broken) => session.release(broken),
    };
  };
  return counter;
}

describe.each(STORE_KINDS)('allocations planned from their lookups on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let queries: RevisionQueries;
  let counter: ReturnType<typeof countRoundTrips>;
  let db: Kysely<PrDatabase>;
  /** The way each allocation batch went, as the engine reports it for metrics. */
  const paths: WriteBatchPath[] = [];

  const freshPackage = (name: string) => ({ version: `${name}-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' });

  /** What a lookup of `checksum` sees now, as get-pr would pass it on. */
  const lookUp = async (pkg: { version: string; pkgarch: string }, checksum: string, history: boolean) => {
    const [facts] = await queries.readFacts([{ ...pkg, checksum, history }]);
    return { ...pkg, checksum, history, seen: facts! };
  };

  /** Rows of a package as `checksum value`, in revision order. */
  const rows = async (pkg: { version: string; pkgarch: string }) =>
    (await store.exportRows({ ...pkg, checksum: null, history: true })).map((row) => `${row.checksum} ${row.value}`);

  beforeAll(async () => {
    database = await create(`seen_facts_${kind}`);
    store = await openPrStore({
      database: database.url,
      createEngine: (kysely, options) => {
        db = kysely;
        counter = countRoundTrips(options.pipelinedSessions!);
        queries = createRevisionQueries(kysely, {
          singleSession: options.singleSession ?? false,
          pipelinedSessions: counter.sessions,
          onWriteBatch: (path) => paths.push(path),
        });
        return createPrEngineOver(queries, options);
      },
    });
  });

  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('refuses to extend an upstream revision past the longest revision, and stores nothing', async () => {
    const chainedTo = (packageMax: string) => {
      const upstream: UpstreamPrSource = { name: 'fake', maxPackagePr: async () => packageMax, testPr: async () => null };
      return createPrEngine(db, { upstream, singleSession: kind === 'embedded', coalescing: false });
    };
    const pkg = freshPackage('long-upstream');
    const refused = await chainedTo('1'.repeat(127))
      .getPr({ ...pkg, checksum: 'c0' })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', message: expect.stringContaining('longer than 128 characters') });
    expect(await rows(pkg)).toEqual([]);
    // 126 characters and ".0": exactly the longest.
    expect(await chainedTo('1'.repeat(126)).getPr({ ...pkg, checksum: 'c0' })).toBe(`${'1'.repeat(126)}.0`);
  });

  it('stores a new revision in one round trip when nothing moved since the lookup', async () => {
    const pkg = freshPackage('quiet');
    const before = counter.roundTrips;
    paths.length = 0;
    expect(await store.getPr({ ...pkg, checksum: 'a', history: true })).toBe('0');
    expect(await store.getPr({ ...pkg, checksum: 'b', history: false })).toBe('1');
    expect(counter.roundTrips - before).toBe(2);
    expect(paths).toEqual(['first-try', 'first-try']);
    expect(await rows(pkg)).toEqual(['a 0', 'b 1']);
  });

  it('takes the general way, two round trips, for a batch whose requests bring no lookup facts', async () => {
    const pkg = freshPackage('unseen');
    const before = counter.roundTrips;
    paths.length = 0;
    expect(await queries.allocate([{ ...pkg, checksum: 'a', history: true }])).toEqual([{ value: '0', isNew: true }]);
    expect(counter.roundTrips - before).toBe(2);
    expect(paths).toEqual(['general']);
  });

  it('stores a mixed batch in one round trip: both modes, a checksum twice, dotted revisions, two packages', async () => {
    const dotted = freshPackage('dotted');
    const empty = freshPackage('empty');
    await store.importOne({ ...dotted, checksum: 'k', value: '1.2' });
    await store.importOne({ ...dotted, checksum: 'top', value: '1.3' });
    const requests = [
      // No-history, known below the package maximum: moves above it.
      await lookUp(dotted, 'k', false),
      await lookUp(dotted, 'n', true),
      // The same checksum again in the same batch: decided once.
      await lookUp(dotted, 'n', true),
      await lookUp(empty, 'x', false),
    ];
    const before = counter.roundTrips;
    paths.length = 0;
    expect(await queries.allocate(requests)).toEqual([
      { value: '1.4', isNew: true },
      { value: '1.5', isNew: true },
      { value: '1.5', isNew: false },
      { value: '0', isNew: true },
    ]);
    expect(counter.roundTrips - before).toBe(1);
    expect(paths).toEqual(['first-try']);
    expect(await rows(dotted)).toEqual(['k 1.2', 'top 1.3', 'k 1.4', 'n 1.5']);
    expect(await rows(empty)).toEqual(['x 0']);
  });

  // The embedded store is one session: an import and an allocation cannot overlap there.
  it.runIf(kind === 'postgres')('decides nothing from what a running import is about to change', async () => {
    const pkg = freshPackage('importing');
    await store.getPr({ ...pkg, checksum: 'a', history: true });
    let locked!: () => void;
    let proceed!: () => void;
    const importHoldsItsLock = new Promise<void>((resolve) => (locked = resolve));
    const importMayGoOn = new Promise<void>((resolve) => (proceed = resolve));
    // importRevisions takes its table lock before it reads the first row.
    async function* source() {
      locked();
      await importMayGoOn;
      yield { ...pkg, checksum: 'imported', value: '1' };
    }
    const importing = importRevisions(db, source());
    await importHoldsItsLock;
    // The general way (no lookup facts): its read, had it not waited, would see only 'a 0'.
    const allocating = queries.allocate([{ ...pkg, checksum: 'b', history: true }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    proceed();
    expect((await importing).written).toBe(true);
    expect(await allocating).toEqual([{ value: '2', isNew: true }]);
    expect(await rows(pkg)).toEqual(['a 0', 'imported 1', 'b 2']);
  });

  it('plans a lookup that an own earlier batch overtook from that batch’s rows, still in one round trip', async () => {
    const pkg = freshPackage('own');
    // Both lookups ran before either allocation, as when requests queue behind a batch in flight.
    const first = await lookUp(pkg, 'a', true);
    const second = await lookUp(pkg, 'b', true);
    const before = counter.roundTrips;
    expect(await queries.allocate([first])).toEqual([{ value: '0', isNew: true }]);
    expect(await queries.allocate([second])).toEqual([{ value: '1', isNew: true }]);
    expect(counter.roundTrips - before).toBe(2);
    expect(await rows(pkg)).toEqual(['a 0', 'b 1']);
  });

  it('plans a lookup that another writer overtook again from what is stored: no value twice, no gap', async () => {
    const pkg = freshPackage('overtaken');
    await store.getPr({ ...pkg, checksum: 'a', history: true });
    const stale = await lookUp(pkg, 'b', true);
    // Another writer (an import, another replica) stores 5 after the lookup.
    await store.importOne({ ...pkg, checksum: 'imported', value: '5' });
    const before = counter.roundTrips;
    paths.length = 0;
    expect(await queries.allocate([stale])).toEqual([{ value: '6', isNew: true }]);
    // The try that stored nothing, then the general way: locks and read, insert and commit.
    expect(counter.roundTrips - before).toBe(3);
    expect(paths).toEqual(['overtaken']);
    expect(await rows(pkg)).toEqual(['a 0', 'imported 5', 'b 6']);
  });

  it('answers the revision a checksum got after its lookup, in history mode, and stores nothing', async () => {
    const pkg = freshPackage('known');
    const stale = await lookUp(pkg, 'a', true);
    expect(await store.getPr({ ...pkg, checksum: 'a', history: true })).toBe('0');
    expect(await queries.allocate([stale])).toEqual([{ value: '0', isNew: false }]);
    expect(await rows(pkg)).toEqual(['a 0']);
  });

  it('holds a freeze made after the lookup', async () => {
    const pkg = freshPackage('frozen');
    await store.getPr({ ...pkg, checksum: 'a', history: false });
    const stale = await lookUp(pkg, 'b', false);
    await store.freeze({ version: pkg.version });
    try {
      expect(await queries.allocate([stale])).toEqual([{ value: '0', isNew: false }]);
      expect(await rows(pkg)).toEqual(['a 0']);
    } finally {
      await store.thaw({ version: pkg.version });
    }
  });

  it('decides a batch as a whole: one request overtaken sends every request of it the general way', async () => {
    const moved = freshPackage('moved');
    const still = freshPackage('still');
    const requests = [await lookUp(moved, 'a', true), await lookUp(still, 'a', true), await lookUp(still, 'b', true)];
    await store.importOne({ ...moved, checksum: 'imported', value: '2' });
    expect(await queries.allocate(requests)).toEqual([
      { value: '3', isNew: true },
      { value: '0', isNew: true },
      { value: '1', isNew: true },
    ]);
    expect(await rows(moved)).toEqual(['imported 2', 'a 3']);
    expect(await rows(still)).toEqual(['a 0', 'b 1']);
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('allocations on a database whose default isolation is repeatable read', () => {
  let database: TestDatabase;
  let store: PrStore;
  let queries: RevisionQueries;
  let holder: pg.Client;

  beforeAll(async () => {
    database = await createPostgresDatabase('repeatable_read');
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(
      `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = %L', current_database(), 'repeatable read'); END $$`,
    );
    await admin.end();
    store = await openPrStore({
      database: database.url,
      createEngine: (kysely, options) => {
        queries = createRevisionQueries(kysely, { singleSession: false, ...(options.pipelinedSessions ? { pipelinedSessions: options.pipelinedSessions } : {}) });
        return createPrEngineOver(queries, options);
      },
    });
    holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
  });

  afterAll(async () => {
    await holder?.end();
    await store?.close();
    await database?.drop();
  });

  it('reads, behind the package lock, what the lock’s previous holder committed', async () => {
    const pkg = { version: 'rr-1.0-r0', pkgarch: 'core2-64' };
    expect((await holder.query<{ default_transaction_isolation: string }>('SHOW default_transaction_isolation')).rows[0]!.default_transaction_isolation).toBe('repeatable read');
    await store.getPr({ ...pkg, checksum: 'a', history: true });
    // Another writer holds the package's lock and stores 1, as another replica would.
    await holder.query('BEGIN');
    await holder.query(LOCK_PACKAGES, [[pkg.version], [pkg.pkgarch]]);
    await holder.query(
      `INSERT INTO prserv_revision (version, pkgarch, checksum, value) VALUES ($1, $2, 'other', '1')`,
      [pkg.version, pkg.pkgarch],
    );
    // The general way (no lookup facts): it waits for the lock, then reads.
    const allocating = queries.allocate([{ ...pkg, checksum: 'b', history: true }]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await holder.query('COMMIT');
    expect(await allocating).toEqual([{ value: '2', isNew: true }]);
    expect((await store.exportRows({ ...pkg, checksum: null, history: true })).map((row) => `${row.checksum} ${row.value}`)).toEqual([
      'a 0',
      'other 1',
      'b 2',
    ]);
  });
});
