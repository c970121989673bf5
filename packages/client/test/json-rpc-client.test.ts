import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, PrClientError } from '@prserv/client';
import { createPostgresDatabase, type InProcessServer, startInProcessServer, type TestDatabase } from '@prserv/test-support';

describe('PrClient over the JSON-RPC envelope, against prserv', () => {
  let database: TestDatabase;
  let running: InProcessServer;

  beforeAll(async () => {
    database = await createPostgresDatabase('client_jsonrpc');
    running = await startInProcessServer(database.url);
  });

  afterAll(async () => {
    await running?.close();
    await database?.drop();
  });

  it('answers every request as asyncrpc does, revisions as strings', async () => {
    await using client = createPrClient({ address: running.address, protocol: 'jsonrpc' });
    const pkg = { version: '1.0-r0', pkgarch: 'jsonrpc-client' };
    expect(await client.ping()).toBe(true);
    expect(await client.isReadonly()).toBe(false);
    expect(await client.getPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await client.getPr({ ...pkg, checksum: 'b' })).toBe('1');
    expect(await client.getPr({ ...pkg, checksum: 'a', history: true })).toBe('0');
    expect(await client.testPr({ ...pkg, checksum: 'b' })).toBe('1');
    expect(await client.testPackage(pkg)).toBe(true);
    expect(await client.maxPackagePr(pkg)).toBe('1');
    expect(await client.importOne({ ...pkg, checksum: 'c', value: '1.2' })).toBe('1.2');
    expect((await client.export({ version: pkg.version, history: true })).rows.map((row) => row.value)).toEqual(['0', '1', '1.2']);
  });

  it('pipelines getPrMany over one connection and answers in the order asked', async () => {
    await using client = createPrClient({ address: running.address, protocol: 'jsonrpc' });
    const list = Array.from({ length: 2000 }, (_, index) => ({ version: 'many-1.0', pkgarch: `a${index % 4}`, checksum: `c${index >> 2}`, history: true }));
    const answers = await client.getPrMany(list);
    expect(answers).toEqual(list.map((args) => args.checksum.slice(1)));
    // Asked again, every checksum keeps its answer (history mode).
    expect(await client.getPrMany(list.slice(0, 100))).toEqual(answers.slice(0, 100));
  });

  it('stops getPrMany at its first refused request: nothing more is sent, nothing is stored after it rejects', async () => {
    await using client = createPrClient({ address: running.address, protocol: 'jsonrpc' });
    const version = 'many-stop-1.0';
    const list = Array.from({ length: 3000 }, (_, index) => ({ version, pkgarch: 'a', checksum: index === 10 ? 'x'.repeat(600) : `c${index}` }));
    await expect(client.getPrMany(list)).rejects.toBeInstanceOf(InvokeError);
    const stored = (await client.export({ version, history: true })).rows.length;
    // The window in flight when item 10 failed was answered; nothing was sent after it.
    expect(stored).toBeLessThan(1000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await client.export({ version, history: true })).rows.length).toBe(stored);
  });

  it('surfaces a refused request as InvokeError with the server code, and keeps the connection', async () => {
    await using client = createPrClient({ address: running.address, protocol: 'jsonrpc' });
    const refused = await client.getPr({ version: 'v', pkgarch: 'a', checksum: 'x'.repeat(600) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InvokeError);
    expect(refused).toMatchObject({ serverCode: 'INVALID_ARGUMENT', message: 'checksum is longer than 512 bytes' });
    expect(await client.ping()).toBe(true);
  });

  it('reports the server stats and resets them', async () => {
    await using client = createPrClient({ address: running.address, protocol: 'jsonrpc' });
    await client.ping();
    const stats = await client.stats();
    expect(stats.requests.ping!.count).toBeGreaterThanOrEqual(1);
    expect(stats.requests.all!.count).toBeGreaterThanOrEqual(stats.requests.ping!.count);
    await client.resetStats();
    // A request is counted once answered: what follows the reset is the reset itself.
    expect(Object.keys((await client.stats()).requests)).toEqual(['all', 'reset-stats']);
  });

  it('refuses legacy mode with jsonrpc, and a protocol it does not know', () => {
    expect(() => createPrClient({ address: running.address, protocol: 'jsonrpc', legacy: true })).toThrow(RangeError);
    expect(() => createPrClient({ address: running.address, protocol: 'grpc' as never })).toThrow(RangeError);
  });
});

describe('PrClient over the JSON-RPC envelope, timing out', () => {
  let server: Server;
  let address: string;

  beforeAll(async () => {
    // Answers request 2 at once and request 1 late, after the client gave up on it.
    server = createServer((socket) => {
      let buffer = '';
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        buffer += text;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const request = JSON.parse(buffer.slice(0, newline)) as { id: number };
          buffer = buffer.slice(newline + 1);
          const answer = `${JSON.stringify({ id: request.id, result: { alive: true }, error: null })}\n`;
          if (request.id === 1) setTimeout(() => socket.write(answer), 150);
          else socket.write(answer);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('forgets a request that timed out, ignores its late answer, and keeps the connection', async () => {
    await using client = createPrClient({ address, protocol: 'jsonrpc', requestTimeoutMs: 50 });
    const late = client.ping().catch((error: unknown) => error);
    expect(await client.ping({ timeoutMs: 1000 })).toBe(true);
    expect(await late).toMatchObject({ code: 'TIMEOUT' });
    expect(await late).toBeInstanceOf(PrClientError);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await client.ping({ timeoutMs: 1000 })).toBe(true);
  });
});
