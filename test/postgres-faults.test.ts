import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError } from '@prserv/client';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';
import { type ServerProcess, startServerProcess } from './support/cli-process.js';

describe('prserv when PostgreSQL drops its connections', () => {
  let database: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createPostgresDatabase('faults');
    server = await startServerProcess({ database: database.url, args: ['--max-connections', '6'] });
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it('keeps running, fails only the requests caught in flight, and serves again', async () => {
    const name = new URL(database.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const clients = Array.from({ length: 6 }, () => createPrClient({ address: server.address, retries: 0 }));
    const outcomes = { ok: 0, refused: 0 };
    let stop = false;
    const burst = clients.map(async (client, index) => {
      for (let round = 0; !stop && round < 400; round += 1) {
        try {
          await client.getPr({ version: `v${index}`, pkgarch: 'x', checksum: `c${round}` });
          outcomes.ok += 1;
        } catch (error) {
          // A request caught by the drop is refused with a clear message, never answered wrongly.
          expect(error).toBeInstanceOf(InvokeError);
          expect((error as Error).message).toMatch(/^database (unavailable|error) while trying to/);
          outcomes.refused += 1;
        }
      }
    });
    // Terminate every prserv backend of this database, repeatedly, while the burst runs.
    for (let kill = 0; kill < 8; kill += 1) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      await admin.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'prserv' AND pid <> pg_backend_pid()`,
        [name],
      );
    }
    stop = true;
    await Promise.all(burst);
    await admin.end();
    expect(server.child.exitCode).toBeNull();
    expect(outcomes.ok).toBeGreaterThan(0);

    // Every stored value is still consistent: no two checksums share one, and the server answers.
    const check = createPrClient({ address: server.address });
    for (let index = 0; index < clients.length; index += 1) {
      const rows = (await check.export({ version: `v${index}`, history: true })).rows;
      expect(new Set(rows.map((row) => row.value)).size).toBe(rows.length);
    }
    expect(await check.getPr({ version: 'after', pkgarch: 'x', checksum: 'a' })).toBe('0');
    await Promise.all([...clients, check].map((client) => client.close()));
  });
});
