import type pg from 'pg';
import type { PipelinedSessions } from '../engine/pipelined-session.js';
import { StatementGroup } from './statement-group.js';

interface ConnectionHolder {
  readonly connection?: { readonly stream?: { destroy?(): void } };
}

/** An error the server sent (pg's DatabaseError carries its severity); not a local one. */
function isServerError(error: Error): boolean {
  return typeof (error as { severity?: unknown }).severity === 'string';
}

/**
 * {@link PipelinedSessions} over a pg pool: each `run` goes to the server as one
 * {@link StatementGroup}, one write answered by one read. Sessions are the pool's as they come
 * (their settings are the pool's to make, e.g. in its `onConnect`). Statements named in `names`
 * are prepared once per connection, sharing pg's record with the pool's other users; the others
 * are parsed each time.
 */
export function pipelinedPgSessions(pool: pg.Pool, names: ReadonlyMap<string, string> = new Map()): PipelinedSessions {
  return async () => {
    const client = await pool.connect();
    const parseType = (dataTypeId: number) => client.getTypeParser(dataTypeId, 'text') as (text: string) => unknown;
    return {
      run: (statements) =>
        new Promise<unknown[][]>((resolve, reject) => {
          const group = new StatementGroup(statements, names, parseType);
          group.callback = (error, rows) => {
            if (!error) return resolve(rows!);
            // Failed before the server answered (pg's query_timeout, a lost connection): the group
            // may still be running there, and the ROLLBACK would queue behind it. Closing the
            // connection fails that at once and the pool replaces it. What the server already
            // received may still run to its end: its outcome is unknown, and nothing of it was
            // answered (the statement_timeout of every session ends a stuck statement sooner).
            if (group.inFlight && !isServerError(error)) (client as unknown as ConnectionHolder).connection?.stream?.destroy?.();
            reject(error);
          };
          client.query(group as unknown as pg.Submittable);
        }),
      release(broken: boolean) {
        client.release(broken ? new Error('a pipelined session ended in an unknown state') : undefined);
      },
    };
  };
}
