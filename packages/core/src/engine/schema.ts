import type { Generated, GeneratedAlways } from 'kysely';

/**
 * How a row came to be stored (column `stored_how`): a get-pr in history or no-history mode (with
 * `-upstream` when a chained server took or extended an upstream's numbering), an import-one
 * request, or a bulk import tool. NULL: stored before prserv recorded it.
 */
export const STORED_HOW_VALUES = [
  'get-pr-history',
  'get-pr-nohist',
  'get-pr-history-upstream',
  'get-pr-nohist-upstream',
  'import-one',
  'import-tool',
] as const;

/** One of {@link STORED_HOW_VALUES}. */
export type StoredHow = (typeof STORED_HOW_VALUES)[number];

/**
 * One stored revision: the `(version, pkgarch, checksum, value)` row of BitBake's `PRMAIN`.
 * `value_key` is the value as `numeric[]`, computed by the database, so that btree order on it
 * is revision order and the greatest revision of a package is one index probe. The provenance
 * columns (migration 0003) are NULL on rows stored before them.
 */
export interface RevisionTable {
  version: string;
  pkgarch: string;
  checksum: string;
  value: string;
  value_key: GeneratedAlways<string[]>;
  /** When the row was stored, by the database's clock (default `now()`). */
  stored_at: Generated<Date | null>;
  /** The client's address (IPv4 or IPv6 text) when a request stored it. */
  stored_by: string | null;
  /** How the row was stored: one of {@link STORED_HOW_VALUES}. */
  stored_how: StoredHow | null;
  /** The package's greatest revision just before the row was stored; NULL for its first row. */
  previous_max: string | null;
}

/** A frozen pattern (migration 0003): packages it matches never get a new revision. */
export interface FreezeTable {
  /** The glob over `version` as given (`*`, `?`, `\` escapes). */
  version_glob: string;
  /** The glob over `pkgarch` as given; `*` for every architecture. */
  pkgarch_glob: string;
  /** `version_glob` as a LIKE pattern (backslash escapes). */
  version_like: string;
  pkgarch_like: string;
  frozen_at: Generated<Date>;
  /** Who froze it (user@host of the command), for people reading the list. */
  frozen_by: string | null;
  reason: string | null;
}

/** Every table of a prserv database, as Kysely sees it. */
export interface PrDatabase {
  prserv_revision: RevisionTable;
  prserv_freeze: FreezeTable;
}

/**
 * The advisory-lock key of prserv (`'PRSV'`). Alone (the one-argument, bigint form) it guards
 * schema creation and upgrades; as the class of the two-argument form it guards packages, with
 * the object id `hashtext(version || '\n' || pkgarch)`. PostgreSQL keeps the two forms apart.
 * Never change it: replicas of different releases must still exclude each other.
 */
export const PRSERV_ADVISORY_LOCK_KEY = 0x50525356;
