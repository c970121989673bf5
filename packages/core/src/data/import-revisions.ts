import { type Kysely, sql, type Transaction } from 'kysely';
import { toPrStoreError } from '../errors/pr-store-error.js';
import { KEY_BYTES_CEILING, MAX_REVISION_LENGTH, type RevisionRow, type WellFormedCheck } from '../engine/revision-keys.js';
import { isRevision, normalizeRevision } from '../engine/revision.js';
import type { PrDatabase } from '../engine/schema.js';
import type { SourceRow } from './source-row.js';
import { packageKeySql, prepareBulkTransaction } from './bulk-session.js';
import { isDataToolError } from './data-tool-error.js';

/** Default number of rows sent to the database per statement while staging an import. */
export const DEFAULT_IMPORT_BATCH_SIZE = 5000;
/** Default number of conflicts and skipped rows an import report lists (all are counted). */
export const DEFAULT_REPORT_LIMIT = 50;

/**
 * Why an imported row may not be written without `allowLower` (docs/data-tools.md):
 * - `lowers-checksum`: the target knows the checksum with greater revisions only; the row would
 *   lower its history-mode answer;
 * - `value-taken`: another checksum of the package already holds that revision in the target;
 * - `value-shared`: another row of the same import gives that revision to another checksum of the
 *   package (two sources that numbered one package each on their own, or `"007"` and `"7"`);
 * - `below-max`: a checksum new to the target would enter at or below the package's greatest
 *   revision, so a later build of it would go back in time.
 */
export type ImportConflictKind = 'lowers-checksum' | 'value-taken' | 'value-shared' | 'below-max' | 'frozen';

/** One row that the max-guard stops. */
export interface ImportConflict extends RevisionRow {
  readonly kind: ImportConflictKind;
  /**
   * What the row clashes with: the checksum's first revision in the target, the other checksum
   * (in the target, or in the import), the package's greatest in the target, or the freeze.
   */
  readonly target: string;
}

/** A source row that cannot be imported at all (NULL or malformed value, empty or oversized key). */
export interface SkippedRow {
  readonly where: string;
  readonly reason: string;
}

/** Options of {@link importRevisions}. */
export interface ImportRevisionsOptions {
  /** Work everything out, write nothing. Default false. */
  readonly dryRun?: boolean;
  /** Write rows the max-guard stops too (see {@link ImportConflictKind}). Default false. */
  readonly allowLower?: boolean;
  /** Rows per staging statement. Default {@link DEFAULT_IMPORT_BATCH_SIZE}. */
  readonly batchSize?: number;
  /** Most conflicts and skipped rows listed in the report. Default {@link DEFAULT_REPORT_LIMIT}. */
  readonly reportLimit?: number;
  /** Called after each batch with the number of source rows read so far. */
  readonly onProgress?: (rowsRead: number) => void;
  /** Called once every row is staged, before the rows are checked against the store and written. */
  readonly onStaged?: (rowsRead: number) => void;
}

/** What an import found and did. */
export interface ImportReport {
  /** Rows the source held. */
  readonly rowsRead: number;
  /** Rows that could not be imported (see {@link SkippedRow}); the first ones are in `skipped`. */
  readonly rowsSkipped: number;
  readonly skipped: readonly SkippedRow[];
  /** Distinct rows already in the target, exactly. */
  readonly rowsPresent: number;
  /** Distinct rows the target lacks (written unless refused or a dry run). */
  readonly rowsNew: number;
  /** Packages the target did not know. */
  readonly packagesNew: number;
  /** Rows the max-guard stops; the first ones are in `conflicts`, ordered by package. */
  readonly conflictCount: number;
  readonly conflicts: readonly ImportConflict[];
  /** True when rows were written (false for a dry run, and when conflicts stopped the import). */
  readonly written: boolean;
  /** True when conflicts stopped the import (without `allowLower`). */
  readonly refused: boolean;
}

