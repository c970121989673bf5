import type { Kysely } from 'kysely';
import type { PipelinedSession, PipelinedSessions, PipelinedStatement } from '../engine/pipelined-session.js';
import type { PrDatabase } from '../engine/schema.js';
import type { PreparedStatementPglite } from './prepared-statement-pglite.js';

/**
 * {@link PipelinedSessions} over the embedded store. PGlite is one session: a checked-out session
 * holds it (through `db`'s driver) until released, so no other statement runs inside its
 * transaction. The statements of one `run` go as one `exec` (PGlite's simple-query call): each
 * call into PGlite costs about as much as a small statement, so a transaction of BEGIN, read,
 * insert and COMMIT costs two calls instead of four. A group holding a statement that cannot go
 * that way (bind parameters and not prepared) runs statement by statement, in order.
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
  return {
    run: (statements) => runTogether(prepared, statements),
    release() {
      release();
    },
  };
}

async function runTogether(prepared: PreparedStatementPglite, statements: readonly PipelinedStatement[]): Promise<unknown[][]> {
  if (statements.length === 0) return [];
  // A value that has no SQL literal throws here, before anything runs (the key checks refuse
  // those before they get here).
  const texts = statements.map(([text, parameters]) => prepared.executable(text, parameters));
  if (texts.some((text) => text === undefined)) {
    // In order, each after the one before, stopping at the first failure, as a group does.
    const rows: unknown[][] = [];
    for (const [text, parameters] of statements) rows.push((await prepared.pglite.query(text, [...parameters])).rows as unknown[]);
    return rows;
  }
  // The simple-query call stops at the failing statement and throws its error.
  const results = await prepared.pglite.exec(texts.join(';\n'));
  return statements.map((_, index) => (results[index]?.rows ?? []) as unknown[]);
}
