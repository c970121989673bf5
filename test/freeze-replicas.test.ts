import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, type PrClient } from '@prserv/client';
import { openPrStore, type PrStore } from '@prserv/core';
import { type RunningPrServer, runCli, startPrServer } from '@prserv/server';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';

// A freeze lives in the database: made on one replica (or by the CLI), it is enforced by the
// others on their next write, without a restart or any message between them.

async function cli(args: string[]): Promise<number> {
  const sink = () => new PassThrough().setEncoding('utf8').on('data', () => {});
  return runCli(args, { env: {}, stdout: sink(), stderr: sink() });
}

describe('freezing across two replicas on one PostgreSQL database', () => {
  let database: TestDatabase;
  const stores: PrStore[] = [];
  const servers: RunningPrServer[] = [];
  let a: PrClient;
  let b: PrClient;

  beforeAll(async () => {
    database = await createPostgresDatabase('freeze_replicas');
    for (let replica = 0; replica < 2; replica += 1) {
      const store = await openPrStore({ database: database.url, poolSize: 4 });
      stores.push(store);
      servers.push(await startPrServer({ engine: store, host: '127.0.0.1', port: 0 }));
    }
    a = createPrClient({ address: `127.0.0.1:${servers[0]!.address.port}` });
    b = createPrClient({ address: `127.0.0.1:${servers[1]!.address.port}`, protocol: 'jsonrpc' });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await Promise.all(servers.map((server) => server.close()));
    await Promise.all(stores.map((store) => store.close()));
    await database?.drop();
  });

  it('enforces on replica B a freeze made through replica A’s store, from B’s next request', async () => {
    const pkg = { version: 'openssl-3.2', pkgarch: 'core2-64' };
    expect(await b.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await b.getPr({ ...pkg, checksum: 'c1' })).toBe('1');
    await stores[0]!.freeze({ version: 'openssl-*' });
    expect(await b.getPr({ ...pkg, checksum: 'c2' })).toBe('1');
    expect(await a.getPr({ ...pkg, checksum: 'c3', history: true })).toBe('1');
    // Concurrent writes through both replicas (coalesced into batches) move nothing.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 ? a : b).getPr({ ...pkg, checksum: `n${index}` })),
    );
    expect(new Set(answers)).toEqual(new Set(['1']));
    expect(await stores[1]!.exportRows({ ...pkg, history: true })).toHaveLength(2);
  });

  it('refuses on replica A the import-one and unknown packages of a freeze made by the CLI, and thaws the same way', async () => {
    const pkg = { version: 'zlib-1.3', pkgarch: 'armv8a' };
    expect(await cli(['freeze', 'zlib-*', '--pkgarch', 'arm*', '--database', database.url])).toBe(0);
    await expect(a.importOne({ ...pkg, checksum: 'c0', value: '4' })).rejects.toThrow(InvokeError);
    await expect(b.getPr({ ...pkg, checksum: 'c0' })).rejects.toThrow(/frozen \(freeze "zlib-\*" --pkgarch "arm\*"\)/);
    // Another architecture is not covered.
    expect(await a.getPr({ ...pkg, pkgarch: 'core2-64', checksum: 'c0' })).toBe('0');

    expect(await cli(['thaw', 'zlib-*', '--pkgarch', 'arm*', '--database', database.url])).toBe(0);
    expect(await b.getPr({ ...pkg, checksum: 'c0' })).toBe('0');
    expect(await a.importOne({ ...pkg, checksum: 'c1', value: '4' })).toBe('4');
    const history = await b.history(pkg);
    expect(history.map((row) => [row.value, row.storedHow, row.storedBy, row.previousMax])).toEqual([
      ['0', 'get-pr-nohist', '127.0.0.1', null],
      ['4', 'import-one', '127.0.0.1', '0'],
    ]);
  });
});
