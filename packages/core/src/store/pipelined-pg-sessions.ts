import type pg from 'pg';
import type { PipelinedSessions } from '../engine/pipelined-session.js';

/** The parts of a `pg.PoolClient` that pipelining uses beyond its typed surface. */
interface PipelineCapableClient {
  /** pg's pipeline mode: each query goes out at once instead of after the previous answer. */
  pipeline?: boolean;
  readonly connection?: { readonly stream?: { cork?(): void; uncork?(): void } };
}

/**
 * {@link PipelinedSessions} over a pg pool: a checked-out connection runs in pg's pipeline mode
 * while it is out, and back in the pool it queues statements as every other user expects. A
 * connection first gets `sessionSettings` (the request path's session settings, which Kysely
 * applies to the connections it opens itself).
 *
 * A pg without pipeline mode (before 8.23) ignores the switch and sends each statement after
 * the previous answer: the same results, one round trip per statement.
 */
export function pipelinedPgSessions(pool: pg.Pool, sessionSettings: string): PipelinedSessions {
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
    const capable = client as unknown as PipelineCapableClient;
    capable.pipeline = true;
    const stream = capable.connection?.stream;
    return {
      query: async <R>(text: string, parameters: readonly unknown[]) =>
        (await client.query(text, parameters as unknown[])).rows as R[],
      batch<T>(send: () => T): T {
        stream?.cork?.();
        try {
          return send();
        } finally {
          stream?.uncork?.();
        }
      },
      release(broken: boolean) {
        capable.pipeline = false;
        client.release(broken ? new Error('a pipelined session ended in an unknown state') : undefined);
      },
    };
  };
}
