import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore } from '@prserv/core';
import {
  READ_FACTS,
  READ_GREATEST_BETWEEN,
  REQUEST_PATH_SETTINGS,
  STORE_IF_UNCHANGED,
} from '../../src/engine/revision-statements.js';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';

/** Runs SQL on a store's database directly, outside the engine. */
interface RawSql {
  query(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  exec(text: string): Promise<void>;
  close(): Promise<void>;
}

async function connectRaw(kind: string, location: string): Promise<RawSql> {
  if (kind === 'postgres') {
    const client = new pg.Client({ connectionString: location });
    await client.connect();
    return {
      query: async (text, params) => (await client.query(text, params)).rows,
      exec: async (text) => void (await client.query(text)),
      close: () => client.end(),
    };
  }
  const pglite = await PGlite.create(join(location, 'pgdata'));
  return {
    query: async (text, params) => (await pglite.query<Record<string, unknown>>(text, params)).rows,
    exec: async (text) => void (await pglite.exec(text)),
    close: () => pglite.close(),
  };
}

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Scan Direction'?: string;
  Plans?: PlanNode[];
}

/** Every table scan in a plan, e.g. `Seq Scan` or `Index Scan Backward on prserv_revision_pkey`. */
function scans(plan: PlanNode): string[] {
  const type = plan['Node Type'];
  const direction = plan['Scan Direction'] === 'Backward' ? ' Backward' : '';
  const own = /Scan/.test(type) && type !== 'Function Scan'
    ? [plan['Index Name'] ? `${type}${direction} on ${plan['Index Name']}` : type]
    : [];
  return [...own, ...(plan.Plans ?? []).flatMap(scans)];
}

async function planOf(raw: RawSql, text: string, params: unknown[]): Promise<string[]> {
  const [row] = await raw.query(`EXPLAIN (FORMAT JSON) ${text}`, params);
  const explained = Object.values(row!)[0];
  const parsed = (typeof explained === 'string' ? JSON.parse(explained) : explained) as [{ Plan: PlanNode }];
  return scans(parsed[0].Plan);
}

// One key per mode: the plan holds the history probe, the no-history probe and the package probe.
const factsParams = [['1.0-r0', '2.0-r0'], ['core2-64', 'armv8a'], ['c1', 'c2'], [true, false]];

/** STORE_IF_UNCHANGED's parameters for the keys of `factsParams`: what each lookup saw, and one row per key. */
function storeParams(seenValues: (string | null)[], seenMaxes: (string | null)[], values: string[]): unknown[] {
  const [versions, pkgarchs, checksums] = factsParams;
  return [...factsParams, seenValues, seenMaxes, versions, pkgarchs, checksums, values, [null, null], ['get-pr-history', 'get-pr-nohist'], seenMaxes];
}

