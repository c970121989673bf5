import { type Kysely, sql } from 'kysely';
import { toPrStoreError } from '../errors/pr-store-error.js';
import type { PrDatabase } from '../engine/schema.js';
import { prepareBulkTransaction } from './bulk-session.js';
import { DataToolError } from './data-tool-error.js';
import { streamRevisions } from './export-revisions.js';
import { importRevisions, type ImportRevisionsOptions } from './import-revisions.js';

/** Row count and order-independent digests of a store's rows and of its packages' greatest revisions. */
export interface StoreFingerprint {
  readonly rows: number;
  readonly packages: number;
  /** Sum of a 60-bit hash of each row, as decimal text (order-independent, so collations do not matter). */
  readonly rowDigest: string;
  /** The same over each package's `(version, pkgarch, greatest revision)`. */
  readonly maximaDigest: string;
}

/** What {@link migrateStore} copied and checked. */
export interface MigrateReport {
  readonly rowsCopied: number;
  readonly source: StoreFingerprint;
  readonly target: StoreFingerprint;
}

/** Options of {@link migrateStore}. */
export type MigrateStoreOptions = Pick<ImportRevisionsOptions, 'batchSize' | 'onProgress' | 'onStaged'>;

/**
 * Copies every row of one prserv database into another, empty one (in one transaction on the
 * target), then checks that the target holds the same rows and the same package maxima.
 * @throws DataToolError `INVALID_ARGUMENT` when the target already holds rows (use import to
 *   merge), `MIGRATION_MISMATCH` when the check fails.
 */
export async function migrateStore(source: Kysely<PrDatabase>, target: Kysely<PrDatabase>, options: MigrateStoreOptions = {}): Promise<MigrateReport> {
  const before = await fingerprintStore(target);
  if (before.rows > 0) {
    throw new DataToolError('INVALID_ARGUMENT', `the target already holds ${before.rows} rows: migrate copies into an empty store (use prserv import to merge)`);
  }
  const report = await importRevisions(target, streamRevisions(source, { history: true }), options);
  await copyProvenance(source, target);
  await copyFreezes(source, target);
  const [from, to] = [await fingerprintStore(source), await fingerprintStore(target)];
  if (from.rows !== to.rows || from.rowDigest !== to.rowDigest || from.packages !== to.packages || from.maximaDigest !== to.maximaDigest) {
    throw new DataToolError(
      'MIGRATION_MISMATCH',
      `after copying, the target differs from the source: ${to.rows} rows and ${to.packages} packages against ${from.rows} and ${from.packages}` +
        (from.rows === to.rows ? ' (same counts, different contents: was the source written to during the copy?)' : ''),
    );
  }
  return { rowsCopied: report.rowsNew, source: from, target: to };
}

/** Rows per round trip when copying provenance. */
const PROVENANCE_PAGE = 5_000;

/**
 * Gives every copied row the provenance it has in the source (when, how, from where, the package's
 * greatest before), instead of the import tool's: a migrated store answers `prserv history` as the
 * old one did. In pages, in the order of the primary key; one transaction on the target.
 */
async function copyProvenance(source: Kysely<PrDatabase>, target: Kysely<PrDatabase>): Promise<void> {
  try {
    await target.transaction().execute(async (trx) => {
      await prepareBulkTransaction(trx);
      let after: { version: string; pkgarch: string; checksum: string; value: string } | undefined;
      for (;;) {
        const page = await sql<{
          version: string;
          pkgarch: string;
          checksum: string;
          value: string;
          stored_at: string | null;
          stored_by: string | null;
          stored_how: string | null;
          previous_max: string | null;
        }>`SELECT version, pkgarch, checksum, value, to_char(stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS stored_at,
            stored_by, stored_how, previous_max
          FROM prserv_revision r
          WHERE ${after === undefined ? sql`true` : sql`(r.version, r.pkgarch, r.checksum, r.value_key) > (${after.version}::text, ${after.pkgarch}::text, ${after.checksum}::text, string_to_array(${after.value}::text, '.')::numeric[])`}
          ORDER BY r.version, r.pkgarch, r.checksum, r.value_key
          LIMIT ${PROVENANCE_PAGE}`.execute(source);
        if (page.rows.length === 0) return;
        const column = <K extends keyof (typeof page.rows)[number]>(key: K) => page.rows.map((row) => row[key]);
        await sql`UPDATE prserv_revision t SET stored_at = v.stored_at::timestamptz, stored_by = v.stored_by,
            stored_how = v.stored_how, previous_max = v.previous_max
          FROM unnest(${column('version')}::text[], ${column('pkgarch')}::text[], ${column('checksum')}::text[],
            ${column('value')}::text[], ${column('stored_at')}::text[], ${column('stored_by')}::text[],
            ${column('stored_how')}::text[], ${column('previous_max')}::text[])
            AS v(version, pkgarch, checksum, value, stored_at, stored_by, stored_how, previous_max)
          WHERE t.version = v.version AND t.pkgarch = v.pkgarch AND t.checksum = v.checksum AND t.value = v.value`.execute(trx);
        after = page.rows.at(-1)!;
      }
    });
  } catch (error) {
    throw toPrStoreError(error, 'import revisions');
  }
}

/** Copies the frozen packages, so that a migrated store keeps every freeze. */
async function copyFreezes(source: Kysely<PrDatabase>, target: Kysely<PrDatabase>): Promise<void> {
  try {
    const freezes = await source.selectFrom('prserv_freeze').selectAll().execute();
    if (freezes.length > 0) await target.insertInto('prserv_freeze').values(freezes).onConflict((conflict) => conflict.doNothing()).execute();
  } catch (error) {
    throw toPrStoreError(error, 'import revisions');
  }
}

/** See {@link StoreFingerprint}. */
export async function fingerprintStore(db: Kysely<PrDatabase>): Promise<StoreFingerprint> {
  const hash = (text: ReturnType<typeof sql>) => sql`(('x' || substr(md5(${text}), 1, 15))::bit(60)::bigint)::numeric`;
  try {
    return await db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
      await prepareBulkTransaction(trx);
      const rows = await sql<{ rows: string; digest: string | null }>`SELECT count(*) AS rows,
        sum(${hash(sql`version || chr(10) || pkgarch || chr(10) || checksum || chr(10) || value`)})::text AS digest
        FROM prserv_revision`.execute(trx);
      const maxima = await sql<{ packages: string; digest: string | null }>`SELECT count(*) AS packages,
        sum(${hash(sql`version || chr(10) || pkgarch || chr(10) || array_to_string(max_key, '.')`)})::text AS digest
        FROM (SELECT version, pkgarch, max(value_key) AS max_key FROM prserv_revision GROUP BY version, pkgarch) AS m`.execute(trx);
      return {
        rows: Number(rows.rows[0]!.rows),
        packages: Number(maxima.rows[0]!.packages),
        rowDigest: rows.rows[0]!.digest ?? '0',
        maximaDigest: maxima.rows[0]!.digest ?? '0',
      };
    });
  } catch (error) {
    throw toPrStoreError(error, 'count the rows of a store');
  }
}
