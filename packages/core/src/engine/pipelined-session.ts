/**
 * One database session (a pooled PostgreSQL connection) that sends several statements at once,
 * without waiting for the answers to the ones before: the server runs them in the order sent and
 * answers them together (PostgreSQL's extended protocol with one Sync for the group). A group then
 * costs one network round trip, one write and one read on each side, instead of one each.
 */
export interface PipelinedSession {
  /**
   * Sends `statements` as one group and settles once the server has answered all of them: with
   * the rows of each, in order. The server stops at the first statement that fails and skips the
   * rest of the group; that statement's error is thrown. Inside a transaction block (after BEGIN)
   * the transaction is then aborted, and only a ROLLBACK ends it.
   */
  run(statements: readonly PipelinedStatement[]): Promise<unknown[][]>;
  /** Gives the session back to its pool; a `broken` one (state unknown) is closed instead. */
  release(broken: boolean): void;
}

/** Checks a {@link PipelinedSession} out of a pool. */
export type PipelinedSessions = () => Promise<PipelinedSession>;

/** A statement and its parameters. */
export type PipelinedStatement = readonly [text: string, parameters: readonly unknown[]];

const BEGIN: PipelinedStatement = ['BEGIN ISOLATION LEVEL READ COMMITTED', []];
const COMMIT: PipelinedStatement = ['COMMIT', []];
const ROLLBACK: PipelinedStatement = ['ROLLBACK', []];

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
  let failed = false;
  const sendAll = async (statements: readonly PipelinedStatement[], commit: boolean): Promise<unknown[][]> => {
    if (committed) throw new Error('the pipelined transaction has already committed');
    // After a failure the transaction is aborted: a COMMIT would roll it back without an error.
    if (failed) throw new Error('the pipelined transaction failed; it can only be rolled back');
    const opening = !begun;
    begun = true;
    // Read committed whatever the database's default: a statement behind a lock then sees what
    // the lock's previous holders committed (see `writeTransaction` in revision-queries.ts).
    const group = opening ? [BEGIN, ...statements] : [...statements];
    if (commit) group.push(COMMIT);
    // A failure anywhere leaves the transaction open (aborted, or never committed): the catch
    // below rolls it back.
    let rows: unknown[][];
    try {
      rows = await session.run(group);
    } catch (error) {
      failed = true;
      throw error;
    }
    if (commit) committed = true;
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
        await session.run([ROLLBACK]);
      } catch {
        broken = true;
      }
    }
    throw error;
  } finally {
    session.release(broken);
  }
}
