import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPostgresDatabase, type TestDatabase, unusedPort } from '@prserv/test-support';
import {
  PR_STORE_ERROR_CODES,
  PrStoreError,
  isDatabaseUnavailable,
  toPrStoreError,
} from '../../src/errors/pr-store-error.js';

// Every error that a driver can be made to raise here is raised for real (pg against the test
// server, pg-pool, PGlite, Node's socket); only what needs a server starting up, shutting down or
// a broken network is constructed, with pg's own DatabaseError class.

/** What a case must be classified as. */
type Expected = 'DATABASE_UNAVAILABLE' | 'DATABASE_ERROR';

interface ErrorCase {
  readonly name: string;
  readonly expected: Expected;
  /** Produces the error, checking on the way that it is the error the case names. */
  readonly produce: () => Promise<unknown>;
}

/** The reason `work` rejects with; fails the test if it resolves. */
async function rejectionOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, got a result');
}

/** Runs `make` once, on first use, and shares its promise. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

/** A server that accepts TCP connections and never says a word: a PostgreSQL that hangs. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A pg DatabaseError as the driver builds it from an ErrorResponse with this SQLSTATE. */
function serverError(code: string, message: string, severity = 'FATAL'): pg.DatabaseError {
  return Object.assign(new pg.DatabaseError(message, message.length, 'error'), { code, severity });
}

