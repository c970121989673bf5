import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createPrClient, InvokeError } from '@prserv/client';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';
import { type ServerProcess, startServerProcess } from './support/cli-process.js';

const CLIENTS = 6;
const DROPS = 8;
/** What a client is told when the database goes away under its get-pr (the error policy's text). */
const REFUSAL = 'database unavailable while trying to allocate a revision';
/** pino's number for `warn`, the level of a dependency that heals by itself. */
const WARN = 40;

describe('prserv when PostgreSQL drops its connections', () => {
  let database: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createPostgresDatabase('faults');
    server = await startServerProcess({ database: database.url, args: ['--max-connections', String(CLIENTS)] });
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it('keeps running, fails only the requests caught in flight, and serves again', async () => {
    const name = new URL(database.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const clients = Array.from({ length: CLIENTS }, () => createPrClient({ address: server.address, retries: 0 }));

    // Every client asks for a new checksum of its own package in a loop: each request allocates.
    const acks: { checksum: string; value: string }[][] = clients.map(() => []);
    const refusals: { client: number; drop: number; error: unknown }[] = [];
    let drop = 0;
    let stop = false;
    const burst = clients.map(async (client, index) => {
      for (let round = 0; !stop; round += 1) {
        const checksum = `c${round}`;
        try {
          acks[index]!.push({ checksum, value: await client.getPr({ version: `v${index}`, pkgarch: 'x', checksum }) });
        } catch (error) {
          refusals.push({ client: index, drop, error });
        }
      }
    });
    const served = () => acks.map((list) => list.length);
    /** Waits until every client has had `more` answers since `since`. */
    const everyClientServed = (since: readonly number[], more: number) =>
      vi.waitFor(() => expect(served().every((count, index) => count >= since[index]! + more)).toBe(true), {
        timeout: 20_000,
        interval: 5,
      });

    try {
      await everyClientServed(served(), 3);
      for (let next = 1; next <= DROPS; next += 1) {
        // Hold off writers of the table (reads go on): the next allocation waits for the lock,
        // so a request is known to be in flight on a prserv backend when they are terminated.
        await admin.query('BEGIN');
        await admin.query('LOCK TABLE prserv_revision IN SHARE MODE');
        let blocked: number[] = [];
        await vi.waitFor(
          async () => {
            const { rows } = await admin.query<{ pid: number }>(
              `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'prserv' AND wait_event_type = 'Lock'`,
              [name],
            );
            blocked = rows.map((row) => row.pid);
            expect(blocked).not.toEqual([]);
          },
          { timeout: 10_000, interval: 5 },
        );
        drop = next;
        const refusedBefore = refusals.length;
        // Terminate every prserv backend of this database: the blocked one and the idle ones.
        const { rows: terminated } = await admin.query<{ pid: number; done: boolean }>(
          `SELECT pid, pg_terminate_backend(pid) AS done FROM pg_stat_activity
           WHERE datname = $1 AND application_name = 'prserv' AND pid <> pg_backend_pid()`,
          [name],
        );
        expect(terminated.filter((row) => row.done).map((row) => row.pid)).toEqual(expect.arrayContaining(blocked));
        await admin.query('ROLLBACK');
        const servedAtDrop = served();
        // The blocked request was refused, and every client is served again on new connections.
        await vi.waitFor(() => expect(refusals.length).toBeGreaterThan(refusedBefore), { timeout: 10_000, interval: 5 });
        await everyClientServed(servedAtDrop, 1);
      }
      // Once the drops are over, nothing more is refused.
      const refusedAfterDrops = refusals.length;
      await everyClientServed(served(), 5);
      expect(refusals.length).toBe(refusedAfterDrops);
    } finally {
      stop = true;
      // Ending the session also releases the table lock if a drop failed half-way.
      await admin.end();
      await Promise.all(burst);
    }
    expect(server.child.exitCode).toBeNull();

    // Refusals came only from the drops, at least one from each, all with the same stable answer.
    expect(refusals.filter((refusal) => refusal.drop === 0)).toEqual([]);
    for (let each = 1; each <= DROPS; each += 1) expect(refusals.some((refusal) => refusal.drop === each)).toBe(true);
    for (const { error } of refusals) {
      expect(error).toBeInstanceOf(InvokeError);
      expect((error as Error).message).toBe(REFUSAL);
    }
    // The server logged each of them once, as an outage rather than a fault of its own.
    const failed = () => server.logs.filter((line) => line.msg === 'request failed');
    await vi.waitFor(() => expect(failed()).toHaveLength(refusals.length));
    for (const line of failed()) expect(line).toMatchObject({ level: WARN, code: 'DATABASE_UNAVAILABLE', method: 'get-pr', err: REFUSAL });
    expect(server.logs.filter((line) => line.msg === 'bad request refused')).toEqual([]);

    const check = createPrClient({ address: server.address });
    for (let index = 0; index < CLIENTS; index += 1) {
      const version = `v${index}`;
      const rows = (await check.export({ version, history: true })).rows;
      // No two checksums share a value, and no acknowledged allocation was lost.
      expect(new Set(rows.map((row) => row.value)).size).toBe(rows.length);
      const stored = new Set(rows.map((row) => `${row.checksum}=${row.value}`));
      expect(acks[index]!.filter((ack) => !stored.has(`${ack.checksum}=${ack.value}`))).toEqual([]);
      // Each new checksum was answered above every value before it.
      const values = acks[index]!.map((ack) => Number(ack.value));
      expect(values.filter((value, at) => at > 0 && value <= values[at - 1]!)).toEqual([]);
      // And the next one still gets the package maximum plus one.
      const max = Math.max(...rows.map((row) => Number(row.value)));
      expect(await check.getPr({ version, pkgarch: 'x', checksum: 'after' })).toBe(String(max + 1));
    }
    expect(await check.getPr({ version: 'after', pkgarch: 'x', checksum: 'a' })).toBe('0');
    await Promise.all([...clients, check].map((client) => client.close()));
  });
});
