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
