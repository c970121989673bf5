import type { PGlite } from '@electric-sql/pglite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';
import { PrStoreError } from '../errors/pr-store-error.js';

/** What the dialect needs of PGlite: its `query` (the store hands in a wrapper). */
export type PgliteQueryable = Pick<PGlite, 'query'>;

/**
 * A Kysely dialect over one PGlite instance. PGlite is one PostgreSQL session, so the driver has
 * one connection and lends it to one user at a time: a transaction holds it from BEGIN to COMMIT,
 * and nothing else runs in between.
 */
export class PgliteDialect implements Dialect {
  readonly #pglite: PgliteQueryable;

  constructor(pglite: PgliteQueryable) {
    this.#pglite = pglite;
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  createDriver(): Driver {
    return new PgliteDriver(this.#pglite);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

class PgliteDriver implements Driver {
  readonly #connection: PgliteConnection;
  /** Settles when the connection is free for the next user. */
  #free: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  constructor(pglite: PgliteQueryable) {
    this.#connection = new PgliteConnection(pglite);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.#free;
    let release!: () => void;
    this.#free = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    this.#release = release;
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }

  async destroy(): Promise<void> {}
}

class PgliteConnection implements DatabaseConnection {
  readonly #pglite: PgliteQueryable;

  constructor(pglite: PgliteQueryable) {
    this.#pglite = pglite;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.#pglite.query<R>(compiledQuery.sql, [...compiledQuery.parameters]);
    return {
      rows: result.rows,
      ...(result.affectedRows === undefined ? {} : { numAffectedRows: BigInt(result.affectedRows) }),
    };
  }

  // No query of prserv streams; a caller that tries gets a clear error instead of a hang.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new PrStoreError('DATABASE_ERROR', 'the embedded store does not stream query results');
  }
}
