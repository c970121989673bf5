import { type Kysely, sql } from 'kysely';
import { toPrStoreError } from '../errors/pr-store-error.js';
import { MAX_KEY_BYTES } from '../engine/revision-keys.js';
import type { PrDatabase } from '../engine/schema.js';
import { packageKeySql, prepareBulkTransaction } from './bulk-session.js';

/** Schema objects every prserv database has once its migrations ran (engine/migrations.ts). */
const EXPECTED_SCHEMA = {
  constraints: ['prserv_revision_pkey', 'prserv_revision_value_canonical'],
  indexes: ['prserv_revision_package'],
} as const;

/** One finding of {@link verifyStore}: errors break the contract, notes explain something unusual but sound. */
export interface VerifyFinding {
  readonly severity: 'error' | 'note';
  readonly check: 'schema' | 'revision-format' | 'shared-value' | 'key-length';
  readonly message: string;
}

/** What {@link verifyStore} found. */
export interface VerifyReport {
  readonly rows: number;
  readonly packages: number;
  readonly checksums: number;
  /** Names of the schema migrations applied, in order. */
  readonly migrations: readonly string[];
  readonly findings: readonly VerifyFinding[];
  /** True when no finding is an error. */
  readonly ok: boolean;
}

/** Options of {@link verifyStore}. */
export interface VerifyStoreOptions {
  /** Most examples listed per check (all are counted). Default 20. */
  readonly reportLimit?: number;
}

/**
 * Checks the invariants of a prserv database (docs/data-tools.md): the schema is the one this
 * release made; every revision is well-formed and canonical; no revision of a package is held by
 * two checksums, except where the package was served through an upstream (a chained server stores
 * an upstream's revision for the checksums it maps to it, and its own revisions one level deeper);
 * every key fits the default limit of the request path (a note otherwise). Reads only, in one snapshot.
 */
export async function verifyStore(db: Kysely<PrDatabase>, options: VerifyStoreOptions = {}): Promise<VerifyReport> {
  const limit = options.reportLimit ?? 20;
  try {
    return await db.transaction().setIsolationLevel('repeatable read').execute(async (trx) => {
      await prepareBulkTransaction(trx);
      const findings: VerifyFinding[] = [];
      const migrations = (
        await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(trx).catch(() => ({ rows: [] }))
      ).rows.map((row) => row.name);
      if (migrations.length === 0) findings.push({ severity: 'error', check: 'schema', message: 'no schema migrations are recorded (table kysely_migration is missing or empty)' });
      const objects = new Set(
        (
          await sql<{ name: string }>`SELECT conname AS name FROM pg_constraint WHERE conrelid = 'prserv_revision'::regclass
            UNION SELECT indexname FROM pg_indexes WHERE tablename = 'prserv_revision'`.execute(trx)
        ).rows.map((row) => row.name),
      );
      for (const name of [...EXPECTED_SCHEMA.constraints, ...EXPECTED_SCHEMA.indexes]) {
        if (!objects.has(name)) findings.push({ severity: 'error', check: 'schema', message: `the table prserv_revision lacks ${name}` });
      }

      const totals = (
        await sql<{ rows: string; packages: string; checksums: string }>`SELECT count(*) AS rows,
          count(DISTINCT (version, pkgarch)) AS packages, count(DISTINCT (version, pkgarch, checksum)) AS checksums
          FROM prserv_revision`.execute(trx)
      ).rows[0]!;

      const malformed = await sql<{ version: string; pkgarch: string; checksum: string; value: string; total: string }>`
        SELECT version, pkgarch, checksum, value, count(*) OVER () AS total FROM prserv_revision
        WHERE value !~ '^(0|[1-9][0-9]*)([.](0|[1-9][0-9]*))*$' ORDER BY version, pkgarch, checksum LIMIT ${limit}`.execute(trx);
      if (malformed.rows.length > 0) {
        findings.push({
          severity: 'error',
          check: 'revision-format',
          message: `${malformed.rows[0]!.total} revision(s) are not canonical dotted numbers, e.g. ${malformed.rows
            .map((row) => `${row.version} ${row.pkgarch} ${row.checksum} = ${JSON.stringify(row.value)}`)
            .join('; ')}`,
        });
      }

      // A revision shared by checksums is "explained" when a chained server stored one of them from
      // its upstream; for rows without provenance (stored before it was recorded), when the
      // package also holds deeper revisions, the mark of a chained server (u.0, u.1…).
      const shared = await sql<{ version: string; pkgarch: string; value: string; checksums: string; explained: boolean; total: string }>`
        WITH shared AS (
          SELECT version, pkgarch, value, value_key, count(*) AS checksums,
            coalesce(bool_or(stored_how LIKE '%-upstream'), false) AS from_upstream, bool_and(stored_how IS NULL) AS unrecorded
          FROM prserv_revision GROUP BY version, pkgarch, value, value_key HAVING count(*) > 1),
        judged AS (
          SELECT s.*, s.from_upstream OR (s.unrecorded AND EXISTS (SELECT 1 FROM prserv_revision d
            WHERE ${packageKeySql('d')} = ${packageKeySql('s')} AND cardinality(d.value_key) > cardinality(s.value_key))) AS explained
          FROM shared s)
        SELECT version, pkgarch, value, checksums, explained, count(*) OVER (PARTITION BY explained) AS total
        FROM judged ORDER BY version, pkgarch, value_key`.execute(trx);
      for (const explained of [false, true]) {
        const rows = shared.rows.filter((row) => row.explained === explained);
        if (rows.length === 0) continue;
        const examples = rows.slice(0, limit).map((row) => `${row.version} ${row.pkgarch} ${row.value} (${row.checksums} checksums)`);
        findings.push(
          explained
            ? {
                severity: 'note',
                check: 'shared-value',
                message: `${rows[0]!.total} revision(s) are held by several checksums of packages served through an upstream (a chained server copies upstream revisions): ${examples.join('; ')}`,
              }
            : {
                severity: 'error',
                check: 'shared-value',
                message: `${rows[0]!.total} revision(s) are held by several checksums of one package, so different builds share a PR: ${examples.join('; ')}`,
              },
        );
      }

      const long = await sql<{ total: string }>`SELECT count(*) AS total FROM prserv_revision
        WHERE octet_length(version) > ${MAX_KEY_BYTES} OR octet_length(pkgarch) > ${MAX_KEY_BYTES} OR octet_length(checksum) > ${MAX_KEY_BYTES}`.execute(trx);
      if (Number(long.rows[0]!.total) > 0) {
        // A note: such rows are sound, only out of reach of requests under the default key limit.
        findings.push({
          severity: 'note',
          check: 'key-length',
          message: `${long.rows[0]!.total} row(s) have a key longer than ${MAX_KEY_BYTES} bytes, which requests under the default key limit cannot name`,
        });
      }
      return {
        rows: Number(totals.rows),
        packages: Number(totals.packages),
        checksums: Number(totals.checksums),
        migrations,
        findings,
        ok: findings.every((finding) => finding.severity !== 'error'),
      };
    });
  } catch (error) {
    throw toPrStoreError(error, 'verify the store');
  }
}