describe('isDatabaseUnavailable and toPrStoreError', () => {
  let database: TestDatabase;
  let admin: pg.Client;
  let lite: { syntaxError: unknown; afterClose: unknown };

  beforeAll(async () => {
    database = await createPostgresDatabase('pr_store_error');
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    // An in-memory PGlite takes seconds to start: one instance gives both of its errors.
    const pglite = new PGlite();
    const syntaxError = await rejectionOf(pglite.query('SELECT FROM WHERE'));
    await pglite.close();
    lite = { syntaxError, afterClose: await rejectionOf(pglite.query('SELECT 1')) };
  });

  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });

  /**
   * One client whose backend is terminated by another connection while it runs `pg_sleep`, with a
   * second statement queued behind it, and a third sent afterwards.
   */
  const terminated = once(async () => {
    const victim = new pg.Client({ connectionString: database.url });
    // pg also emits the loss on the client; unheard, it would crash the test process.
    victim.on('error', () => {});
    await victim.connect();
    const { pid } = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!;
    const inFlight = rejectionOf(victim.query('SELECT pg_sleep(60)'));
    const queued = rejectionOf(victim.query('SELECT 1'));
    await vi.waitFor(
      async () => {
        const { rows } = await admin.query(`SELECT wait_event FROM pg_stat_activity WHERE pid = $1 AND state = 'active'`, [pid]);
        expect(rows[0]?.wait_event).toBe('PgSleep');
      },
      { timeout: 10_000, interval: 10 },
    );
    const { rows } = await admin.query<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [pid]);
    expect(rows[0]!.done).toBe(true);
    const errors = { inFlight: await inFlight, queued: await queued, afterwards: await rejectionOf(victim.query('SELECT 1')) };
    await victim.end().catch(() => {});
    return errors;
  });

  const CASES: readonly ErrorCase[] = [
    // The database cannot be reached or cannot answer now.
    {
      name: 'a refused connection (pg, ECONNREFUSED)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const client = new pg.Client({ host: '127.0.0.1', port: await unusedPort() });
        const error = await rejectionOf(client.connect());
        expect(error).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
        return error;
      },
    },
    {
      name: 'a host whose every address refuses (AggregateError of ECONNREFUSED, no syscall)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        // A name resolving to IPv4 and IPv6: Node tries both and reports them as one AggregateError.
        const lookup: net.LookupFunction = (_host, _options, callback) =>
          callback(null, [
            { address: '127.0.0.1', family: 4 },
            { address: '::1', family: 6 },
          ]);
        const port = await unusedPort();
        const error = await new Promise((resolve, reject) => {
          const socket = net.connect({ host: 'both-families.invalid', port, lookup, autoSelectFamily: true });
          socket.once('error', resolve);
          socket.once('connect', () => reject(new Error(`something listens on ${port}`)));
        });
        expect(error).toBeInstanceOf(AggregateError);
        expect(error).toMatchObject({ code: 'ECONNREFUSED' });
        expect('syscall' in (error as object)).toBe(false);
        return error;
      },
    },
    {
      name: 'a statement whose backend another connection terminated (pg, 57P01)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const { inFlight } = await terminated();
        expect(inFlight).toBeInstanceOf(pg.DatabaseError);
        expect(inFlight).toMatchObject({ code: '57P01' });
        return inFlight;
      },
    },
    {
      name: 'a statement queued behind it on the same client (pg, connection terminated)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const { queued } = await terminated();
        expect(queued).toBeInstanceOf(Error);
        expect((queued as Error).message).toMatch(/Connection terminated/);
        return queued;
      },
    },
    {
      name: 'a statement sent to that client afterwards (pg, not queryable)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const { afterwards } = await terminated();
        expect(afterwards).toBeInstanceOf(Error);
        expect((afterwards as Error).message).toMatch(/not queryable/);
        return afterwards;
      },
    },
    {
      name: 'a pool connect to a server that never answers, past connectionTimeoutMillis (pg-pool)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const silent = await silentServer();
        const pool = new pg.Pool({ host: '127.0.0.1', port: silent.port, connectionTimeoutMillis: 100 });
        try {
          const error = await rejectionOf(pool.connect());
          expect((error as Error).message).toMatch(/connection timeout/);
          return error;
        } finally {
          await pool.end();
          await silent.close();
        }
      },
    },
    {
      name: 'a pool connect that waits for a free client past connectionTimeoutMillis (pg-pool)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const pool = new pg.Pool({ connectionString: database.url, max: 1, connectionTimeoutMillis: 10_000 });
        const held = await pool.connect();
        // The one connection got all the time a busy machine needs; only the wait for it is short.
        pool.options.connectionTimeoutMillis = 100;
        try {
          const error = await rejectionOf(pool.connect());
          expect((error as Error).message).toMatch(/timeout exceeded/);
          return error;
        } finally {
          held.release();
          await pool.end();
        }
      },
    },
    {
      name: 'a query to a closed PGlite',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        expect((lite.afterClose as Error).message).toMatch(/closed/);
        return lite.afterClose;
      },
    },
    {
      name: 'a connection failure (08006, constructed)',
      expected: 'DATABASE_UNAVAILABLE',
      produce: async () => serverError('08006', 'server closed the connection'),
    },
    {
      name: 'a server that cannot connect now (57P03, constructed)',
      expected: 'DATABASE_UNAVAILABLE',
      produce: async () => serverError('57P03', 'the database system is shutting down'),
    },

    // The server answered and refused the statement, or the error is a bug.
    {
      name: 'a syntax error (pg, 42601)',
      expected: 'DATABASE_ERROR',
      async produce() {
        const error = await rejectionOf(admin.query('SELECT FROM WHERE'));
        expect(error).toBeInstanceOf(pg.DatabaseError);
        expect(error).toMatchObject({ code: '42601' });
        return error;
      },
    },
    {
      name: 'a unique violation (pg, 23505)',
      expected: 'DATABASE_ERROR',
      async produce() {
        await admin.query('CREATE TABLE IF NOT EXISTS unique_probe (id text PRIMARY KEY)');
        await admin.query(`INSERT INTO unique_probe VALUES ('taken') ON CONFLICT DO NOTHING`);
        const error = await rejectionOf(admin.query(`INSERT INTO unique_probe VALUES ('taken')`));
        expect(error).toMatchObject({ code: '23505' });
        return error;
      },
    },
    {
      name: 'a syntax error (PGlite, 42601)',
      expected: 'DATABASE_ERROR',
      async produce() {
        expect(lite.syntaxError).toMatchObject({ code: '42601' });
        return lite.syntaxError;
      },
    },
    {
      // Class 53 (insufficient resources): every connection slot taken is an outage that passes.
      name: 'too many connections (pg, 53300)',
      expected: 'DATABASE_UNAVAILABLE',
      async produce() {
        const role = `prserv_no_slots_${randomBytes(4).toString('hex')}`;
        // A password too: servers with password authentication check it before the limit.
        const password = randomBytes(8).toString('hex');
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}' CONNECTION LIMIT 0`);
        try {
          const url = new URL(database.url);
          url.username = role;
          url.password = password;
          const client = new pg.Client({ connectionString: url.toString() });
          client.on('error', () => {});
          const error = await rejectionOf(client.connect());
          expect(error).toMatchObject({ code: '53300' });
          return error;
        } finally {
          await admin.query(`DROP ROLE ${role}`);
        }
      },
    },
    {
      name: 'a TypeError',
      expected: 'DATABASE_ERROR',
      produce: async () => rejectionOf(Promise.resolve().then(() => (null as unknown as { rows: [] }).rows)),
    },
    {
      name: 'a RangeError whose message reads like an outage',
      expected: 'DATABASE_ERROR',
      produce: async () => new RangeError('Connection terminated unexpectedly'),
    },
    {
      name: 'an Error subclass without a code',
      expected: 'DATABASE_ERROR',
      produce: async () => new (class DriverBug extends Error {})('client is not queryable'),
    },
    {
      name: 'a server error whose message reads like an outage (23505)',
      expected: 'DATABASE_ERROR',
      produce: async () => serverError('23505', 'terminating connection due to administrator command', 'ERROR'),
    },
    { name: 'a string', expected: 'DATABASE_ERROR', produce: async () => 'connect ECONNREFUSED 127.0.0.1:5432' },
    {
      name: 'a plain object shaped like a system error',
      expected: 'DATABASE_ERROR',
      produce: async () => ({ code: 'ECONNREFUSED', syscall: 'connect', message: 'connect ECONNREFUSED' }),
    },
    { name: 'undefined', expected: 'DATABASE_ERROR', produce: async () => undefined },
    { name: 'null', expected: 'DATABASE_ERROR', produce: async () => null },
    { name: 'a number', expected: 'DATABASE_ERROR', produce: async () => 57 },
  ];

  it.each(CASES)('classifies $name as $expected, keeping it as the cause', async ({ expected, produce }) => {
    const error = await produce();
    expect(isDatabaseUnavailable(error)).toBe(expected === 'DATABASE_UNAVAILABLE');

    const wrapped = toPrStoreError(error, 'read a revision');
    expect(wrapped).toBeInstanceOf(PrStoreError);
    expect(wrapped.name).toBe('PrStoreError');
    expect(wrapped.code).toBe(expected);
    expect(wrapped.cause).toBe(error);
    // Only the action, never the driver's text (which may quote SQL, keys or host names).
    expect(wrapped.message).toBe(
      expected === 'DATABASE_UNAVAILABLE'
        ? 'database unavailable while trying to read a revision'
        : 'database error while trying to read a revision',
    );
    if (error instanceof Error && error.message !== '') expect(wrapped.message).not.toContain(error.message);
  });

  it('names the action it is given and nothing of the SQL it failed on', async () => {
    await admin.query('CREATE TABLE IF NOT EXISTS secret_probe (token text PRIMARY KEY)');
    await admin.query(`INSERT INTO secret_probe VALUES ('s3cr3t-token') ON CONFLICT DO NOTHING`);
    const error = await rejectionOf(admin.query(`INSERT INTO secret_probe VALUES ('s3cr3t-token')`));
    expect(error).toMatchObject({ code: '23505', detail: expect.stringContaining('s3cr3t-token') });

    const wrapped = toPrStoreError(error, 'import a revision');
    expect(wrapped.message).toBe('database error while trying to import a revision');
    expect(JSON.stringify({ message: wrapped.message, code: wrapped.code })).not.toMatch(/s3cr3t|secret_probe|duplicate/);
    expect(wrapped.cause).toBe(error);
  });

  it.each(PR_STORE_ERROR_CODES)('returns a PrStoreError of code %s unchanged', (code) => {
    const original = new PrStoreError(code, 'already classified', { cause: new Error('connect ECONNREFUSED') });
    expect(toPrStoreError(original, 'allocate a revision')).toBe(original);
    expect(original.message).toBe('already classified');
    expect(original.code).toBe(code);
    expect(isDatabaseUnavailable(original)).toBe(code === 'DATABASE_UNAVAILABLE');
  });
});