/** Thrown inside the transaction to roll it back: a dry run, or an import the max-guard stops. */
class Rollback {
  constructor(readonly report: ImportReport) {}
}

/**
 * Imports rows into a prserv database in one transaction: the rows are staged in batches in a
 * temporary table, checked against the target (the max-guard), and written by one statement.
 * Nothing is written when the max-guard finds conflicts (unless `allowLower`) or on a dry run.
 * Writers of other replicas wait for the transaction (the table is locked against writes
 * throughout), so what was checked is what is written.
 *
 * A `DataToolError` the source raises (a line it cannot parse, a file it cannot read) rolls
 * the transaction back and is rethrown as it is, with its own code; database failures are
 * `PrStoreError`s.
 */
export async function importRevisions(
  db: Kysely<PrDatabase>,
  rows: AsyncIterable<SourceRow> | Iterable<SourceRow>,
  options: ImportRevisionsOptions = {},
): Promise<ImportReport> {
  try {
    return await db.transaction().execute(async (trx) => {
      const report = await importWithin(trx, rows, options);
      if (!report.written) throw new Rollback(report);
      return report;
    });
  } catch (error) {
    if (error instanceof Rollback) return error.report;
    // The source's fault, not the database's: wrapped, a cut-short file would read as a
    // database error and send the user to look at a healthy store.
    if (isDataToolError(error)) throw error;
    throw toPrStoreError(error, 'import revisions');
  }
}

/**
 * The import of {@link importRevisions} inside a transaction the caller holds (and commits, or
 * rolls back when nothing was to be written: see `written`).
 */
export async function importWithin(
  trx: Transaction<PrDatabase>,
  rows: AsyncIterable<SourceRow> | Iterable<SourceRow>,
  options: ImportRevisionsOptions = {},
): Promise<ImportReport> {
  const batchSize = options.batchSize ?? DEFAULT_IMPORT_BATCH_SIZE;
  const limit = options.reportLimit ?? DEFAULT_REPORT_LIMIT;
  await prepareBulkTransaction(trx);
  await sql`LOCK TABLE prserv_revision IN SHARE ROW EXCLUSIVE MODE`.execute(trx);
  await sql`CREATE TEMPORARY TABLE prserv_import_row (
      version text NOT NULL, pkgarch text NOT NULL, checksum text NOT NULL, value text NOT NULL,
      value_key numeric[] GENERATED ALWAYS AS (string_to_array(value, '.')::numeric[]) STORED,
      PRIMARY KEY (version, pkgarch, checksum, value_key)
    ) ON COMMIT DROP`.execute(trx);
  const staged = await stageRows(trx, rows, batchSize, limit, options.onProgress);
  options.onStaged?.(staged.rowsRead);
  return checkAndWrite(trx, staged, limit, options);
}

interface Staged {
  readonly rowsRead: number;
  readonly rowsSkipped: number;
  readonly skipped: SkippedRow[];
}

