/**
 * One database session (a pooled PostgreSQL connection) that sends each statement at once,
 * without waiting for the answers to the statements before it: the server runs them in the
 * order sent and answers in that order (PostgreSQL's extended-protocol pipelining). Several
 * statements then cost one network round trip instead of one each.
 *
 * A statement that fails leaves the session's transaction aborted; the ones sent after it fail
 * too ("current transaction is aborted") until a ROLLBACK.
 */
export interface PipelinedSession {
  /** Sends the statement now; settles with its rows once the server has answered it. */
  query<R>(text: string, parameters: readonly unknown[]): Promise<R[]>;
  /** Runs `send`, holding back what it sends until it returns: one write instead of one per statement. */
  batch<T>(send: () => T): T;
  /** Gives the session back to its pool; a `broken` one (state unknown) is closed instead. */
  release(broken: boolean): void;
}

/** Checks a {@link PipelinedSession} out of a pool. */
export type PipelinedSessions = () => Promise<PipelinedSession>;

/** A statement and its parameters. */
export type PipelinedStatement = readonly [text: string, parameters: readonly unknown[]];

/** What {@link inPipelinedTransaction} hands to its work. */
export interface PipelinedTransaction {
  /** Sends `statements` (after BEGIN, the first time) in one round trip; the rows of each. */
  send(statements: readonly PipelinedStatement[]): Promise<unknown[][]>;
  /** Sends `statements` then COMMIT in one round trip; the rows of each, once committed. */
  commitWith(statements: readonly PipelinedStatement[]): Promise<unknown[][]>;
}

/**
 * Runs `work` in one transaction on a pipelined session: BEGIN travels with `work`'s first
 * statements and COMMIT with its last, so the transaction costs one round trip per `send` or
 * `commitWith`. `work` must end with `commitWith`. On any failure the transaction is rolled back
 * and the first failing statement's error thrown.
 */
export async function inPipelinedTransaction<T>(
  sessions: PipelinedSessions,
  work: (transaction: PipelinedTransaction) => Promise<T>,
): Promise<T> {
  const session = await sessions();
  let begun = false;
  let committed = false;
  let broken = false;
  const sendAll = async (statements: readonly PipelinedStatement[], commit: boolean): Promise<unknown[][]> => {
    if (committed) throw new Error('the pipelined transaction has already committed');
    const opening = !begun;
    begun = true;
    const answers = session.batch(() => {
      const sent: Promise<unknown[]>[] = [];
      // Read committed whatever the database's default: a statement behind a lock then sees what
      // the lock's previous holders committed (see `writeTransaction` in revision-queries.ts).
      if (opening) sent.push(session.query('BEGIN ISOLATION LEVEL READ COMMITTED', []));
      for (const [text, parameters] of statements) sent.push(session.query(text, parameters));
      if (commit) sent.push(session.query('COMMIT', []));
      return sent;
    });
    // Every answer settles before any is looked at: none is left rejected unheard. BEGIN cannot
    // fail while what follows it succeeds: a session is handed out idle (a failed transaction is
    // rolled back, or its connection closed, before the session goes back), and BEGIN fails only
    // on a connection that is lost or inside an aborted transaction, where every statement after
    // it fails too. A COMMIT behind a failed statement rolls back (and says so in its command
    // tag, not as an error): the failure is the statement's.
    const outcomes = await Promise.allSettled(answers);
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    if (commit) committed = true;
    const rows = outcomes.map((outcome) => (outcome as PromiseFulfilledResult<unknown[]>).value);
    return rows.slice(opening ? 1 : 0, commit ? -1 : undefined);
  };
  try {
    const result = await work({
      send: (statements) => sendAll(statements, false),
      commitWith: (statements) => sendAll(statements, true),
    });
    if (!committed) throw new Error('a pipelined transaction ended without commitWith');
    return result;
  } catch (error) {
    if (begun && !committed) {
      try {
        await session.query('ROLLBACK', []);
      } catch {
        broken = true;
      }
    }
    throw error;
  } finally {
    session.release(broken);
  }
}
