import type { PGlite, Transaction } from '@electric-sql/pglite';
import { type SqlValue, toSqlLiteral } from './sql-literal.js';

/** What Kysely's PGlite dialect calls on a PGlite instance or one of its transactions. */
type Queryable = Pick<PGlite, 'query'> | Pick<Transaction, 'query'>;

/** A PGlite instance that runs chosen statements as prepared ones, once {@link prepare} has run. */
export interface PreparedStatementPglite {
  /** The instance to hand to Kysely. */
  readonly pglite: PGlite;
  /** Prepares every statement; call it once the tables they name exist. */
  prepare(): Promise<void>;
  /**
   * The statement as text that PGlite's `exec` can run among others (no bind parameters): the
   * `EXECUTE` of a prepared statement, a statement without parameters as it is; else undefined.
   */
  executable(text: string, params: readonly unknown[]): string | undefined;
}

/**
 * Wraps `pglite` so that the statements named in `statements` (text → name) run as
 * `EXECUTE name(literals…)`: PGlite parses and plans each once instead of on every call, which
 * in WebAssembly costs more than the query itself. (PGlite's `query` sends unnamed statements,
 * and SQL `EXECUTE` takes no bind parameters, hence literals.) Other statements pass unchanged.
 */
export function preparedStatementPglite(pglite: PGlite, statements: ReadonlyMap<string, string>): PreparedStatementPglite {
  let prepared = false;
  const execute = (name: string, params: readonly unknown[]) =>
    `EXECUTE ${name}(${params.map((param) => toSqlLiteral(param as SqlValue)).join(', ')})`;
  const translate = (queryable: Queryable): Queryable['query'] =>
    ((text: string, params?: unknown[], options?: object) => {
      const name = prepared ? statements.get(text) : undefined;
      if (name === undefined) return queryable.query(text, params, options);
      return queryable.query(execute(name, params ?? []), [], options);
    }) as Queryable['query'];

  const wrapped = new Proxy(pglite, {
    get(target, property) {
      if (property === 'query') return translate(target);
      if (property === 'transaction') {
        return <T>(work: (tx: Transaction) => Promise<T>) =>
          target.transaction((tx) => work(new Proxy(tx, { get: (t, p) => (p === 'query' ? translate(t) : bound(t, p)) })));
      }
      return bound(target, property);
    },
  });

  return {
    pglite: wrapped,
    async prepare() {
      for (const [text, name] of statements) await pglite.exec(`PREPARE ${name} AS ${text}`);
      prepared = true;
    },
    executable(text, params) {
      const name = prepared ? statements.get(text) : undefined;
      if (name !== undefined) return execute(name, params);
      return params.length === 0 ? text : undefined;
    },
  };
}

/** A property of `target`, methods bound to it (PGlite keeps its state in private fields). */
function bound(target: object, property: string | symbol): unknown {
  const value = Reflect.get(target, property, target);
  return typeof value === 'function' ? value.bind(target) : value;
}
