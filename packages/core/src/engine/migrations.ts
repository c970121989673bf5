import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { isDatabaseUnavailable, toPrStoreError } from '../errors/pr-store-error.js';
import { type PrDatabase, PRSERV_ADVISORY_LOCK_KEY, STORED_HOW_VALUES } from './schema.js';

const migrations: Record<string, Migration> = {
  '0001-revision-table': {
    async up(db) {
      // Canonical spelling only ("7", "0.3"; never "07"), so a value and its key match one to one.
      await sql`
        CREATE TABLE prserv_revision (
          version   text NOT NULL,
          pkgarch   text NOT NULL,
          checksum  text NOT NULL,
          value     text NOT NULL CONSTRAINT prserv_revision_value_canonical
                      CHECK (value ~ '^(0|[1-9][0-9]*)([.](0|[1-9][0-9]*))*$'),
          value_key numeric[] GENERATED ALWAYS AS (string_to_array(value, '.')::numeric[]) STORED,
          CONSTRAINT prserv_revision_pkey PRIMARY KEY (version, pkgarch, checksum, value_key)
        )`.execute(db);
      await sql`CREATE INDEX prserv_revision_package_value ON prserv_revision (version, pkgarch, value_key)`.execute(db);
    },
  },
  '0002-package-index-on-expression': {
    async up(db) {
      // The package index used to start with the same columns as the primary key, so without
      // statistics the planner could serve a checksum probe from it, filtering every row of the
      // package. Built on an expression that checksum probes never name, each statement of the
      // request path has exactly one index that fits it (see revision-statements.ts).
      await sql`DROP INDEX prserv_revision_package_value`.execute(db);
      // Length-prefixed, so distinct (version, pkgarch) pairs never share a key; "C" so that it
      // compares as bytes whatever the database's collation.
      await sql`CREATE INDEX prserv_revision_package ON prserv_revision
        (((length(version)::text || ':' || version || pkgarch) COLLATE "C"), value_key)`.execute(db);
    },
  },
  '0003-provenance-and-freeze': {
    async up(db) {
      // Columns are added without a default and the default set afterwards: a DEFAULT on ADD
      // COLUMN would stamp every existing row with the upgrade's time, and rows whose origin is
      // not known must say so (NULL). All nullable, so writers that predate them (or bulk tools
      // that leave them out) keep working.
      await sql`ALTER TABLE prserv_revision
        ADD COLUMN stored_at timestamptz,
        ADD COLUMN stored_by text,
        ADD COLUMN stored_how text CONSTRAINT prserv_revision_stored_how CHECK (stored_how IN (${sql.raw(
          STORED_HOW_VALUES.map((how) => `'${how}'`).join(', '),
        )})),
        ADD COLUMN previous_max text`.execute(db);
      await sql`ALTER TABLE prserv_revision ALTER COLUMN stored_at SET DEFAULT now()`.execute(db);
      // Freezes are few and matched by LIKE patterns, which no index can narrow: a walk over a
      // table of tens of rows, on the write path only.
      await sql`
        CREATE TABLE prserv_freeze (
          version_glob text NOT NULL,
          pkgarch_glob text NOT NULL,
          version_like text NOT NULL,
          pkgarch_like text NOT NULL,
          frozen_at    timestamptz NOT NULL DEFAULT now(),
          frozen_by    text,
          reason       text,
          CONSTRAINT prserv_freeze_pkey PRIMARY KEY (version_glob, pkgarch_glob)
        )`.execute(db);
      // The order in which the write path looks for a matching freeze. Without an index that fits
      // it, the request path's `enable_seqscan = off` leaves a plan costed in the billions, which
      // PostgreSQL then JIT-compiles on every execution (over 100 ms each).
      await sql`CREATE INDEX prserv_freeze_order ON prserv_freeze (frozen_at, version_glob, pkgarch_glob)`.execute(db);
    },
  },
};

const provider: MigrationProvider = {
  getMigrations: async () => migrations,
};

/**
 * Brings the schema up to date. Safe when many replicas start at once on an empty database:
 * they serialise on an advisory lock and each finds the work done by the first. The lock, Kysely's
 * bookkeeping tables and every migration share one transaction on one connection, so the lock is
 * taken and released on one backend even behind a transaction-mode pooler (PgBouncer), which
 * could otherwise leave a session lock held by an idle server connection. When the schema is
 * already current nothing is written, so a read-only role can start.
 */
export async function migrateToLatest(db: Kysely<PrDatabase>): Promise<void> {
  try {
    if (await isSchemaCurrent(db)) return;
    await db.connection().execute(async (connection) => {
      await sql`BEGIN`.execute(connection);
      try {
        // No time limit a role or database sets: waiting for another replica's migration, or
        // building an index on a large table, may take minutes.
        await sql`SET LOCAL statement_timeout = 0`.execute(connection);
        await sql`SET LOCAL lock_timeout = 0`.execute(connection);
        await sql`SELECT pg_advisory_xact_lock(${PRSERV_ADVISORY_LOCK_KEY})`.execute(connection);
        // Kysely re-checks for its tables after a failed CREATE, which an aborted transaction
        // answers with "current transaction is aborted", hiding why (no right to create tables, a
        // read-only database). This probe fails first, with that cause, and leaves nothing behind.
        await sql`SAVEPOINT prserv_create_probe`.execute(connection);
        await sql`CREATE TABLE prserv_create_probe ()`.execute(connection);
        await sql`ROLLBACK TO SAVEPOINT prserv_create_probe`.execute(connection);
        const { error } = await new Migrator({ db: connection, provider, disableTransactions: true }).migrateToLatest();
        if (error) throw error;
        await sql`COMMIT`.execute(connection);
      } catch (error) {
        // The error that matters is the migration's; a failed rollback only means the connection is gone.
        await sql`ROLLBACK`.execute(connection).catch(() => undefined);
        throw error;
      }
    });
  } catch (error) {
    throw toPrStoreError(error, 'create or upgrade the prserv schema');
  }
}

/**
 * True when every migration has run. Only reads (the catalog and Kysely's migration table), so it
 * works in a read-only session and for a role that may only read. A table it may not read counts
 * as not current (migrating will say why); a database it cannot reach throws the driver's error.
 */
export async function isSchemaCurrent(db: Kysely<PrDatabase>): Promise<boolean> {
  let known;
  try {
    known = await new Migrator({ db, provider }).getMigrations();
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw error;
    return false;
  }
  return known.every((migration) => migration.executedAt !== undefined);
}
