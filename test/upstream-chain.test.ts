import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, type PrClient } from '@prserv/client';
import { createPostgresDatabase, STORE_KINDS, type TestDatabase } from './support/databases.js';
import { type ServerProcess, startServerProcess } from './support/cli-process.js';

const version = 'dummy-1.0-r0';
const pkgarch = 'core2-64';
const ask = (client: PrClient, checksum: string, history = false) => client.getPr({ version, pkgarch, checksum, history });

describe.each(STORE_KINDS)('upstream chain server2 ← server1 ← server0 on $kind', ({ kind, create }) => {
  const databases: TestDatabase[] = [];
  const servers: ServerProcess[] = [];
  const clients: PrClient[] = [];
  let client0: PrClient;
  let client1: PrClient;
  let client2: PrClient;

  const start = async (label: string, args: string[] = [], database?: TestDatabase) => {
    const db = database ?? (await create(`chain_${label}_${kind}`));
    if (!database) databases.push(db);
    const server = await startServerProcess({ database: db.url, args });
    servers.push(server);
    const client = createPrClient({ address: server.address });
    clients.push(client);
    return { db, server, client };
  };

  beforeAll(async () => {
    const two = await start('server2');
    const one = await start('server1', ['--upstream', two.server.address]);
    const zero = await start('server0', ['--upstream', one.server.address]);
    [client2, client1, client0] = [two.client, one.client, zero.client];
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(servers.map((server) => server.stop()));
    await Promise.all(databases.map((db) => db.drop()));
  });

  it('extends the upstream numbering as docs/protocol.md §7.4 and BitBake’s PRUpstreamTests walk it', async () => {
    expect(await ask(client2, 'checksum0')).toBe('0');
    expect(await ask(client1, 'checksum0')).toBe('0');
    expect(await ask(client0, 'checksum0')).toBe('0');

    expect(await ask(client1, 'checksum1')).toBe('0.0');
    expect(await ask(client1, 'checksum2')).toBe('0.1');
    expect(await ask(client1, 'checksum1')).toBe('0.2');
    expect(await ask(client1, 'checksum2')).toBe('0.3');
    expect(await client1.maxPackagePr({ version, pkgarch })).toBe('0.3');

    expect(await ask(client0, 'checksum3')).toBe('0.3.0');
    expect(await ask(client0, 'checksum4')).toBe('0.3.1');
    expect(await ask(client0, 'checksum3')).toBe('0.3.2');

    expect(await ask(client2, 'checksum5')).toBe('1');
    expect(await ask(client1, 'checksum6')).toBe('1.0');
    expect(await ask(client1, 'checksum7')).toBe('1.1');
    expect(await ask(client0, 'checksum8')).toBe('1.1.0');
    expect(await ask(client0, 'checksum9')).toBe('1.1.1');
  });

  it('answers the first value of each checksum in history mode', async () => {
    expect(await ask(client2, 'checksum0', true)).toBe('0');
    expect(await ask(client1, 'checksum2', true)).toBe('0.1');
    expect(await ask(client0, 'checksum3', true)).toBe('0.3.0');
  });

  it('never goes below upstream in no-history mode', async () => {
    expect(await ask(client2, 'checksum0')).toBe('2');
    expect(await ask(client1, 'checksum0')).toBe('2');
    expect(await ask(client0, 'checksum0')).toBe('2');
    expect(await ask(client1, 'checksum7')).toBe('3');
  });

  it('keeps test-pr, test-package, max-package-pr and export local', async () => {
    expect(await client0.testPr({ version, pkgarch, checksum: 'checksum7' })).toBeNull();
    expect(await client0.maxPackagePr({ version, pkgarch })).toBe('2');
    expect(await client0.testPackage({ version: 'only-upstream', pkgarch })).toBe(false);
    const exported = await client0.export({ version, history: true });
    expect(exported.rows.map((row) => row.checksum)).not.toContain('checksum7');
  });

  it('answers a known checksum of a package unknown upstream (where BitBake crashes)', async () => {
    const local = { version: 'local-only-1.0', pkgarch };
    expect(await client0.getPr({ ...local, checksum: 'a' })).toBe('0');
    expect(await client0.getPr({ ...local, checksum: 'b' })).toBe('1');
    expect(await client0.getPr({ ...local, checksum: 'a' })).toBe('2');
    expect(await client0.getPr({ ...local, checksum: 'a' })).toBe('2');
    expect(await client0.getPr({ ...local, checksum: 'a', history: true })).toBe('0');
  });

  if (kind === 'postgres') {
    it('lets a read-only server share server0’s database, pointed at server1', async () => {
      const { client: readOnly } = await start('readonly', ['--read-only', '--upstream', servers[1]!.address], databases[2]);
      expect(await readOnly.isReadonly()).toBe(true);
      expect(await readOnly.testPr({ version, pkgarch, checksum: 'checksumX' })).toBeNull();
      expect(await readOnly.testPackage({ version: 'unknown', pkgarch })).toBe(false);
      expect(await ask(readOnly, 'checksum0')).toBe('3');
      expect(await ask(readOnly, 'checksum0', true)).toBe('0');
      expect(await ask(readOnly, 'checksum3')).toBe('3');
      expect(await ask(readOnly, 'checksum3', true)).toBe('0.3.0');
      expect(await readOnly.maxPackagePr({ version, pkgarch })).toBe('2');
      expect(await ask(readOnly, 'checksum7')).toBe('3');
      expect(await ask(readOnly, 'checksum10')).toBe('3.0');
      expect(await ask(readOnly, 'checksum9')).toBe('3');
      // Nothing was stored by the read-only server.
      expect(await client0.maxPackagePr({ version, pkgarch })).toBe('2');
      expect(await client0.testPr({ version, pkgarch, checksum: 'checksum10' })).toBeNull();
    });
  }
});

