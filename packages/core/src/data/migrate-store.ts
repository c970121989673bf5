import { type Kysely, sql, type Transaction } from 'kysely';
import { toPrStoreError } from '../errors/pr-store-error.js';
import type { PrDatabase } from '../engine/schema.js';
import { prepareBulkTransaction } from './bulk-session.js';
import { DataToolError, isDataToolError } from './data-tool-error.js';
import { streamRevisions } from './export-revisions.js';
import { importWithin, type ImportRevisionsOptions } from './import-revisions.js';

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
 * Copies every row of one prserv database into another, empty one, with each row's provenance and
 * every freeze, then checks that the target holds the same rows and the same package maxima: all
 * in one transaction on the target, so a failed migration leaves the target as it was. The rows
 * are copied as the source holds them: a chained server's store may give one revision to several
 * checksums (the upstream's numbers), which an import would stop.
 * @throws DataToolError `INVALID_ARGUMENT` when the target already holds rows or freezes (use
 *   import to merge), `MIGRATION_MISMATCH` when the check fails.
 */
export async function migrateStore(source: Kysely<PrDatabase>, target: Kysely<PrDatabase>, options: MigrateStoreOptions = {}): Promise<MigrateReport> {
  try {
    return await target.transaction().execute(async (trx) => {
      const held = await holdings(trx);
      if (held.rows > 0 || held.freezes > 0) {
        throw new DataToolError(
          'INVALID_ARGUMENT',
          `the target already holds ${held.rows} rows and ${held.freezes} freezes: migrate copies into an empty store (use prserv import to merge)`,
        );
      }
      const report = await importWithin(trx, streamRevisions(source, { history: true }), { ...options, allowLower: true });
      // An empty target has no freeze to refuse a row: the rows are written whatever they hold.
      if (!report.written) throw new DataToolError('MIGRATION_MISMATCH', `the target refused ${report.conflictCount} rows`);
      await copyProvenance(source, trx);
      await copyFreezes(source, trx);
      const [from, to] = [await fingerprintStore(source), await fingerprintWithin(trx)];
      if (from.rows !== to.rows || from.rowDigest !== to.rowDigest || from.packages !== to.packages || from.maximaDigest !== to.maximaDigest) {
        throw new DataToolError(
          'MIGRATION_MISMATCH',
          `after copying, the target differs from the source: ${to.rows} rows and ${to.packages} packages against ${from.rows} and ${from.packages}` +
            (from.rows === to.rows ? ' (same counts, different contents: was the source written to during the copy?)' : '') +
            '; nothing was kept',
        );
      }
      return { rowsCopied: report.rowsNew, source: from, target: to };
    });
  } catch (error) {
    if (isDataToolError(error)) throw error;
    throw toPrStoreError(error, 'migrate the store');
  }
}

/** The rows and freezes a store holds. */
async function holdings(trx: Transaction<PrDatabase>): Promise<{ rows: number; freezes: number }> {
  const counts = await sql<{ rows: string; freezes: string }>`SELECT (SELECT count(*) FROM prserv_revision) AS rows,
    (SELECT count(*) FROM prserv_freeze) AS freezes`.execute(trx);
  return { rows: Number(counts.rows[0]!.rows), freezes: Number(counts.rows[0]!.freezes) };
}

/** Rows per round trip when copying provenance. */
const PROVENANCE_PAGE = 5_000;

/**
 * Gives every copied row the provenance it has in the source (when, how, from where, the package's
 * greatest before), instead of the import tool's: a migrated store answers `prserv history` as the
 * old one did. In pages, in the order of the primary key.
 */
async function copyProvenance(source: Kysely<PrDatabase>, trx: Transaction<PrDatabase>): Promise<void> {
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
}

/** Copies the frozen packages, so that a migrated store keeps every freeze. */
async function copyFreezes(source: Kysely<PrDatabase>, trx: Transaction<PrDatabase>): Promise<void> {
  const freezes = await source.selectFrom('prserv_freeze').selectAll().execute();
  if (freezes.length > 0) await trx.insertInto('prserv_freeze').values(freezes).onConflict((conflict) => conflict.doNothing()).execute();
}

/** See {@link StoreFingerprint}. */
export async function fingerprintStore(db: Kysely<PrDatabase>): Promise<StoreFingerprint> {
  try {
    return await db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
      await prepareBulkTransaction(trx);
      return await fingerprintWithin(trx);
    });
  } catch (error) {
    throw toPrStoreError(error, 'count the rows of a store');
  }
}

/** {@link fingerprintStore} inside a transaction the caller holds. */
async function fingerprintWithin(trx: Transaction<PrDatabase>): Promise<StoreFingerprint> {
  const hash = (text: ReturnType<typeof sql>) => sql`(('x' || substr(md5(${text}), 1, 15))::bit(60)::bigint)::numeric`;
  // Each key part behind its length: no two rows spell the same text, whatever their keys hold.
  const spelled = (column: ReturnType<typeof sql>) => sql`length(${column}) || ':' || ${column}`;
  const rows = await sql<{ rows: string; digest: string | null }>`SELECT count(*) AS rows,
    sum(${hash(sql`${spelled(sql`version`)} || ${spelled(sql`pkgarch`)} || ${spelled(sql`checksum`)} || value`)})::text AS digest
    FROM prserv_revision`.execute(trx);
  const maxima = await sql<{ packages: string; digest: string | null }>`SELECT count(*) AS packages,
    sum(${hash(sql`${spelled(sql`version`)} || ${spelled(sql`pkgarch`)} || array_to_string(max_key, '.')`)})::text AS digest
    FROM (SELECT version, pkgarch, max(value_key) AS max_key FROM prserv_revision GROUP BY version, pkgarch) AS m`.execute(trx);
  return {
    rows: Number(rows.rows[0]!.rows),
    packages: Number(maxima.rows[0]!.packages),
    rowDigest: rows.rows[0]!.digest ?? '0',
    maximaDigest: maxima.rows[0]!.digest ?? '0',
  };
}
