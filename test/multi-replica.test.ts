import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, type PrClient } from '@prserv/client';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';
import { type ServerProcess, startServerProcess } from './support/cli-process.js';

const REPLICAS = 3;

describe('several prserv replicas on one PostgreSQL database', () => {
  let database: TestDatabase;
  let replicas: ServerProcess[] = [];
  let clients: PrClient[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase('replicas');
    // All start at the same moment on an empty database: each must find or create the schema.
    replicas = await Promise.all(
      Array.from({ length: REPLICAS }, () => startServerProcess({ database: database.url, args: ['--max-connections', '8'] })),
    );
    // Several connections per replica, as many builders would open.
    clients = replicas.flatMap((replica) => Array.from({ length: 4 }, () => createPrClient({ address: replica.address })));
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(replicas.map((replica) => replica.stop()));
    await database?.drop();
  });

  it('hands 64 concurrent new checksums of one package 64 distinct PRs 0..63', async () => {
    const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };
    const values = await Promise.all(
      Array.from({ length: 64 }, (_, index) => clients[index % clients.length]!.getPr({ ...pkg, checksum: `c${index}` })),
    );
    expect(values.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, index) => index));
  });

  it('gives one checksum asked on every replica at once one value', async () => {
    const pkg = { version: '2.0-r0', pkgarch: 'core2-64' };
    await clients[0]!.getPr({ ...pkg, checksum: 'seed' });
    const values = await Promise.all(
      clients.flatMap((client) => [
        client.getPr({ ...pkg, checksum: 'same', history: true }),
        client.getPr({ ...pkg, checksum: 'same', history: false }),
      ]),
    );
    expect(new Set(values)).toEqual(new Set(['1']));
    const exported = await clients[1]!.export({ version: pkg.version, history: true });
    expect(exported.rows.map((row) => row.value).sort()).toEqual(['0', '1']);
  });

  it('keeps history answers stable while other replicas move the package on', async () => {
    const pkg = { version: '3.0-r0', pkgarch: 'core2-64' };
    const first = await clients[0]!.getPr({ ...pkg, checksum: 'stable', history: true });
    const churn = Array.from({ length: 40 }, (_, index) => clients[index % clients.length]!.getPr({ ...pkg, checksum: `n${index}` }));
    const checks = Array.from({ length: 24 }, (_, index) =>
      clients[(index * 5) % clients.length]!.getPr({ ...pkg, checksum: 'stable', history: true }),
    );
    const [, answers] = await Promise.all([Promise.all(churn), Promise.all(checks)]);
    expect(new Set(answers)).toEqual(new Set([first]));
    expect(await clients[2]!.maxPackagePr(pkg)).toBe('40');
  });
});