describe('a server whose upstream goes away and comes back', () => {
  let upstreamDb: TestDatabase;
  let localDb: TestDatabase;
  let upstream: ServerProcess | undefined;
  let local: ServerProcess;
  let client: PrClient;
  const pkg = { version: `3.0-r0-${randomUUID().slice(0, 6)}`, pkgarch };

  beforeAll(async () => {
    upstreamDb = await createPostgresDatabase('upstream_flaky');
    localDb = await createPostgresDatabase('local_flaky');
    upstream = await startServerProcess({ database: upstreamDb.url });
    local = await startServerProcess({ database: localDb.url, args: ['--upstream', upstream.address, '--log-level', 'debug'] });
    client = createPrClient({ address: local.address });
  });

  afterEach(async () => {
    if (!upstream) upstream = await startServerProcess({ database: upstreamDb.url });
  });

  afterAll(async () => {
    await client?.close();
    await local?.stop();
    await upstream?.stop();
    await localDb?.drop();
    await upstreamDb?.drop();
  });

  it('fails get-pr and preview-pr with an invoke-error naming the upstream, stores nothing, and recovers by itself', async () => {
    const upstreamClient = createPrClient({ address: upstream!.address });
    expect(await upstreamClient.getPr({ ...pkg, checksum: 'up0' })).toBe('0');
    await upstreamClient.close();
    expect(await client.getPr({ ...pkg, checksum: 'local0' })).toBe('0.0');
    const logsBefore = local.logs.length;

    const port = upstream!.port;
    expect(await upstream!.stop()).toBe(0);
    upstream = undefined;

    const failure = await client.getPr({ ...pkg, checksum: 'local1' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(InvokeError);
    expect((failure as Error).message).toMatch(new RegExp(`upstream PR server 127\\.0\\.0\\.1:${port} failed: .*(connect|ECONNREFUSED)`));
    expect(await client.testPr({ ...pkg, checksum: 'local1' })).toBeNull();
    // preview-pr answers what get-pr would: it needs the upstream as much.
    const previewFailure = await client.previewPr({ ...pkg, checksum: 'local1' }).catch((error: unknown) => error);
    expect(previewFailure).toBeInstanceOf(InvokeError);
    expect((previewFailure as Error).message).toMatch(new RegExp(`upstream PR server 127\\.0\\.0\\.1:${port} failed`));
    // Requests that do not need the upstream carry on.
    expect(await client.ping()).toBe(true);
    expect(await client.maxPackagePr(pkg)).toBe('0.0');
    expect(await client.getPr({ ...pkg, checksum: 'local0', history: true })).toBe('0.0');
    const warnings = local.logs.slice(logsBefore).filter((entry) => entry.msg === 'upstream call failed');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ level: 40 });

    upstream = await startServerProcess({ database: upstreamDb.url, bind: `127.0.0.1:${port}` });
    expect(await client.getPr({ ...pkg, checksum: 'local1' })).toBe('0.1');
    expect(await client.previewPr({ ...pkg, checksum: 'local2' })).toEqual({ value: '0.2', isNew: true, packageMax: '0.1', frozen: null });
    const calls = local.logs.filter((entry) => entry.msg === 'upstream call');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls[0]).toMatchObject({ level: 20, upstream: `127.0.0.1:${port}` });
  });

  it('hands 32 concurrent new checksums 32 distinct sub-revisions', async () => {
    const concurrent = { version: `4.0-r0-${randomUUID().slice(0, 6)}`, pkgarch };
    const upstreamClient = createPrClient({ address: upstream!.address });
    expect(await upstreamClient.getPr({ ...concurrent, checksum: 'base' })).toBe('0');
    expect(await upstreamClient.getPr({ ...concurrent, checksum: 'base2' })).toBe('1');
    await upstreamClient.close();
    const many = Array.from({ length: 4 }, () => createPrClient({ address: local.address }));
    const values = await Promise.all(
      Array.from({ length: 32 }, (_, index) => many[index % many.length]!.getPr({ ...concurrent, checksum: `n${index}` })),
    );
    await Promise.all(many.map((each) => each.close()));
    expect([...values].sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))).toEqual(
      Array.from({ length: 32 }, (_, index) => `1.${index}`),
    );
  });
});
