import type { Kysely } from 'kysely';
import type { PipelinedSession, PipelinedSessions } from '../engine/pipelined-session.js';
import type { PrDatabase } from '../engine/schema.js';
import type { PreparedStatementPglite } from './prepared-statement-pglite.js';

interface Pending {
  readonly text: string;
  readonly params: readonly unknown[];
  readonly resolve: (rows: unknown[]) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * {@link PipelinedSessions} over the embedded store. PGlite is one session: a checked-out session
 * holds it (through `db`'s driver) until released, so no other statement runs inside its
 * transaction. The statements of one `batch` run as one `exec` (PGlite's simple-query call): each
 * call into PGlite costs about as much as a small statement, so a transaction of BEGIN, read,
 * insert and COMMIT costs two calls instead of four. A statement that cannot go that way (bind
 * parameters and not prepared) runs on its own, in order.
 */
export function pipelinedPgliteSessions(db: Kysely<PrDatabase>, prepared: PreparedStatementPglite): PipelinedSessions {
  return () =>
    new Promise<PipelinedSession>((resolveSession, rejectSession) => {
      db.connection()
        .execute(() => new Promise<void>((release) => resolveSession(holdingSession(prepared, release))))
        .catch(rejectSession);
    });
}

function holdingSession(prepared: PreparedStatementPglite, release: () => void): PipelinedSession {
  let batched: Pending[] | undefined;
  const runAlone = async (text: string, params: readonly unknown[]): Promise<unknown[]> =>
    (await prepared.pglite.query(text, [...params])).rows as unknown[];
  return {
    query<R>(text: string, parameters: readonly unknown[]): Promise<R[]> {
      if (!batched) return runAlone(text, parameters) as Promise<R[]>;
      const queue = batched;
      return new Promise<R[]>((resolve, reject) => {
        queue.push({ text, params: parameters, resolve: resolve as (rows: unknown[]) => void, reject });
      });
    },
    batch<T>(send: () => T): T {
      if (batched) return send();
      const queue: Pending[] = [];
      batched = queue;
      try {
        return send();
      } finally {
        batched = undefined;
        void runTogether(prepared, queue, runAlone);
      }
    },
    release() {
      release();
    },
  };
}

async function runTogether(
  prepared: PreparedStatementPglite,
  queue: readonly Pending[],
  runAlone: (text: string, params: readonly unknown[]) => Promise<unknown[]>,
): Promise<void> {
  if (queue.length === 0) return;
  let texts: (string | undefined)[];
  try {
    texts = queue.map(({ text, params }) => prepared.executable(text, params));
  } catch (error) {
    // A value that has no SQL literal (the key checks refuse those before they get here).
    for (const pending of queue) pending.reject(error);
    return;
  }
  if (texts.some((text) => text === undefined)) {
    // In order, each waiting for the one before, as PGlite would run them anyway.
    for (const pending of queue) await runAlone(pending.text, pending.params).then(pending.resolve, pending.reject);
    return;
  }
  try {
    const results = await prepared.pglite.exec(texts.join(';\n'));
    queue.forEach((pending, index) => pending.resolve((results[index]?.rows ?? []) as unknown[]));
  } catch (error) {
    // The simple-query call stops at the failing statement and does not say which one it was:
    // every statement of the batch fails with its error, the first among them included.
    for (const pending of queue) pending.reject(error);
  }
}
