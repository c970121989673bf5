import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { PrDatabase } from '../engine/schema.js';

/**
 * Settings of a transaction of the data tools. The engine's sessions turn sequential scans off
 * (its statements each have one index that fits); whole-table work (staging, checking, counting)
 * needs them back. Statements of a bulk job may run long: the session's statement timeout is for
 * requests of builds, not for this.
 */
export async function prepareBulkTransaction(trx: Transaction<PrDatabase>): Promise<void> {
  await sql`SET LOCAL enable_seqscan = on`.execute(trx);
  await sql`SET LOCAL statement_timeout = 0`.execute(trx);
}

/**
 * The package of row alias `alias` as the expression of the index `prserv_revision_package`
 * (migration 0002): only an identical expression lets PostgreSQL use that index.
 */
export function packageKeySql(alias: string): RawBuilder<unknown> {
  const a = sql.raw(alias);
  return sql`((length(${a}.version)::text || ':' || ${a}.version || ${a}.pkgarch) COLLATE "C")`;
}
