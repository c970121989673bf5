import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrEngine, type PrStore } from '@prserv/core';
import { type RunningPrServer, startPrServer } from '@prserv/server';
import { createPostgresDatabase, type TestDatabase } from '@prserv/test-support';
import { RawSocket } from '@prserv/test-support';

describe('prserv server limits', () => {
  let database: TestDatabase;
  let store: PrStore;
  let server: RunningPrServer;
  let exports = 0;
  const pkg = { version: 'big-1.0', pkgarch: 'core2-64' };

  beforeAll(async () => {
    database = await createPostgresDatabase('limits');
    store = await openPrStore({ database: database.url });
    for (let index = 0; index < 400; index += 1) {
      await store.importOne({ ...pkg, checksum: index.toString(16).padStart(64, '0'), value: String(index) });
    }
    // The real engine, counting the exports it serves.
    const engine: PrEngine = Object.create(store, {
      exportRows: {
        value: (query: Parameters<PrEngine['exportRows']>[0]) => {
          exports += 1;
          return store.exportRows(query);
        },
      },
    });
    server = await startPrServer({ engine, host: '127.0.0.1', port: 0, handshakeTimeoutMs: 300 });
  });

  afterAll(async () => {
    await server?.close();
    await store?.close();
    await database?.drop();
  });

  it('stops reading a client that pipelines without reading its answers, and serves it all later', async () => {
    const raw = await RawSocket.open(server.address.port);
    const total = 1000;
    const request = `${JSON.stringify({ export: { ...pkg, checksum: null, colinfo: false, history: true } })}\n`;
    raw.pause();
    raw.write(`PRSERVICE 1.0\n\n${request.repeat(total)}`);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Each answer is ~50 KB: the socket buffers hold a few dozen, and the server waits for the reader.
    expect(exports).toBeLessThan(250);
    raw.resume();
    for (let index = 0; index < total; index += 1) {
      const response = (await raw.readMessage(30_000)) as { datainfo: unknown[] };
      expect(response.datainfo).toHaveLength(400);
    }
    expect(exports).toBe(total);
    raw.close();
  });

  it('answers every request of a client that shuts down its sending side after pipelining, then closes', async () => {
    const socket = connect({ host: '127.0.0.1', port: server.address.port });
    await new Promise((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.setEncoding('utf8').on('data', (text: string) => (received += text));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const getPr = (checksum: string) => `${JSON.stringify({ 'get-pr': { version: 'half-1.0', pkgarch: 'core2-64', checksum, history: false } })}\n`;
    socket.end(`PRSERVICE 1.0\n\n{"ping": {}}\n${getPr('c1')}${getPr('c2')}`);
    await closed;
    expect(received).toBe('{"alive":true}\n{"value":"0"}\n{"value":"1"}\n');
  });

  it('drops a connection that never sends its hello', async () => {
    const raw = await RawSocket.open(server.address.port);
    expect(await raw.closedByPeer(5_000)).toBe(true);
    raw.close();
  });
});

describe('startPrServer timer options', () => {
  // Node fires a longer timer after 1 ms: such a server would drop every connection at once.
  it.each([
    ['requestTimeoutMs', { requestTimeoutMs: 2_147_483_648 }, 'requestTimeoutMs must be at most 2147483647 ms'],
    ['handshakeTimeoutMs', { handshakeTimeoutMs: 3e9 }, 'handshakeTimeoutMs must be at most 2147483647 ms'],
    ['idleTimeoutMs', { idleTimeoutMs: 2.2e9 }, 'idleTimeoutMs must be at most 2147483647 ms'],
    ['a negative idleTimeoutMs', { idleTimeoutMs: -1 }, 'idleTimeoutMs must be 0 or more, got -1'],
    ['a zero requestTimeoutMs', { requestTimeoutMs: 0 }, 'requestTimeoutMs must be more than 0, got 0'],
  ])('refuses %s before listening', async (_name, timers, message) => {
    const engine = {} as PrEngine;
    await expect(startPrServer({ engine, host: '127.0.0.1', port: 0, ...timers })).rejects.toThrow(message);
  });
});
