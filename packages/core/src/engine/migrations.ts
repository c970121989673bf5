import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { isDatabaseUnavailable, toPrStoreError } from '../errors/pr-store-error.js';
import { type PrDatabase, PRSERV_ADVISORY_LOCK_KEY } from './schema.js';

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
};

const provider: MigrationProvider = {
  getMigrations: async () => migrations,
};

/**
 * Brings the schema up to date. Safe when many replicas start at once on an empty database:
 * they serialise on a session advisory lock and each finds the work done by the first.
 * When the schema is already current nothing is written, so a read-only role can start.
 */
export async function migrateToLatest(db: Kysely<PrDatabase>): Promise<void> {
  try {
    if (await isSchemaCurrent(db)) return;
    await db.connection().execute(async (connection) => {
      await sql`SELECT pg_advisory_lock(${PRSERV_ADVISORY_LOCK_KEY})`.execute(connection);
      try {
        const { error } = await new Migrator({ db: connection, provider }).migrateToLatest();
        if (error) throw error;
      } finally {
        await sql`SELECT pg_advisory_unlock(${PRSERV_ADVISORY_LOCK_KEY})`.execute(connection);
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
