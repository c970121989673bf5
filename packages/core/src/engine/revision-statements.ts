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


/**
 * Per key (version, pkgarch, checksum or null, history): the checksum's first revision (history)
 * or last (no-history), and the package maximum unless a known checksum in history mode makes
 * it moot. A rebuild in history mode thus costs one index probe per request. (`CASE` evaluates
 * only the subquery it picks; `OFFSET 0` keeps the lateral value from being inlined twice.)
 */
export const READ_FACTS = `SELECT k.ord::int4 AS ord, c.checksum_value,
  CASE WHEN k.history AND c.checksum_value IS NOT NULL THEN NULL ELSE
    (SELECT r.value FROM prserv_revision r
      WHERE ${packageKey('r.version', 'r.pkgarch')} = ${packageKey('k.version', 'k.pkgarch')}
      ORDER BY r.value_key DESC LIMIT 1)
  END AS package_max
FROM unnest($1::text[], $2::text[], $3::text[], $4::boolean[]) WITH ORDINALITY AS k(version, pkgarch, checksum, history, ord)
CROSS JOIN LATERAL (SELECT CASE WHEN k.history
    THEN (SELECT r.value FROM prserv_revision r
      WHERE r.version = k.version AND r.pkgarch = k.pkgarch AND r.checksum = k.checksum
      ORDER BY r.value_key ASC LIMIT 1)
    ELSE (SELECT r.value FROM prserv_revision r
      WHERE r.version = k.version AND r.pkgarch = k.pkgarch AND r.checksum = k.checksum
      ORDER BY r.value_key DESC LIMIT 1)
  END AS checksum_value OFFSET 0) AS c`;

/**
 * Takes the package locks of a batch in ascending lock-id order, so that batches of different
 * replicas never wait for each other in a cycle. The sorted subquery is kept apart (`OFFSET 0`)
 * so that the locks are taken in its order.
 */
export const LOCK_PACKAGES = `SELECT count(pg_advisory_xact_lock(${PRSERV_ADVISORY_LOCK_KEY}, l.id))::int4 AS locked
FROM (SELECT DISTINCT hashtext(p.version || chr(10) || p.pkgarch) AS id
      FROM unnest($1::text[], $2::text[]) AS p(version, pkgarch)
      ORDER BY id OFFSET 0) AS l`;

/** Stores rows; a row already present is left alone. */
export const INSERT_ROWS = `INSERT INTO prserv_revision (version, pkgarch, checksum, value)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT ON CONSTRAINT prserv_revision_pkey DO NOTHING`;

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
  [INSERT_ROWS, 'prserv_insert_rows'],
  [READ_GREATEST_BETWEEN, 'prserv_read_greatest_between'],
]);
