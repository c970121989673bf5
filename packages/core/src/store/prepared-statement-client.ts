import type pg from 'pg';

type PgModule = typeof pg;

/**
 * A `pg.Client` class that sends the statements named in `statements` as named prepared
 * statements: PostgreSQL parses and plans each once per connection instead of once per
 * request. Every other statement goes as it came.
 */
export function preparedStatementClient(driver: PgModule, statements: ReadonlyMap<string, string>): PgModule['Client'] {
  const query = driver.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;
  return class PreparedStatementClient extends driver.Client {
    // pg's overloads cannot be restated here; this one intercepts the `query(text, values)` form Kysely uses.
    override query(...args: unknown[]): never {
      const [text, values] = args;
      const name = typeof text === 'string' && args.length <= 2 ? statements.get(text) : undefined;
      return (name === undefined ? query.apply(this, args) : query.call(this, { name, text, values })) as never;
    }
  } as PgModule['Client'];
}
