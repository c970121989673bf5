import { createServer, type Server, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient, InvokeError, parseServerAddress, PrClientError } from '@prserv/client';
import { createPostgresDatabase, type InProcessServer, startInProcessServer, type TestDatabase } from '@prserv/test-support';

/** A TCP peer scripted per connection: it sees every line the client sends and decides what to write. */
async function scriptedServer(onLine: (line: string, socket: Socket, connection: number) => void): Promise<{ server: Server; address: string }> {
  let connections = 0;
  const server = createServer((socket) => {
    const connection = connections++;
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (text: string) => {
      buffer += text;
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        onLine(line, socket, connection);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { server, address: `127.0.0.1:${port}` };
}

const isRequest = (line: string) => line.startsWith('{');

describe('PrClient against prserv', () => {
  let database: TestDatabase;
  let running: InProcessServer;

  beforeAll(async () => {
    database = await createPostgresDatabase('client');
    running = await startInProcessServer(database.url);
  });

  afterAll(async () => {
    await running?.close();
    await database?.drop();
  });

  it('sends BitBake requests and returns revisions as strings', async () => {
    await using client = createPrClient({ address: running.address });
    const pkg = { version: '1.0-r0', pkgarch: 'client-test' };
    expect(await client.getPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await client.getPr({ ...pkg, checksum: 'b' })).toBe('1');
    expect(await client.getPr({ ...pkg, checksum: 'a', history: true })).toBe('0');
    expect(await client.testPr({ ...pkg, checksum: 'a' })).toBe('0');
    expect(await client.maxPackagePr(pkg)).toBe('1');
    expect((await client.export({ version: pkg.version, history: true })).rows).toHaveLength(2);
  });

  it('reconnects by itself after the server restarts on the same port', async () => {
    const client = createPrClient({ address: running.address, retryDelayMs: 20 });
    expect(await client.ping()).toBe(true);
    await running.stopListening();
    await running.listenAgain();
    expect(await client.ping()).toBe(true);
    await client.close();
  });

  it('fails with CLOSED after close() and after async dispose', async () => {
    const client = createPrClient({ address: running.address });
    expect(await client.ping()).toBe(true);
    await client[Symbol.asyncDispose]();
    await expect(client.ping()).rejects.toMatchObject({ name: 'PrClientError', code: 'CLOSED' });
  });
});

describe('PrClient failure handling', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  it('surfaces an invoke-error as InvokeError with the server message, without retrying', async () => {
    let requests = 0;
    const { server, address } = await scriptedServer((line, socket) => {
      if (!isRequest(line)) return;
      requests += 1;
      socket.end('{"invoke-error": {"message": "get-pr: missing parameter \\"checksum\\""}}\n');
    });
    servers.push(server);
    const client = createPrClient({ address });
    const error = await client.getPr({ version: 'v', pkgarch: 'a', checksum: 'c' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvokeError);
    expect((error as InvokeError).message).toBe('get-pr: missing parameter "checksum"');
    expect(requests).toBe(1);
    await client.close();
  });

  it('reads the bare null a read-only server answers to import-one as nothing stored, and refuses it elsewhere', async () => {
    const { server, address } = await scriptedServer((line, socket) => {
      if (isRequest(line)) socket.write('null\n');
    });
    servers.push(server);
    const client = createPrClient({ address });
    expect(await client.importOne({ version: 'v', pkgarch: 'a', checksum: 'c', value: '3' })).toBeNull();
    await expect(client.maxPackagePr({ version: 'v', pkgarch: 'a' })).rejects.toMatchObject({ code: 'PROTOCOL' });
    await client.close();
  });

  it('accepts integer answers of a legacy server as strings', async () => {
    const { server, address } = await scriptedServer((line, socket) => {
      if (isRequest(line)) socket.write('{"value": 12}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, legacy: true });
    expect(await client.getPr({ version: 'v', pkgarch: 'a', checksum: 'c' })).toBe('12');
    await client.close();
  });

  it('opens with the BitBake hello and sends no history key in legacy mode', async () => {
    const lines: string[] = [];
    const { server, address } = await scriptedServer((line, socket) => {
      lines.push(line);
      if (isRequest(line)) socket.write('{"value": null}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, legacy: true });
    await client.testPr({ version: 'v', pkgarch: 'a', checksum: 'c', history: true });
    await client.close();
    expect(lines).toEqual(['PRSERVICE 1.0', 'needs-headers: false', '', '{"test-pr":{"version":"v","pkgarch":"a","checksum":"c"}}']);
  });

  it('retries on a new connection when the server drops it, as BitBake does', async () => {
    const { server, address } = await scriptedServer((line, socket, connection) => {
      if (!isRequest(line)) return;
      if (connection < 2) socket.destroy();
      else socket.write('{"alive": true}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, retries: 3, retryDelayMs: 10 });
    expect(await client.ping()).toBe(true);
    await client.close();
  });

  it('gives up after the bounded retries with CONNECTION_LOST', async () => {
    let attempts = 0;
    const { server, address } = await scriptedServer((line, socket) => {
      if (!isRequest(line)) return;
      attempts += 1;
      socket.destroy();
    });
    servers.push(server);
    const client = createPrClient({ address, retries: 2, retryDelayMs: 10 });
    await expect(client.ping()).rejects.toMatchObject({ code: 'CONNECTION_LOST' });
    expect(attempts).toBe(3);
    await client.close();
  });

  it('fails with CONNECT_FAILED when nothing listens', async () => {
    const { server, address } = await scriptedServer(() => {});
    await new Promise((resolve) => server.close(resolve));
    const client = createPrClient({ address, retries: 1, retryDelayMs: 10 });
    const error = await client.ping().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PrClientError);
    expect(error).toMatchObject({ code: 'CONNECT_FAILED' });
    expect((error as Error).message).toContain(address);
  });

  it('times out a request the server never answers, and closes that connection', async () => {
    let connections = 0;
    const { server, address } = await scriptedServer((line, socket, connection) => {
      connections = Math.max(connections, connection + 1);
      if (isRequest(line) && connection > 0) socket.write('{"alive": true}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, requestTimeoutMs: 200 });
    const started = Date.now();
    await expect(client.ping()).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5_000);
    // The spoiled connection is replaced: the next call opens a new one and succeeds.
    expect(await client.ping()).toBe(true);
    expect(connections).toBe(2);
    await client.close();
  });

  it('times out a connection that never opens', async () => {
    // A socket that is never connected stands for an unreachable host.
    const client = createPrClient({ address: '127.0.0.1:9', connectTimeoutMs: 100, retries: 0, createSocket: () => new Socket() });
    await expect(client.ping()).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('aborts a pending request through its AbortSignal', async () => {
    const { server, address } = await scriptedServer(() => {});
    servers.push(server);
    const client = createPrClient({ address });
    const controller = new AbortController();
    const pending = client.ping({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('build cancelled')), 50);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(client.ping({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    await client.close();
  });

  it('shares one new connection among concurrent calls after the old one died', async () => {
    let opened = 0;
    const { server, address } = await scriptedServer((line, socket, connection) => {
      opened = Math.max(opened, connection + 1);
      if (!isRequest(line)) return;
      if (connection === 0) socket.destroy();
      else socket.write('{"alive": true}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, retryDelayMs: 10 });
    await client.ping().catch(() => undefined); // first connection: dropped, then retried on the second
    const answers = await Promise.all(Array.from({ length: 5 }, () => client.ping()));
    expect(answers).toEqual([true, true, true, true, true]);
    expect(opened).toBe(2);
    await client.close();
    await new Promise((resolve) => server.getConnections((_error, count) => (count === 0 ? resolve(0) : setTimeout(resolve, 200))));
    server.getConnections((_error, count) => expect(count).toBe(0));
  });

  it('does not fail the other callers when one call is aborted', async () => {
    const requests: number[] = [];
    const { server, address } = await scriptedServer((line, socket, connection) => {
      if (!isRequest(line)) return;
      requests.push(connection);
      // The first connection never answers; later ones do.
      if (connection > 0) socket.write('{"alive": true}\n');
    });
    servers.push(server);
    const client = createPrClient({ address, retryDelayMs: 10 });
    const controller = new AbortController();
    const first = client.ping({ signal: controller.signal });
    while (requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // The second call waits behind the first on the same connection when the first is aborted.
    const second = client.ping();
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await expect(first).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await second).toBe(true);
    expect(requests).toEqual([0, 1]);
    await client.close();
  });

  it('aborts a call still queued behind another at once', async () => {
    const { server, address } = await scriptedServer(() => {});
    servers.push(server);
    const client = createPrClient({ address, requestTimeoutMs: 5_000 });
    const first = client.ping();
    const controller = new AbortController();
    const queued = client.ping({ signal: controller.signal });
    setTimeout(() => controller.abort(), 30);
    const started = Date.now();
    await expect(queued).rejects.toMatchObject({ code: 'ABORTED' });
    expect(Date.now() - started).toBeLessThan(1_000);
    await client.close();
    await expect(first).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('counts the request timeout from the call, including the wait behind earlier requests', async () => {
    const { server, address } = await scriptedServer(() => {});
    servers.push(server);
    const client = createPrClient({ address, requestTimeoutMs: 300, retries: 0 });
    const started = Date.now();
    const results = await Promise.allSettled([client.ping(), client.ping(), client.ping()]);
    const elapsed = Date.now() - started;
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'TIMEOUT' });
    // Three requests in a row with 300 ms each would take 900 ms; all end near the first deadline.
    expect(elapsed).toBeLessThan(800);
    await client.close();
  });

  it('refuses timers Node cannot keep (above 2147483647 ms, NaN, 0 or negative) with INVALID_OPTION', async () => {
    const invalid = (options: Partial<Parameters<typeof createPrClient>[0]>) => {
      try {
        createPrClient({ address: '127.0.0.1:1', ...options });
      } catch (error) {
        expect(error).toBeInstanceOf(PrClientError);
        return error as PrClientError;
      }
      return undefined;
    };
    expect(invalid({ requestTimeoutMs: 99_999_999_999 })).toMatchObject({
      code: 'INVALID_OPTION',
      message: "requestTimeoutMs must be 1 to 2147483647 ms (Node's longest timer), got 99999999999",
    });
    expect(invalid({ connectTimeoutMs: 2 ** 31 })).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('connectTimeoutMs') });
    expect(invalid({ retryDelayMs: 2 ** 31 })).toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('retryDelayMs') });
    expect(invalid({ requestTimeoutMs: Number.NaN })).toMatchObject({ code: 'INVALID_OPTION' });
    expect(invalid({ requestTimeoutMs: 0 })).toMatchObject({ code: 'INVALID_OPTION' });
    expect(invalid({ connectTimeoutMs: -1 })).toMatchObject({ code: 'INVALID_OPTION' });
    expect(invalid({ requestTimeoutMs: 2_147_483_647, connectTimeoutMs: 2_147_483_647, retryDelayMs: 0 })).toBeUndefined();
    const client = createPrClient({ address: '127.0.0.1:1', retries: 0 });
    await expect(client.ping({ timeoutMs: 2 ** 31 })).rejects.toMatchObject({ code: 'INVALID_OPTION', message: expect.stringContaining('timeoutMs') });
    await client.close();
  });

  it('rejects an address that is not HOST:PORT', () => {
    expect(() => createPrClient({ address: 'nonsense' })).toThrow(PrClientError);
    expect(parseServerAddress('[::1]:8585')).toEqual({ host: '::1', port: 8585 });
    expect(parseServerAddress('prserv.example:8585')).toEqual({ host: 'prserv.example', port: 8585 });
  });
});
