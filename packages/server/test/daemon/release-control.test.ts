import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, type PrClient } from '@prserv/client';
import { openPrStore, type PrStore } from '@prserv/core';
import { RawSocket, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { type RunningPrServer, startPrServer } from '../../src/daemon/pr-server.js';

// Provenance, freezes and previews through the server: the peer's address reaches the rows, the
// new methods answer on both protocols, and a refused get-pr is an invoke-error naming the freeze.

describe.each(STORE_KINDS)('release control over the wire on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;
  const clients: PrClient[] = [];

  /** A client whose connections come from `localAddress` (another loopback address). */
  function clientFrom(localAddress: string, protocol: 'asyncrpc' | 'jsonrpc' = 'asyncrpc'): PrClient {
    const client = createPrClient({
      address: `127.0.0.1:${server.address.port}`,
      protocol,
      createSocket: ({ host, port }) => connect({ host, port, localAddress }),
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    database = await create(`release_wire_${kind}`);
    store = await openPrStore({ database: database.url });
    // Dual-stack, so that IPv4 peers arrive IPv6-mapped and must be recorded as plain IPv4.
    server = await startPrServer({ engine: store, host: '::', port: 0 });
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await server?.close();
    await store?.close();
    await database?.drop();
  });

  it('records the client address and how each row came, and answers package-history with them', async () => {
    const pkg = { version: `wire-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
    const builder = clientFrom('127.0.0.2');
    const importer = clientFrom('127.0.0.3', 'jsonrpc');
    expect(await builder.getPr({ ...pkg, checksum: 'X' })).toBe('0');
    expect(await importer.getPr({ ...pkg, checksum: 'Y', history: true })).toBe('1');
    expect(await builder.getPr({ ...pkg, checksum: 'X' })).toBe('2');
    expect(await importer.importOne({ ...pkg, checksum: 'Z', value: '7' })).toBe('7');

    // A legacy client (no history key) is served in the server's default mode: no-history.
    const legacy = await RawSocket.open(server.address.port, '127.0.0.1', '127.0.0.4');
    legacy.write(`PRSERVICE 1.0\n\n${JSON.stringify({ 'get-pr': { ...pkg, checksum: 'L' } })}\n`);
    expect(JSON.parse(await legacy.readLine())).toEqual({ value: 8 });
    legacy.close();

    const history = await clientFrom('127.0.0.5').history(pkg);
    expect(history.map(({ storedAt, ...rest }) => rest)).toEqual([
      { checksum: 'X', value: '0', storedBy: '127.0.0.2', storedHow: 'get-pr-nohist', previousMax: null },
      { checksum: 'Y', value: '1', storedBy: '127.0.0.3', storedHow: 'get-pr-history', previousMax: '0' },
      { checksum: 'X', value: '2', storedBy: '127.0.0.2', storedHow: 'get-pr-nohist', previousMax: '1' },
      { checksum: 'Z', value: '7', storedBy: '127.0.0.3', storedHow: 'import-one', previousMax: '2' },
      { checksum: 'L', value: '8', storedBy: '127.0.0.4', storedHow: 'get-pr-nohist', previousMax: '7' },
    ]);
    for (const row of history) expect(row.storedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect((await builder.history({ ...pkg, checksum: 'X' })).map((row) => row.value)).toEqual(['0', '2']);
  });

  it('refuses get-pr of a frozen package without a PR with an invoke-error naming the freeze', async () => {
    const pkg = { version: `wire-frozen-${randomUUID().slice(0, 8)}`, pkgarch: 'core2-64' };
    await store.freeze({ version: 'wire-frozen-*' });
    try {
      const client = clientFrom('127.0.0.2');
      const error = await client.getPr({ ...pkg, checksum: 'c0' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvokeError);
      expect((error as Error).message).toBe(
        `package ${pkg.version} core2-64 is frozen (freeze "wire-frozen-*"): it has no PR yet, and a frozen package never gets a new one; thaw it with 'prserv thaw' to allow it`,
      );
      const json = clientFrom('127.0.0.2', 'jsonrpc');
      await expect(json.importOne({ ...pkg, checksum: 'c0', value: '1' })).rejects.toThrow(/is frozen/);
      // The JSON-RPC connection carries on after the refusal.
      expect(await json.ping()).toBe(true);
    } finally {
      await store.thaw({ version: 'wire-frozen-*' });
    }
  });

  it('previews get-pr without storing, and preflight sorts tuples into bump, stay, frozen and refused', async () => {
    const id = randomUUID().slice(0, 8);
    const moving = { version: `pf-move-${id}`, pkgarch: 'core2-64' };
    const held = { version: `pf-held-${id}`, pkgarch: 'core2-64' };
    const empty = { version: `pf-empty-${id}`, pkgarch: 'core2-64' };
    const writer = clientFrom('127.0.0.2');
    await writer.getPr({ ...moving, checksum: 'm0' });
    await writer.getPr({ ...held, checksum: 'h0' });
    await store.freeze({ version: held.version });
    await store.freeze({ version: empty.version });
    try {
      const asker = clientFrom('127.0.0.6', 'jsonrpc');
      expect(await asker.previewPr({ ...moving, checksum: 'm1' })).toEqual({ value: '1', isNew: true, packageMax: '0', frozen: null });
      const report = await asker.preflight([
        { ...moving, checksum: 'm0' },
        { ...moving, checksum: 'm1' },
        { ...held, checksum: 'h1' },
        { ...empty, checksum: 'e0' },
        { ...moving, checksum: 'm0', history: true },
      ]);
      expect(report.entries.map((entry) => [entry.checksum, entry.verdict, entry.value])).toEqual([
        ['m0', 'stay', '0'],
        ['m1', 'bump', '1'],
        ['h1', 'frozen', '0'],
        ['e0', 'refused', null],
        ['m0', 'stay', '0'],
      ]);
      expect(report.counts).toEqual({ bump: 1, stay: 2, frozen: 1, refused: 1 });
      expect(report.entries[2]!.frozen).toEqual({ version: held.version, pkgarch: '*' });
      // The same over asyncrpc, one request at a time; and nothing was stored by either.
      expect((await clientFrom('127.0.0.6').preflight([{ ...moving, checksum: 'm1' }])).counts.bump).toBe(1);
      expect(await store.maxPackagePr(moving)).toBe('0');
      expect(await store.maxPackagePr(empty)).toBeNull();
    } finally {
      await store.thaw({ version: held.version });
      await store.thaw({ version: empty.version });
    }
  });
});
