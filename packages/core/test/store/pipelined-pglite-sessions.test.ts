import { PGlite } from '@electric-sql/pglite';
import { Kysely, sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { PrDatabase } from '@prserv/core';
import { inPipelinedTransaction, type PipelinedSessions } from '../../src/engine/pipelined-session.js';
import { PgliteDialect } from '../../src/store/pglite-dialect.js';
import { pipelinedPgliteSessions } from '../../src/store/pipelined-pglite-sessions.js';
import { preparedStatementPglite } from '../../src/store/prepared-statement-pglite.js';

const INSERT = 'INSERT INTO pipelined SELECT * FROM unnest($1::text[]) RETURNING v';

describe('pipelined embedded-store transactions', () => {
  let pglite: PGlite;
  let db: Kysely<PrDatabase>;
  let sessions: PipelinedSessions;
  /** Statements PGlite was handed, as it received them (one entry per call). */
  const calls: string[] = [];

  const stored = async (): Promise<string[]> =>
    (await sql<{ v: string }>`SELECT v FROM pipelined ORDER BY v`.execute(db)).rows.map((row) => row.v);

  beforeAll(async () => {
    pglite = await PGlite.create();
    await pglite.exec('CREATE TABLE pipelined (v text PRIMARY KEY)');
    const counting = new Proxy(pglite, {
      get(target, property) {
        if (property === 'exec' || property === 'query') {
          return (text: string, ...rest: unknown[]) => {
            calls.push(text);
            return (target[property] as (...args: unknown[]) => unknown).call(target, text, ...rest);
          };
        }
        const value = Reflect.get(target, property, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const prepared = preparedStatementPglite(counting, new Map([[INSERT, 'pipelined_insert']]));
    await prepared.prepare();
    db = new Kysely<PrDatabase>({ dialect: new PgliteDialect(prepared.pglite) });
    sessions = pipelinedPgliteSessions(db, prepared);
  });
  beforeEach(async () => {
    await pglite.exec('TRUNCATE pipelined');
    calls.length = 0;
  });
  afterAll(async () => {
    await db?.destroy();
    await pglite?.close();
  });

  it('run a batch as one call into PGlite and give back the rows of each statement', async () => {
    const result = await inPipelinedTransaction(sessions, async (transaction) => {
      const [inserted] = await transaction.send([[INSERT, [['a', 'b']]]]);
      const [more] = await transaction.commitWith([[INSERT, [['c']]]]);
      return { inserted, more };
    });
    expect(result).toEqual({ inserted: [{ v: 'a' }, { v: 'b' }], more: [{ v: 'c' }] });
    expect(calls).toEqual([
      "BEGIN ISOLATION LEVEL READ COMMITTED;\nEXECUTE pipelined_insert(E'{\"a\",\"b\"}')",
      "EXECUTE pipelined_insert(E'{\"c\"}');\nCOMMIT",
    ]);
    expect(await stored()).toEqual(['a', 'b', 'c']);
  });

  it('keep everyone else out of the transaction until it ends', async () => {
    let reader: Promise<string[]> | undefined;
    await inPipelinedTransaction(sessions, async (transaction) => {
      await transaction.send([[INSERT, [['a']]]]);
      // Asked while the transaction holds PGlite: answered after the commit, and sees its row.
      reader = stored();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await transaction.commitWith([[INSERT, [['b']]]]);
    });
    expect(await reader).toEqual(['a', 'b']);
  });

  it('fail every statement of a failing batch, roll back, and free the store', async () => {
    const failure = inPipelinedTransaction(sessions, async (transaction) => {
      await transaction.send([[INSERT, [['a']]]]);
      return transaction.commitWith([[INSERT, [['a']]]]);
    });
    await expect(failure).rejects.toMatchObject({ code: '23505' });
    expect(calls[calls.length - 1]).toBe('ROLLBACK');
    expect(await stored()).toEqual([]);
  });

  it('fail the batch, not the process, on a value that has no SQL literal', async () => {
    const failure = inPipelinedTransaction(sessions, (transaction) => transaction.commitWith([[INSERT, [['a\u0000b']]]]));
    await expect(failure).rejects.toThrow(/NUL/);
    expect(await stored()).toEqual([]);
  });

  it('run statements it cannot join (bind parameters, not prepared) one by one, in order', async () => {
    const counted = await inPipelinedTransaction(sessions, async (transaction) => {
      const [, rows] = await transaction.send([
        ['INSERT INTO pipelined VALUES ($1)', ['x']],
        ['SELECT count(*)::int AS n FROM pipelined WHERE v = $1', ['x']],
      ]);
      await transaction.commitWith([]);
      return rows;
    });
    expect(counted).toEqual([{ n: 1 }]);
    expect(calls).toEqual(['BEGIN ISOLATION LEVEL READ COMMITTED', 'INSERT INTO pipelined VALUES ($1)', 'SELECT count(*)::int AS n FROM pipelined WHERE v = $1', 'COMMIT']);
  });
});
