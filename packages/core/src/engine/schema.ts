import type { GeneratedAlways } from 'kysely';

/**
 * One stored revision: the `(version, pkgarch, checksum, value)` row of BitBake's `PRMAIN`.
 * `value_key` is the value as `numeric[]`, computed by the database, so that btree order on it
 * is revision order and the greatest revision of a package is one index probe.
 */
export interface RevisionTable {
  version: string;
  pkgarch: string;
  checksum: string;
  value: string;
  value_key: GeneratedAlways<string[]>;
}

/** Every table of a prserv database, as Kysely sees it. */
export interface PrDatabase {
  prserv_revision: RevisionTable;
}

/**
 * The advisory-lock key of prserv (`'PRSV'`). Alone (the one-argument, bigint form) it guards
 * schema creation and upgrades; as the class of the two-argument form it guards packages, with
 * the object id `hashtext(version || '\n' || pkgarch)`. PostgreSQL keeps the two forms apart.
 * Never change it: replicas of different releases must still exclude each other.
 */
export const PRSERV_ADVISORY_LOCK_KEY = 0x50525356;
