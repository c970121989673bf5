import type pg from 'pg';
import type { PipelinedSessions } from '../engine/pipelined-session.js';
import { StatementGroup } from './statement-group.js';

/**
 * {@link PipelinedSessions} over a pg pool: each `run` goes to the server as one
 * {@link StatementGroup}, one write answered by one read. A connection first gets
 * `sessionSettings` (the request path's session settings, which Kysely applies to the
 * connections it opens itself). Statements named in `names` are prepared once per connection,
 * sharing pg's record with the pool's other users; the others are parsed each time.
 */
export function pipelinedPgSessions(pool: pg.Pool, sessionSettings: string, names: ReadonlyMap<string, string> = new Map()): PipelinedSessions {
  const settled = new WeakSet<pg.PoolClient>();
  return async () => {
    const client = await pool.connect();
    if (!settled.has(client)) {
      try {
        await client.query(sessionSettings);
      } catch (error) {
        client.release(error as Error);
        throw error;
      }
      settled.add(client);
    }
    const parseType = (dataTypeId: number) => client.getTypeParser(dataTypeId, 'text') as (text: string) => unknown;
    return {
      run: (statements) =>
        new Promise<unknown[][]>((resolve, reject) => {
          const group = new StatementGroup(statements, names, parseType);
          group.callback = (error, rows) => (error ? reject(error) : resolve(rows!));
          client.query(group as unknown as pg.Submittable);
        }),
      release(broken: boolean) {
        client.release(broken ? new Error('a pipelined session ended in an unknown state') : undefined);
      },
    };
  };
}
