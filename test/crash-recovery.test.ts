import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient } from '@prserv/client';
import { type ServerProcess, STORE_KINDS, startServerProcess, type TestDatabase } from '@prserv/test-support';

const CLIENTS = 8;
const PACKAGES = 4;

describe.each(STORE_KINDS)('a prserv server killed with SIGKILL under load, on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let server: ServerProcess | undefined;

  beforeAll(async () => {
    database = await create(`crash_${kind}`);
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it('loses no acknowledged allocation, and numbering goes on without reuse after the restart', async () => {
    server = await startServerProcess({ database: database.url });
    const clients = Array.from({ length: CLIENTS }, () => createPrClient({ address: server!.address, retries: 0, requestTimeoutMs: 5_000 }));
    // Every request asks a new checksum (history mode: its answer never changes once given).
    const acked: { version: string; checksum: string; value: string }[] = [];
    let killed = false;
    const load = clients.map(async (client, index) => {
      for (let round = 0; !killed; round += 1) {
        const version = `crash-${index % PACKAGES}`;
        const checksum = `client${index}-round${round}`;
        try {
          const value = await client.getPr({ version, pkgarch: 'core2-64', checksum, history: true });
          acked.push({ version, checksum, value });
        } catch {
          // Requests in flight when the process dies fail: they were never acknowledged.
          return;
        }
      }
    });
    await expect.poll(() => acked.length, { timeout: 30_000 }).toBeGreaterThan(300);
    killed = true;
    expect(await server.stop('SIGKILL')).toBeNull();
    await Promise.all(load);
    await Promise.all(clients.map((client) => client.close()));

    // The embedded store's lock is taken over from the dead process.
    server = await startServerProcess({ database: database.url });
    const client = createPrClient({ address: server.address });
    try {
      for (const { version, checksum, value } of acked) {
        expect(await client.testPr({ version, pkgarch: 'core2-64', checksum, history: true }), `${version} ${checksum}`).toBe(value);
      }
      for (let pkg = 0; pkg < PACKAGES; pkg += 1) {
        const version = `crash-${pkg}`;
        const values = acked.filter((row) => row.version === version).map((row) => Number(row.value));
        // No value went to two checksums, and a new one now lands above everything acknowledged.
        expect(new Set(values).size).toBe(values.length);
        const next = Number(await client.getPr({ version, pkgarch: 'core2-64', checksum: 'after-restart', history: true }));
        expect(next).toBeGreaterThan(Math.max(...values));
      }
    } finally {
      await client.close();
    }
  }, 120_000);
});
