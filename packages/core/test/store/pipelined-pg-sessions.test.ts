import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { inPipelinedTransaction, type PipelinedSession, type PipelinedSessions } from '../../src/engine/pipelined-session.js';
import { pipelinedPgSessions } from '../../src/store/pipelined-pg-sessions.js';

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('pipelined PostgreSQL transactions', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let sessions: PipelinedSessions;

  const stored = async (): Promise<number[]> =>
    (await pool.query<{ v: number }>('SELECT v FROM pipelined ORDER BY v')).rows.map((row) => row.v);

  beforeAll(async () => {
    database = await createPostgresDatabase('pipelined_sessions');
    // One connection: every transaction below runs on the connection the one before gave back.
    pool = new pg.Pool({ connectionString: database.url, max: 1, application_name: 'pipelined-test' });
    await pool.query('CREATE TABLE pipelined (v int PRIMARY KEY)');
    sessions = pipelinedPgSessions(pool);
  });
  beforeEach(async () => {
    await pool.query('TRUNCATE pipelined');
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it('run the statements in order in one transaction and give back the rows of each', async () => {
    const result = await inPipelinedTransaction(sessions, async (transaction) => {
      const [, counted] = await transaction.send([
        ['INSERT INTO pipelined VALUES ($1)', [1]],
        ['SELECT count(*)::int AS n, current_setting($1) AS name FROM pipelined', ['application_name']],
      ]);
      const [inserted] = await transaction.commitWith([['INSERT INTO pipelined VALUES ($1) RETURNING v', [2]]]);
      return { counted, inserted };
    });
    // The count ran after the insert sent before it, inside the transaction, on the pool's session.
    expect(result).toEqual({ counted: [{ n: 1, name: 'pipelined-test' }], inserted: [{ v: 2 }] });
    expect(await stored()).toEqual([1, 2]);
  });

  it('throw the first failing statement’s error, store nothing, and leave the connection clean', async () => {
    const failure = inPipelinedTransaction(sessions, async (transaction) => {
      await transaction.send([
        ['INSERT INTO pipelined VALUES ($1)', [1]],
        ['INSERT INTO pipelined VALUES ($1)', [1]],
        ['INSERT INTO pipelined VALUES ($1)', [3]],
      ]);
      return transaction.commitWith([]);
    });
    await expect(failure).rejects.toMatchObject({ code: '23505' });
    expect(await stored()).toEqual([]);
    // The one pooled connection is out of the failed transaction: plain queries work on it.
    const client = await pool.connect();
    try {
      expect((await client.query<{ state: string }>('SELECT 1 AS state')).rows).toEqual([{ state: 1 }]);
    } finally {
      client.release();
    }
  });

  it('roll back when the statement sent with COMMIT fails', async () => {
    const failure = inPipelinedTransaction(sessions, async (transaction) => {
      await transaction.send([['INSERT INTO pipelined VALUES ($1)', [1]]]);
      return transaction.commitWith([['INSERT INTO pipelined VALUES ($1)', [1]]]);
    });
    await expect(failure).rejects.toMatchObject({ code: '23505' });
    expect(await stored()).toEqual([]);
  });

  it('roll back when the work fails between round trips, or forgets to commit', async () => {
    const thrown = new Error('decided against it');
    await expect(
      inPipelinedTransaction(sessions, async (transaction) => {
        await transaction.send([['INSERT INTO pipelined VALUES ($1)', [1]]]);
        throw thrown;
      }),
    ).rejects.toBe(thrown);
    await expect(
      inPipelinedTransaction(sessions, async (transaction) => {
        await transaction.send([['INSERT INTO pipelined VALUES ($1)', [2]]]);
      }),
    ).rejects.toThrow(/without commitWith/);
    expect(await stored()).toEqual([]);
    await inPipelinedTransaction(sessions, (transaction) => transaction.commitWith([['INSERT INTO pipelined VALUES ($1)', [4]]]));
    expect(await stored()).toEqual([4]);
  });

  /**
   * Runs `work` with a one-connection pool of its own (`config` added), then ends it. `clients`
   * holds the pool's client once connected; a connection closed under a client is reported there,
   * as the store does, not as a crash.
   */
  const withOwnPool = async (work: (own: pg.Pool, clients: pg.PoolClient[]) => Promise<void>, config: pg.PoolConfig = {}) => {
    const own = new pg.Pool({ connectionString: database.url, max: 1, ...config });
    const clients: pg.PoolClient[] = [];
    own.on('error', () => undefined);
    own.on('connect', (client) => {
      clients.push(client);
      client.on('error', () => undefined);
    });
    try {
      await work(own, clients);
    } finally {
      await own.end();
    }
  };

  /** Runs `work` on a session checked out of `from`, then gives it back. */
  const withSession = async <T>(from: PipelinedSessions, work: (session: PipelinedSession) => Promise<T>): Promise<T> => {
    const session = await from();
    try {
      return await work(session);
    } finally {
      session.release(false);
    }
  };

  it('answer a whole group at once: one ReadyForQuery however many statements', async () => {
    await withOwnPool(async (own, clients) => {
      await withSession(pipelinedPgSessions(own), async (session) => {
        const counted = { ready: 0 };
        const connection = (clients[0] as unknown as { connection: { on(event: string, listener: () => void): void } }).connection;
        connection.on('readyForQuery', () => (counted.ready += 1));
        const rows = await session.run([
          ['BEGIN', []],
          ['INSERT INTO pipelined VALUES ($1), ($2)', [5, 6]],
          ['SELECT v, v > $1 AS big FROM pipelined ORDER BY v', [5]],
          ['COMMIT', []],
        ]);
        expect(rows).toEqual([[], [], [{ v: 5, big: false }, { v: 6, big: true }], []]);
        expect(counted.ready).toBe(1);
      });
    });
  });

  it('prepare named statements once per connection, shared with the pool’s own named queries', async () => {
    const insert = 'INSERT INTO pipelined VALUES ($1)';
    const count = 'SELECT count(*)::int AS n FROM pipelined WHERE v = ANY($1::int[])';
    await withOwnPool(async (own) => {
      const named = pipelinedPgSessions(own, new Map([[insert, 'group_insert'], [count, 'group_count']]));
      const runOnce = (statements: [string, unknown[]][]) => withSession(named, (session) => session.run(statements));
      await runOnce([[insert, [1]], [count, [[1, 2]]]]);
      // pg's own query by the same name reuses the statement the group prepared, and the other way round.
      expect((await own.query({ name: 'group_count', text: count, values: [[1, 2, 3]] })).rows).toEqual([{ n: 1 }]);
      await own.query({ name: 'pool_first', text: 'SELECT $1::int AS v', values: [7] });
      const reuse = pipelinedPgSessions(own, new Map([['SELECT $1::int AS v', 'pool_first']]));
      expect(await withSession(reuse, (session) => session.run([['SELECT $1::int AS v', [8]]]))).toEqual([[{ v: 8 }]]);
      expect(await runOnce([[insert, [2]], [count, [[1, 2]]]])).toEqual([[], [{ n: 2 }]]);
      const prepared = await own.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
      expect(prepared.rows.map((row) => row.name)).toEqual(['group_count', 'group_insert', 'pool_first']);
    });
  });

  it('skip the rest of a group after a failure, and parse later what it skipped', async () => {
    const insert = 'INSERT INTO pipelined VALUES ($1)';
    const count = 'SELECT count(*)::int AS n FROM pipelined';
    await withOwnPool(async (own) => {
      const named = pipelinedPgSessions(own, new Map([[insert, 'skip_insert'], [count, 'skip_count']]));
      await own.query('INSERT INTO pipelined VALUES (1)');
      await withSession(named, async (session) => {
        await expect(session.run([[insert, [2]], [insert, [2]], [count, []]])).rejects.toMatchObject({ code: '23505' });
        // Without BEGIN the group was one implicit transaction, rolled back at the failure; the
        // count, sent for parsing but skipped, is parsed when next sent.
        expect(await session.run([[count, []]])).toEqual([[{ n: 1 }]]);
      });
    });
  });

  it('bind text arrays exactly: quotes, backslashes, commas, braces, "NULL" and null', async () => {
    const values = ['a', null, 'NULL', 'x,y', '{z}', 'q"\\', ' lead', ''];
    const [rows] = await withSession(sessions, (session) =>
      session.run([['SELECT $1::text[] AS a, $2::boolean[] AS b', [values, [true, null, false]]]]),
    );
    expect(rows).toEqual([{ a: values, b: [true, null, false] }]);
  });

  it('refuse a value it cannot bind before sending anything', async () => {
    await withSession(sessions, async (session) => {
      await expect(session.run([['BEGIN', []], ['INSERT INTO pipelined VALUES ($1)', [{ v: 1 }]]])).rejects.toThrow(/cannot bind object/);
      // Nothing went out: no transaction was begun, the connection serves the next group.
      expect(await session.run([['SELECT 1 AS one', []]])).toEqual([[{ one: 1 }]]);
    });
    expect(await stored()).toEqual([]);
  });

  it('close a connection whose group outlived pg’s query timeout, and fail at once what waits behind it', async () => {
    await withOwnPool(
      async (slow) => {
        const slowSessions = pipelinedPgSessions(slow);
        const started = Date.now();
        const failure = inPipelinedTransaction(slowSessions, (transaction) =>
          transaction.commitWith([
            ['SELECT pg_sleep(3)', []],
            ['INSERT INTO pipelined VALUES ($1)', [9]],
          ]),
        );
        await expect(failure).rejects.toThrow(/timeout/);
        // Failed at the timeout (1 s): the ROLLBACK did not wait behind the group for a timeout of its own (2 s).
        expect(Date.now() - started).toBeLessThan(1_600);
        // The pool opens a new connection for the next transaction. (The group, already with the
        // server, may still run to its end: nothing of it was acknowledged.)
        await inPipelinedTransaction(slowSessions, (transaction) => transaction.commitWith([['INSERT INTO pipelined VALUES ($1)', [10]]]));
        expect(await stored()).toContain(10);
      },
      { query_timeout: 1_000 },
    );
  });

  it('fail a group whose type parser throws, once answered, and keep the connection in step', async () => {
    const types = {
      getTypeParser: ((oid: number, format?: string) =>
        oid === 23
          ? () => {
              throw new Error('no int4 here');
            }
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    };
    await withOwnPool(
      async (refusing) => {
        await withSession(pipelinedPgSessions(refusing), async (session) => {
          await expect(session.run([['SELECT 1::int4 AS n', []], ['SELECT $1::text AS t', ['after']]])).rejects.toThrow(/no int4 here/);
          expect(await session.run([['SELECT $1::text AS t', ['next']]])).toEqual([[{ t: 'next' }]]);
        });
      },
      { types },
    );
  });

  it('refuse COPY in a group, and a COMMIT after a failed round trip', async () => {
    await withSession(sessions, async (session) => {
      await expect(session.run([['COPY pipelined FROM STDIN', []], ['SELECT 1', []]])).rejects.toThrow(/COPY cannot be sent/);
    });
    const failure = inPipelinedTransaction(sessions, async (transaction) => {
      await transaction.send([['INSERT INTO pipelined VALUES ($1)', [1]]]);
      // The work swallows a failure and tries to commit what came before it.
      await transaction.send([['INSERT INTO pipelined VALUES ($1)', [1]]]).catch(() => undefined);
      return transaction.commitWith([]);
    });
    await expect(failure).rejects.toThrow(/can only be rolled back/);
    expect(await stored()).toEqual([]);
  });

  it('hold a lock from the first round trip to the commit: a second transaction reads after it', async () => {
    // Two transactions on two connections take the same lock and read-then-write: had the lock
    // been released between round trips, both would read 0 and the second insert would collide.
    const wide = new pg.Pool({ connectionString: database.url, max: 2 });
    const both = pipelinedPgSessions(wide);
    try {
      const increment = () =>
        inPipelinedTransaction(both, async (transaction) => {
          const [, rows] = await transaction.send([
            ['SELECT pg_advisory_xact_lock(7150)', []],
            ['SELECT coalesce(max(v), 0)::int AS top FROM pipelined', []],
          ]);
          const next = (rows as { top: number }[])[0]!.top + 1;
          await transaction.commitWith([['INSERT INTO pipelined VALUES ($1)', [next]]]);
          return next;
        });
      const values = await Promise.all(Array.from({ length: 20 }, increment));
      expect([...values].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));
      expect(await stored()).toEqual(Array.from({ length: 20 }, (_, index) => index + 1));
    } finally {
      await wide.end();
    }
  });
});
