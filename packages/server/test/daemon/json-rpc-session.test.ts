import { once } from 'node:events';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrEngine, type PrStore } from '@prserv/core';
import { createPostgresDatabase, RawSocket, type TestDatabase } from '@prserv/test-support';
import { MAX_REQUESTS_IN_FLIGHT } from '../../src/daemon/json-rpc-session.js';
import { type RunningPrServer, startPrServer } from '../../src/daemon/pr-server.js';

interface Response {
  id: string | number | null;
  result: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

async function readResponses(raw: RawSocket, count: number): Promise<Response[]> {
  const responses: Response[] = [];
  for (let index = 0; index < count; index += 1) responses.push(JSON.parse(await raw.readLine(20_000)) as Response);
  return responses;
}

const line = (message: unknown) => `${JSON.stringify(message)}\n`;

describe('the JSON-RPC envelope over TCP, on a PostgreSQL store', () => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;

  beforeAll(async () => {
    database = await createPostgresDatabase('json_rpc');
    store = await openPrStore({ database: database.url });
    server = await startPrServer({ engine: store, host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
    await database?.drop();
  });

  it('answers 1,000 requests pipelined on one connection, each with its id, with string revisions', async () => {
    const raw = await RawSocket.open(server.address.port);
    const requests = Array.from({ length: 1000 }, (_, index) => ({
      id: index,
      method: 'get-pr',
      params: { version: 'pipe-1.0', pkgarch: `arch${index % 10}`, checksum: `c${Math.floor(index / 10)}`, history: true },
    }));
    raw.write(requests.map(line).join(''));
    const responses = await readResponses(raw, 1000);
    raw.close();
    const byId = new Map(responses.map((response) => [response.id, response]));
    expect(byId.size).toBe(1000);
    for (const request of requests) {
      const response = byId.get(request.id)!;
      expect(response.error).toBeNull();
      // Each arch gets checksums c0..c99 in order: c<n> is revision n, as a string.
      expect(response.result).toEqual({ value: String(Number(request.params.checksum.slice(1))) });
    }
  });

  it('answers bad requests in the middle of a pipeline with errors carrying their ids, and carries on', async () => {
    const raw = await RawSocket.open(server.address.port);
    const pkg = { version: 'mixed-1.0', pkgarch: 'core2-64' };
    raw.write(
      [
        line({ id: 1, method: 'get-pr', params: { ...pkg, checksum: 'a' } }),
        line({ id: 2, method: 'get-everything', params: {} }),
        line({ id: 3, method: 'get-pr', params: { ...pkg } }),
        line({ method: 'ping' }),
        line({ id: 4, method: 'import-one', params: { ...pkg, checksum: 'b', value: 'r1' } }),
        line({ id: 5, method: 'get-pr', params: { ...pkg, checksum: 'x'.repeat(600) } }),
        line({ id: 6, method: 'get-pr', params: { ...pkg, checksum: 'b' } }),
        line({ id: 8, method: 'is-readonly' }),
      ].join(''),
    );
    const byId = new Map((await readResponses(raw, 8)).map((response) => [response.id, response]));
    // Requests in flight together run concurrently: a and b get 0 and 1 in whichever order.
    expect([byId.get(1)?.result?.value, byId.get(6)?.result?.value].sort()).toEqual(['0', '1']);
    expect(byId.get(2)?.error).toEqual({ code: 'UNKNOWN_METHOD', message: 'unknown method "get-everything"' });
    expect(byId.get(3)?.error).toEqual({ code: 'INVALID_PARAMS', message: 'get-pr: missing parameter "checksum"' });
    expect(byId.get(null)?.error?.code).toBe('INVALID_REQUEST');
    expect(byId.get(4)?.error?.code).toBe('INVALID_ARGUMENT');
    expect(byId.get(5)?.error).toEqual({ code: 'INVALID_ARGUMENT', message: 'checksum is longer than 512 bytes' });
    expect(byId.get(8)?.result).toEqual({ readonly: false });
    // Still open, and nothing of the bad requests was stored.
    raw.write(line({ id: 9, method: 'export', params: { ...pkg, history: true } }));
    const [exported] = await readResponses(raw, 1);
    expect((exported!.result as { datainfo: { checksum: string }[] }).datainfo.map((row) => row.checksum).sort()).toEqual(['a', 'b']);
    raw.close();
  });

  it('answers a line that is not JSON with an error without id, after the answers before it, then closes', async () => {
    const malformedBefore = server.stats.snapshot().requests.unknown?.errors ?? 0;
    const raw = await RawSocket.open(server.address.port);
    raw.write(`${line({ id: 'p', method: 'ping' })}this is not json\n${line({ id: 'late', method: 'ping' })}`);
    const responses = await readResponses(raw, 2);
    expect(responses[0]).toEqual({ id: 'p', result: { alive: true }, error: null });
    expect(responses[1]).toMatchObject({ id: null, result: null, error: { code: 'MALFORMED_MESSAGE' } });
    expect(await raw.closedByPeer(5_000)).toBe(true);
    expect(raw.unread).toBe('');
    raw.close();
    // Counted as a request answered with an error.
    expect(server.stats.snapshot().requests.unknown?.errors).toBe(malformedBefore + 1);
  });

  it('serves get-stats and reset-stats in both protocols', async () => {
    const raw = await RawSocket.open(server.address.port);
    raw.write(line({ id: 1, method: 'get-stats' }));
    const [stats] = await readResponses(raw, 1);
    const requests = (stats!.result as { requests: Record<string, { count: number; errors: number }> }).requests;
    expect(requests['get-pr']!.count).toBeGreaterThanOrEqual(1000);
    expect(requests.all!.errors).toBeGreaterThanOrEqual(5);
    raw.close();

    const legacy = await RawSocket.greeted(server.address.port);
    legacy.send({ 'reset-stats': {} });
    const previous = (await legacy.readMessage()) as { requests: Record<string, { count: number }> };
    expect(previous.requests['get-stats']!.count).toBeGreaterThanOrEqual(1);
    legacy.send({ 'get-stats': null });
    const fresh = (await legacy.readMessage()) as { requests: Record<string, { count: number }>; connections: number };
    // Only the reset-stats itself was counted since the reset.
    expect(fresh.requests).toEqual({ all: expect.objectContaining({ count: 1 }), 'reset-stats': expect.objectContaining({ count: 1 }) });
    expect(fresh.connections).toBeGreaterThanOrEqual(1);
    legacy.close();
  });
});

describe('the JSON-RPC envelope with a slow engine', () => {
  let server: RunningPrServer;
  const release: (() => void)[] = [];
  let started = 0;
  // test-package waits for the test to release it; ping answers at once.
  const engine = {
    readOnly: false,
    testPackage: () =>
      new Promise<boolean>((resolve) => {
        started += 1;
        release.push(() => resolve(true));
      }),
  } as unknown as PrEngine;

  beforeAll(async () => {
    server = await startPrServer({ engine, host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    for (const go of release.splice(0)) go();
    await server?.close();
  });

  it('answers a quick request while a slower one sent before it is still in flight', async () => {
    const raw = await RawSocket.open(server.address.port);
    raw.write(line({ id: 'slow', method: 'test-package', params: { version: 'v', pkgarch: 'a' } }) + line({ id: 'quick', method: 'ping' }));
    expect(JSON.parse(await raw.readLine())).toEqual({ id: 'quick', result: { alive: true }, error: null });
    release.shift()!();
    expect(JSON.parse(await raw.readLine())).toEqual({ id: 'slow', result: { value: true }, error: null });
    raw.close();
  });

  it(`stops reading at ${MAX_REQUESTS_IN_FLIGHT} requests in flight and reads on as they are answered`, async () => {
    started = 0;
    const raw = await RawSocket.open(server.address.port);
    const total = MAX_REQUESTS_IN_FLIGHT * 2;
    raw.write(
      Array.from({ length: total }, (_, id) => line({ id, method: 'test-package', params: { version: 'v', pkgarch: 'a' } })).join(''),
    );
    await expect.poll(() => started).toBe(MAX_REQUESTS_IN_FLIGHT);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(started).toBe(MAX_REQUESTS_IN_FLIGHT);
    for (let answered = 0; answered < total; answered += 1) {
      await expect.poll(() => release.length).toBeGreaterThan(0);
      release.shift()!();
      await raw.readLine();
    }
    expect(started).toBe(total);
    raw.close();
  });
});

describe('the JSON-RPC envelope and a client that does not read', () => {
  let server: RunningPrServer;
  let started = 0;
  // Each export answers about 100 KB: far more than the kernel's socket buffers take.
  const rows = Array.from({ length: 1000 }, (_, index) => ({ version: 'big-1.0', pkgarch: 'core2-64', checksum: index.toString(16).padStart(64, '0'), value: String(index) }));
  const engine = {
    readOnly: false,
    exportRows: async () => {
      started += 1;
      return rows;
    },
  } as unknown as PrEngine;

  beforeAll(async () => {
    server = await startPrServer({ engine, host: '127.0.0.1', port: 0, maxUnreadBytes: 64 * 1024 });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('starts no more requests past the unread bound until the client reads, then answers every one', async () => {
    const socket = connect({ port: server.address.port, host: '127.0.0.1' });
    await once(socket, 'connect');
    let answers = 0;
    socket.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf(10); at >= 0; at = chunk.indexOf(10, at + 1)) answers += 1;
    });
    socket.pause();
    const total = 300;
    socket.write(Array.from({ length: total }, (_, id) => line({ id, method: 'export', params: { version: 'big-1.0', history: true } })).join(''));
    await expect.poll(() => started).toBeGreaterThanOrEqual(MAX_REQUESTS_IN_FLIGHT);
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Those in flight when the bound was passed, and what the kernel's buffers took: not all.
    expect(started).toBeLessThan(MAX_REQUESTS_IN_FLIGHT + 100);
    socket.resume();
    await expect.poll(() => answers, { timeout: 30_000 }).toBe(total);
    expect(started).toBe(total);
    socket.destroy();
  });
});
