import type pg from 'pg';
import { CompiledQuery, type Kysely } from 'kysely';
import { PrStoreError } from '../errors/pr-store-error.js';
import type { PrDatabase } from '../engine/schema.js';

type PgModule = typeof pg;

/**
 * The session setting that makes every transaction of a session read-only unless it asks
 * otherwise: PostgreSQL then refuses any write (SQLSTATE 25006, `read_only_sql_transaction`)
 * while reads, `SET`, `PREPARE` and advisory locks keep working.
 */
export const READ_ONLY_SETTING = 'default_transaction_read_only';

/** The same setting as a startup option (libpq's `options`, `-c name=value`). */
const READ_ONLY_STARTUP_OPTION = `-c ${READ_ONLY_SETTING}=on`;

/** What this file needs of a `pg.Client`: the parameters its startup message is built from. */
interface StartupParameters {
  connectionParameters: { options?: string };
}

/**
 * A `pg.Client` class, extending `Base`, whose sessions start read-only.
 *
 * A startup option rather than a `SET` on each new connection:
 * - it holds from the session's first statement, and `RESET ALL` / `DISCARD ALL` (a pooler's
 *   reset query) fall back to it instead of to read-write;
 * - a pooler in transaction mode never carries it over to another client's session, as it would
 *   a `SET`: a writable replica behind the same pooler is never made read-only. (PgBouncer refuses
 *   such an option unless told to ignore it: the open then fails, with PgBouncer's reason as cause.)
 *
 * It is appended to the options pg has already gathered (the URL's `options`, `PGOPTIONS`), as
 * the last `-c` of a name wins. Those live in the client's `connectionParameters`, which pg reads
 * when it connects; the store checks the outcome once it is open (see {@link checkSessionReadOnly}),
 * so a pg release that stops reading them there fails loudly instead of writing.
 */
export function readOnlySessionClient(Base: PgModule['Client']): PgModule['Client'] {
  return class ReadOnlySessionClient extends Base {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      const parameters = (this as unknown as StartupParameters).connectionParameters;
      parameters.options = parameters.options ? `${parameters.options} ${READ_ONLY_STARTUP_OPTION}` : READ_ONLY_STARTUP_OPTION;
    }
  } as PgModule['Client'];
}

/**
 * Fails unless the sessions of `db` are read-only. A pooler told to ignore the `options` startup
 * parameter (PgBouncer's `ignore_startup_parameters = options`) drops it without a word; the
 * server must then refuse to start rather than serve read-only in name only.
 */
export async function checkSessionReadOnly(db: Kysely<PrDatabase>): Promise<void> {
  const { rows } = await db.executeQuery<{ value: string }>(
    CompiledQuery.raw(`SELECT current_setting('${READ_ONLY_SETTING}') AS value`),
  );
  if (rows[0]?.value !== 'on') {
    throw new PrStoreError(
      'DATABASE_ERROR',
      `the PostgreSQL sessions of this read-only store did not start read-only (${READ_ONLY_SETTING} is ` +
        `${rows[0]?.value ?? 'unknown'}): a connection pooler in between may drop the "options" startup parameter; ` +
        `connect directly, or make it the default of the server's role (ALTER ROLE … SET ${READ_ONLY_SETTING} = on)`,
    );
  }
}
