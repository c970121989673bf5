/**
 * The statements of the request path, as plain SQL shared by PostgreSQL and PGlite. Each is
 * written so that exactly one index can serve it, whatever the table statistics say (a new
 * database has none until its first ANALYZE):
 * - checksum probes name `version`, `pkgarch` and `checksum` as columns: only the primary key
 *   `(version, pkgarch, checksum, value_key)` starts with them;
 * - package probes name the expression {@link packageKey}: only the index
 *   `prserv_revision_package` is built on it.
 * The engine's sessions also turn sequential scans off (see {@link REQUEST_PATH_SETTINGS}), so the
 * one index that fits is the plan, however small the table was when a plan was cached.
 * They take arrays, so one round trip serves a whole batch of requests.
 */

import { PRSERV_ADVISORY_LOCK_KEY } from './schema.js';

/**
 * The package of a row as one byte-compared text: the length prefix keeps distinct
 * `(version, pkgarch)` pairs apart ("a" + "bc" vs "ab" + "c"). Must stay identical to the
 * expression of the index `prserv_revision_package` (migration 0002).
 */
function packageKey(version: string, pkgarch: string): string {
  return `((length(${version})::text || ':' || ${version} || ${pkgarch}) COLLATE "C")`;
}

/**
 * Session settings of every connection the engine uses: plans of the request path are made once
 * per connection and depend only on the statements and the indexes, never on statistics or the
 * size of the table at the time (a new database has no statistics until its first ANALYZE).
 * Statements that must scan whole tables (export) turn sequential scans back on locally.
 */
export const REQUEST_PATH_SETTINGS = 'SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan';

/** The keys of a facts statement: `$1`…`$4` as the rows `k`, numbered by `ord`. */
const FACTS_KEYS = 'unnest($1::text[], $2::text[], $3::text[], $4::boolean[]) WITH ORDINALITY AS k(version, pkgarch, checksum, history, ord)';

/**
 * Per key (version, pkgarch, checksum or null, history): the checksum's first revision (history)
 * or last (no-history), and the package maximum unless a known checksum in history mode makes
 * it moot. A rebuild in history mode thus costs one index probe per request. (`CASE` evaluates
 * only the subquery it picks; `OFFSET 0` keeps the lateral value from being inlined twice.)
 */
export const READ_FACTS = readFactsStatement('');

function readFactsStatement(extraColumns: string, keys: string = FACTS_KEYS): string {
  return `SELECT k.ord::int4 AS ord, c.checksum_value,
  CASE WHEN k.history AND c.checksum_value IS NOT NULL THEN NULL ELSE
    (SELECT r.value FROM prserv_revision r
      WHERE ${packageKey('r.version', 'r.pkgarch')} = ${packageKey('k.version', 'k.pkgarch')}
      ORDER BY r.value_key DESC LIMIT 1)
  END AS package_max${extraColumns}
FROM ${keys}
CROSS JOIN LATERAL (SELECT CASE WHEN k.history
    THEN (SELECT r.value FROM prserv_revision r
      WHERE r.version = k.version AND r.pkgarch = k.pkgarch AND r.checksum = k.checksum
      ORDER BY r.value_key ASC LIMIT 1)
    ELSE (SELECT r.value FROM prserv_revision r
      WHERE r.version = k.version AND r.pkgarch = k.pkgarch AND r.checksum = k.checksum
      ORDER BY r.value_key DESC LIMIT 1)
  END AS checksum_value OFFSET 0) AS c`;
}

/**
 * Takes the package locks of a batch in ascending lock-id order, so that batches of different
 * replicas never wait for each other in a cycle. The sorted subquery is kept apart (`OFFSET 0`)
 * so that the locks are taken in its order.
 */
export const LOCK_PACKAGES = `SELECT count(pg_advisory_xact_lock(${PRSERV_ADVISORY_LOCK_KEY}, l.id))::int4 AS locked
FROM (SELECT DISTINCT hashtext(p.version || chr(10) || p.pkgarch) AS id
      FROM unnest($1::text[], $2::text[]) AS p(version, pkgarch)
      ORDER BY id OFFSET 0) AS l`;

/**
 * Taken by every writing transaction before it reads, after BEGIN: a bulk import (`prserv import`,
 * `importRevisions`) holds the table in SHARE ROW EXCLUSIVE mode until it commits, so a writer
 * waits for it here instead of reading what the import is about to change and deciding from that.
 * Writers do not wait for each other: ROW EXCLUSIVE is the mode their inserts take anyway.
 */
export const LOCK_AGAINST_IMPORTS = 'LOCK TABLE prserv_revision IN ROW EXCLUSIVE MODE';

/**
 * Stores rows with their provenance (client address, how, the package's maximum before);
 * `stored_at` takes its default, the database's clock. A row already present is left alone.
 */
export const INSERT_ROWS = `INSERT INTO prserv_revision (version, pkgarch, checksum, value, stored_by, stored_how, previous_max)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
ON CONFLICT ON CONSTRAINT prserv_revision_pkey DO NOTHING`;

/**
 * The first freeze (`prserv freeze`) matching a package, as `version_glob LF pkgarch_glob`, or
 * NULL. A correlated subquery over the key `k`, shared by the write-path statements. Its ORDER BY
 * is the index `prserv_freeze_order` (migration 0003), the one plan with sequential scans off.
 */