async function stageRows(
  trx: Transaction<PrDatabase>,
  rows: AsyncIterable<SourceRow> | Iterable<SourceRow>,
  batchSize: number,
  limit: number,
  onProgress: ((rowsRead: number) => void) | undefined,
): Promise<Staged> {
  let rowsRead = 0;
  let rowsSkipped = 0;
  const skipped: SkippedRow[] = [];
  let batch: RevisionRow[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const columns = [batch.map((row) => row.version), batch.map((row) => row.pkgarch), batch.map((row) => row.checksum), batch.map((row) => row.value)];
    batch = [];
    await sql`INSERT INTO prserv_import_row (version, pkgarch, checksum, value)
      SELECT * FROM unnest(${columns[0]}::text[], ${columns[1]}::text[], ${columns[2]}::text[], ${columns[3]}::text[])
      ON CONFLICT DO NOTHING`.execute(trx);
    onProgress?.(rowsRead);
  };
  for await (const source of rows) {
    rowsRead += 1;
    const checked = checkSourceRow(source);
    if (typeof checked === 'string') {
      rowsSkipped += 1;
      if (skipped.length < limit) skipped.push({ where: source.where ?? `row ${rowsRead}`, reason: checked });
      continue;
    }
    batch.push(checked);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  onProgress?.(rowsRead);
  return { rowsRead, rowsSkipped, skipped };
}

async function checkAndWrite(
  trx: Transaction<PrDatabase>,
  staged: Staged,
  limit: number,
  options: ImportRevisionsOptions,
): Promise<ImportReport> {
  // Each staged row against the target, through the target's two indexes: the primary key for
  // the checksum's revisions, the package index for the package's greatest and a taken value;
  // and against the other staged rows, for a revision two of them give to different checksums.
  await sql`CREATE TEMPORARY TABLE prserv_import_plan ON COMMIT DROP AS
    SELECT s.version, s.pkgarch, s.checksum, s.value, s.value_key,
      CASE WHEN d.first_checksum = s.checksum THEN d.last_checksum ELSE d.first_checksum END AS shared_with,
      EXISTS (SELECT 1 FROM prserv_revision t WHERE t.version = s.version AND t.pkgarch = s.pkgarch
        AND t.checksum = s.checksum AND t.value_key = s.value_key) AS present,
      (SELECT t.value FROM prserv_revision t WHERE t.version = s.version AND t.pkgarch = s.pkgarch
        AND t.checksum = s.checksum ORDER BY t.value_key ASC LIMIT 1) AS checksum_first,
      (SELECT t.value FROM prserv_revision t WHERE ${packageKeySql('t')} = ${packageKeySql('s')}
        ORDER BY t.value_key DESC LIMIT 1) AS package_max,
      (SELECT t.checksum FROM prserv_revision t WHERE ${packageKeySql('t')} = ${packageKeySql('s')}
        AND t.value_key = s.value_key AND t.checksum <> s.checksum LIMIT 1) AS taken_by,
      (SELECT f.version_glob || CASE WHEN f.pkgarch_glob = '*' THEN '' ELSE ' ' || f.pkgarch_glob END
        FROM prserv_freeze f WHERE s.version LIKE f.version_like AND s.pkgarch LIKE f.pkgarch_like
        ORDER BY f.frozen_at, f.version_glob, f.pkgarch_glob LIMIT 1) AS frozen_by
    FROM prserv_import_row s
    LEFT JOIN (SELECT version, pkgarch, value_key, min(checksum) AS first_checksum, max(checksum) AS last_checksum
      FROM prserv_import_row GROUP BY version, pkgarch, value_key HAVING min(checksum) <> max(checksum)) d
      ON d.version = s.version AND d.pkgarch = s.pkgarch AND d.value_key = s.value_key`.execute(trx);
  await sql`ALTER TABLE prserv_import_plan ADD COLUMN conflict text`.execute(trx);
  await sql`UPDATE prserv_import_plan SET conflict = CASE
      WHEN frozen_by IS NOT NULL THEN 'frozen'
      WHEN checksum_first IS NOT NULL AND value_key < string_to_array(checksum_first, '.')::numeric[] THEN 'lowers-checksum'
      WHEN taken_by IS NOT NULL THEN 'value-taken'
      WHEN shared_with IS NOT NULL THEN 'value-shared'
      WHEN checksum_first IS NULL AND package_max IS NOT NULL AND value_key <= string_to_array(package_max, '.')::numeric[] THEN 'below-max'
    END
    WHERE NOT present`.execute(trx);
  const counts = await sql<{ present: string; fresh: string; packages: string; conflicts: string; frozen: string }>`
    SELECT count(*) FILTER (WHERE present) AS present,
      count(*) FILTER (WHERE conflict = 'frozen') AS frozen,
      count(*) FILTER (WHERE NOT present) AS fresh,
      count(DISTINCT (version, pkgarch)) FILTER (WHERE NOT present AND package_max IS NULL) AS packages,
      count(*) FILTER (WHERE conflict IS NOT NULL) AS conflicts
    FROM prserv_import_plan`.execute(trx);
  const count = counts.rows[0]!;
  const conflictCount = Number(count.conflicts);
  const listed = await sql<{ version: string; pkgarch: string; checksum: string; value: string; conflict: ImportConflictKind; checksum_first: string | null; package_max: string | null; taken_by: string | null; shared_with: string | null; frozen_by: string | null }>`
    SELECT version, pkgarch, checksum, value, conflict, checksum_first, package_max, taken_by, shared_with, frozen_by FROM prserv_import_plan
    WHERE conflict IS NOT NULL ORDER BY version, pkgarch, value_key, checksum LIMIT ${limit}`.execute(trx);
  const conflicts: ImportConflict[] = listed.rows.map((row) => ({
    kind: row.conflict,
    version: row.version,
    pkgarch: row.pkgarch,
    checksum: row.checksum,
    value: row.value,
    target:
      row.conflict === 'frozen'
        ? row.frozen_by!
        : row.conflict === 'lowers-checksum'
          ? row.checksum_first!
          : row.conflict === 'value-taken'
            ? row.taken_by!
            : row.conflict === 'value-shared'
              ? row.shared_with!
              : row.package_max!,
  }));
  // A frozen package takes no new row, as import-one into it is refused: --allow-lower does not
  // override a freeze; thaw the package first.
  const refused = (conflictCount > 0 && !options.allowLower) || Number(count.frozen) > 0;
  const write = !refused && !options.dryRun;
  if (write) {
    // Provenance: stored by the import tool, above what the package held before the import.
    await sql`INSERT INTO prserv_revision (version, pkgarch, checksum, value, stored_how, previous_max)
      SELECT version, pkgarch, checksum, value, 'import-tool', package_max FROM prserv_import_plan WHERE NOT present
      ON CONFLICT ON CONSTRAINT prserv_revision_pkey DO NOTHING`.execute(trx);
  }
  return {
    rowsRead: staged.rowsRead,
    rowsSkipped: staged.rowsSkipped,
    skipped: staged.skipped,
    rowsPresent: Number(count.present),
    rowsNew: Number(count.fresh),
    packagesNew: Number(count.packages),
    conflictCount,
    conflicts,
    written: write,
    refused,
  };
}

const encoder = new TextEncoder();

/** The row as prserv stores it, or why it cannot be imported. */
export function checkSourceRow(row: SourceRow): RevisionRow | string {
  for (const name of ['version', 'pkgarch', 'checksum'] as const) {
    const part = row[name];
    if (typeof part !== 'string' || part === '') return `${name} is ${part === null || part === undefined ? 'missing' : 'empty or not text'}`;
    if (part.includes('\u0000')) return `${name} holds a NUL character`;
    // Stored, an unpaired surrogate would become U+FFFD, and two keys of the source one.
    if (!(part as WellFormedCheck).isWellFormed()) return `${name} is not valid Unicode text (it holds an unpaired surrogate)`;
    // The ceiling, not the default request limit: a server may run with a raised --max-key-bytes,
    // and rows beyond the default are sound (verify notes them).
    if (part.length > KEY_BYTES_CEILING / 3 && encoder.encode(part).length > KEY_BYTES_CEILING) return `${name} is longer than ${KEY_BYTES_CEILING} bytes`;
  }
  const value = row.value;
  let text: string;
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) return `value ${value} is not a whole number`;
    text = String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    return value === null || value === undefined ? 'value is NULL' : `value ${JSON.stringify(value)} is not a revision`;
  }
  if (text.length > MAX_REVISION_LENGTH || !isRevision(text)) return `value ${JSON.stringify(text.slice(0, 40))} is not a revision such as "3" or "1.2"`;
  return { version: row.version as string, pkgarch: row.pkgarch as string, checksum: row.checksum as string, value: normalizeRevision(text) };
}
