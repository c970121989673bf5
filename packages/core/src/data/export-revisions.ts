import { type Kysely, sql } from 'kysely';
import { toPrStoreError } from '../errors/pr-store-error.js';
import type { RevisionRow } from '../engine/revision-keys.js';
import type { PrDatabase } from '../engine/schema.js';
import { packageKeySql, prepareBulkTransaction } from './bulk-session.js';

/** Default number of rows read per round trip by {@link streamRevisions}. */
export const DEFAULT_EXPORT_PAGE_SIZE = 5000;

/** Options of {@link streamRevisions}. */
export interface StreamRevisionsOptions {
  /** All rows (true) or, per package, only the rows holding its greatest revision (false). Default false, as BitBake. */
  readonly history?: boolean;
  /** Only this version / pkgarch; null or absent for all. */
  readonly version?: string | null;
  readonly pkgarch?: string | null;
  /** Rows per round trip. Default {@link DEFAULT_EXPORT_PAGE_SIZE}. */
  readonly pageSize?: number;
}

interface Page {
  version: string;
  pkgarch: string;
  checksum: string;
  value: string;
}

/**
 * The stored rows, ordered by version, pkgarch, checksum and revision, read a page at a time
 * within one repeatable-read transaction: memory stays bounded whatever the size of the table,
 * and the rows are one consistent snapshot. On the embedded store the transaction holds the
 * single session until the iteration ends (or is abandoned: `return` ends it too).
 */
export async function* streamRevisions(db: Kysely<PrDatabase>, options: StreamRevisionsOptions = {}): AsyncGenerator<RevisionRow> {
  const pageSize = options.pageSize ?? DEFAULT_EXPORT_PAGE_SIZE;
  const history = options.history ?? false;
  const version = options.version || null;
  const pkgarch = options.pkgarch || null;
  let trx;
  try {
    trx = await db.startTransaction().setIsolationLevel('repeatable read').execute();
    await prepareBulkTransaction(trx);
    // Pages follow the primary key, so each is one index range scan from where the last ended.
    await sql`SET LOCAL enable_seqscan = off`.execute(trx);
  } catch (error) {
    if (trx) await trx.rollback().execute().catch(() => {});
    throw toPrStoreError(error, 'export revisions');
  }
  let after: Page | null = null;
  let finished = false;
  try {
    for (;;) {
      let page: Page[];
      try {
        const cursor = after;
        page = (
          await sql<Page>`SELECT r.version, r.pkgarch, r.checksum, r.value FROM prserv_revision r
          WHERE (${version}::text IS NULL OR r.version = ${version}::text)
            AND (${pkgarch}::text IS NULL OR r.pkgarch = ${pkgarch}::text)
            AND ${cursor === null
              ? sql`true`
              : sql`(r.version, r.pkgarch, r.checksum, r.value_key) > (${cursor.version}::text, ${cursor.pkgarch}::text, ${cursor.checksum}::text, string_to_array(${cursor.value}::text, '.')::numeric[])`}
            AND (${history}::boolean OR r.value_key = (SELECT m.value_key FROM prserv_revision m
              WHERE ${packageKeySql('m')} = ${packageKeySql('r')} ORDER BY m.value_key DESC LIMIT 1))
          ORDER BY r.version, r.pkgarch, r.checksum, r.value_key
          LIMIT ${pageSize}`.execute(trx)
        ).rows;
      } catch (error) {
        throw toPrStoreError(error, 'export revisions');
      }
      for (const row of page) yield row;
      if (page.length < pageSize) break;
      after = page[page.length - 1]!;
    }
    finished = true;
  } finally {
    // Read-only work: commit and rollback end it alike; rollback also after an error.
    if (finished) await trx.commit().execute();
    else await trx.rollback().execute().catch(() => {});
  }
}