function frozenBy(version: string, pkgarch: string): string {
  // The uncorrelated EXISTS runs once per statement: with no freeze at all (the usual case) no
  // key of the batch looks further.
  return `CASE WHEN EXISTS (SELECT 1 FROM prserv_freeze) THEN
    (SELECT f.version_glob || chr(10) || f.pkgarch_glob FROM prserv_freeze f
      WHERE ${version} LIKE f.version_like AND ${pkgarch} LIKE f.pkgarch_like
      ORDER BY f.frozen_at, f.version_glob, f.pkgarch_glob LIMIT 1) END`;
}

/**
 * {@link READ_FACTS} plus the freeze matching each package, for the write path only: run inside
 * the allocation transaction after the package locks, so a freeze another replica committed is
 * seen by the next write, at no extra round trip. The lookup path never reads freezes.
 */
export const READ_WRITE_FACTS = readFactsStatement(`,\n  ${frozenBy('k.version', 'k.pkgarch')} AS frozen_by`);

/**
 * An allocation batch in one statement, for a batch planned from the facts its lookups read
 * (`$1`…`$4` the keys as in {@link READ_FACTS}, `$5` and `$6` the checksum value and package
 * maximum each lookup saw; `$7`…`$13` the rows as in {@link INSERT_ROWS}). Run after the package
 * locks: when every key's facts still hold and no freeze matches, the planned rows are exactly
 * what a read under the locks would have planned, and they are stored; otherwise nothing is
 * stored (another writer or a freeze came first) and the batch must be planned again from such
 * a read. Answers how many rows it stored. Every part of a statement sees one snapshot, so the
 * facts are those from before its insert.
 */
export const STORE_IF_UNCHANGED = `WITH current_facts AS (${readFactsStatement(
  `, k.seen_value, k.seen_max,\n  ${frozenBy('k.version', 'k.pkgarch')} AS frozen_by`,
  'unnest($1::text[], $2::text[], $3::text[], $4::boolean[], $5::text[], $6::text[]) WITH ORDINALITY AS k(version, pkgarch, checksum, history, seen_value, seen_max, ord)',
)}),
stored AS (
  INSERT INTO prserv_revision (version, pkgarch, checksum, value, stored_by, stored_how, previous_max)
  SELECT * FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
  WHERE NOT EXISTS (SELECT 1 FROM current_facts f
    WHERE f.checksum_value IS DISTINCT FROM f.seen_value OR f.package_max IS DISTINCT FROM f.seen_max OR f.frozen_by IS NOT NULL)
  ON CONFLICT ON CONSTRAINT prserv_revision_pkey DO NOTHING
  RETURNING 1)
SELECT count(*)::int4 AS stored FROM stored`;

/** The freeze matching each package of a batch, or NULL (preview-pr, read-only get-pr). */
export const READ_FROZEN = `SELECT k.ord::int4 AS ord, ${frozenBy('k.version', 'k.pkgarch')} AS frozen_by
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(version, pkgarch, ord)`;

/**
 * Every row of a package with its provenance, in revision order (one checksum's rows when `$3`
 * is not null). Times as ISO 8601 UTC text, the same from both drivers.
 */
export const PACKAGE_HISTORY = `SELECT r.checksum, r.value,
  to_char(r.stored_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS stored_at,
  r.stored_by, r.stored_how, r.previous_max
FROM prserv_revision r
WHERE ${packageKey('r.version', 'r.pkgarch')} = ${packageKey('$1::text', '$2::text')}
  AND ($3::text IS NULL OR r.checksum = $3::text)
ORDER BY r.value_key, r.stored_at NULLS FIRST, r.checksum`;

/** The greatest revision of a package strictly between two revisions (extensions of an upstream's `u`). */
export const READ_GREATEST_BETWEEN = `SELECT r.value FROM prserv_revision r
WHERE ${packageKey('r.version', 'r.pkgarch')} = ${packageKey('$1::text', '$2::text')}
  AND r.value_key > string_to_array($3::text, '.')::numeric[]
  AND r.value_key < string_to_array($4::text, '.')::numeric[]
ORDER BY r.value_key DESC LIMIT 1`;

/** Rows of an export; `$1`…`$3` filter when not null, `$4` false keeps each package's greatest rows only. */
export const EXPORT_ROWS = `SELECT r.version, r.pkgarch, r.checksum, r.value FROM prserv_revision r
WHERE ($1::text IS NULL OR r.version = $1::text)
  AND ($2::text IS NULL OR r.pkgarch = $2::text)
  AND ($3::text IS NULL OR r.checksum = $3::text)
  AND ($4::boolean OR r.value_key = (SELECT m.value_key FROM prserv_revision m
    WHERE ${packageKey('m.version', 'm.pkgarch')} = ${packageKey('r.version', 'r.pkgarch')}
    ORDER BY m.value_key DESC LIMIT 1))
ORDER BY r.version, r.pkgarch, r.value_key, r.checksum`;

/** The statements worth preparing once per connection: every request runs one of them. */
export const REQUEST_PATH_STATEMENTS: ReadonlyMap<string, string> = new Map([
  [READ_FACTS, 'prserv_read_facts'],
  [LOCK_PACKAGES, 'prserv_lock_packages'],
  [READ_WRITE_FACTS, 'prserv_read_write_facts'],
  [READ_FROZEN, 'prserv_read_frozen'],
  [INSERT_ROWS, 'prserv_insert_rows'],
  [STORE_IF_UNCHANGED, 'prserv_store_if_unchanged'],
  [READ_GREATEST_BETWEEN, 'prserv_read_greatest_between'],
]);