describe.each(STORE_KINDS)('request-path statements on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let raw: RawSql;

  beforeAll(async () => {
    database = await create(`plans_${kind}`);
    await (await openPrStore({ database: database.url })).close();
    raw = await connectRaw(kind, database.url);
    await raw.exec(REQUEST_PATH_SETTINGS);
  });

  afterAll(async () => {
    await raw?.close();
    await database?.drop();
  });

  // A new database has no statistics until its first ANALYZE; the plans must not care, at any size.
  it.each([0, 1, 5000])('probes the one fitting index with %i rows in a package, never analysed', async (rows) => {
    await raw.exec('TRUNCATE prserv_revision');
    if (rows > 0) {
      await raw.query(
        `INSERT INTO prserv_revision (version, pkgarch, checksum, value)
         SELECT '1.0-r0', 'core2-64', 'c' || i, i::text FROM generate_series(0, $1::int - 1) AS i`,
        [rows],
      );
    }
    const [analysed] = await raw.query(
      `SELECT count(*)::int AS n FROM pg_stat_user_tables
       WHERE relname = 'prserv_revision' AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)`,
    );
    expect(analysed!.n).toBe(0);

    expect((await planOf(raw, READ_FACTS, factsParams)).sort()).toEqual([
      'Index Scan Backward on prserv_revision_package',
      'Index Scan Backward on prserv_revision_pkey',
      'Index Scan on prserv_revision_pkey',
    ]);
    expect(await planOf(raw, READ_GREATEST_BETWEEN, ['1.0-r0', 'core2-64', '3', '4'])).toEqual([
      'Index Scan Backward on prserv_revision_package',
    ]);
    // The facts under the locks: the same three probes, and the freezes through their index.
    expect((await planOf(raw, STORE_IF_UNCHANGED, storeParams([null, null], [null, null], ['1', '2']))).sort()).toEqual([
      'CTE Scan',
      'Index Only Scan on prserv_freeze_order',
      'Index Scan Backward on prserv_revision_package',
      'Index Scan Backward on prserv_revision_pkey',
      'Index Scan on prserv_freeze_order',
      'Index Scan on prserv_revision_pkey',
      'Subquery Scan',
    ]);
  });

  it('reads the right facts through the package index', async () => {
    await raw.query(`INSERT INTO prserv_revision (version, pkgarch, checksum, value) VALUES ('1.0-r0', 'core2-64', 'c7', '5000')`);
    const facts = await raw.query(READ_FACTS, [
      ['1.0-r0', '1.0-r0', '1.0-r', '1.0-r0', '1.0-r0'],
      ['core2-64', 'core2-64', '0core2-64', 'core2-64', 'core2-64'],
      ['c7', 'c7', 'c7', null, 'new'],
      [true, false, false, false, true],
    ]);
    expect(facts).toEqual([
      // History, known checksum: its first revision; the package maximum is not read.
      { ord: 1, checksum_value: '7', package_max: null },
      // No-history: its last revision and the package maximum.
      { ord: 2, checksum_value: '5000', package_max: '5000' },
      // "1.0-r" + "0core2-64" spells the same text as "1.0-r0" + "core2-64": the length prefix keeps them apart.
      { ord: 3, checksum_value: null, package_max: null },
      { ord: 4, checksum_value: null, package_max: '5000' },
      // History, unknown checksum: the package maximum is read.
      { ord: 5, checksum_value: null, package_max: '5000' },
    ]);
  });

  it('stores a planned batch only while every fact its lookups saw still holds', async () => {
    await raw.exec('TRUNCATE prserv_revision');
    const stored = async () =>
      (await raw.query(`SELECT version, checksum, value FROM prserv_revision ORDER BY version, checksum, value_key`)).map(
        (row) => `${row.version as string} ${row.checksum as string} ${row.value as string}`,
      );
    /** Keys in 1.0-r0 (history) and 2.0-r0 (no-history): their checksums, what each lookup saw, the values planned. */
    const run = async (checksums: string[], seenValues: (string | null)[], seenMaxes: (string | null)[], values: string[]) => {
      const [versions, pkgarchs] = factsParams;
      const params = [versions, pkgarchs, checksums, [true, false], seenValues, seenMaxes,
        versions, pkgarchs, checksums, values, [null, null], ['get-pr-history', 'get-pr-nohist'], seenMaxes];
      return ((await raw.query(STORE_IF_UNCHANGED, params))[0] as { stored: number }).stored;
    };
    // Both packages empty, as seen: both rows stored.
    expect(await run(['c1', 'c2'], [null, null], [null, null], ['0', '0'])).toBe(2);
    expect(await stored()).toEqual(['1.0-r0 c1 0', '2.0-r0 c2 0']);
    // 1.0-r0 seen empty, but it holds 0 now: nothing stored, not even the other key's row.
    expect(await run(['c3', 'c4'], [null, null], [null, '0'], ['0', '1'])).toBe(0);
    // c2 seen unknown, but it holds 0 now (its package maximum as seen).
    expect(await run(['c3', 'c2'], [null, null], ['0', '0'], ['1', '1'])).toBe(0);
    // A freeze matching 2.0-r0, everything else as seen.
    await raw.query(`INSERT INTO prserv_freeze (version_glob, pkgarch_glob, version_like, pkgarch_like) VALUES ('2.0-*', '*', '2.0-%', '%')`);
    expect(await run(['c3', 'c4'], [null, null], ['0', '0'], ['1', '1'])).toBe(0);
    expect(await stored()).toEqual(['1.0-r0 c1 0', '2.0-r0 c2 0']);
    await raw.exec('TRUNCATE prserv_freeze');
    // Thawed: the same batch is stored.
    expect(await run(['c3', 'c4'], [null, null], ['0', '0'], ['1', '1'])).toBe(2);
    expect(await stored()).toEqual(['1.0-r0 c1 0', '1.0-r0 c3 1', '2.0-r0 c2 0', '2.0-r0 c4 1']);
    await raw.exec('TRUNCATE prserv_revision');
  });
});
