import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrEngine, type PrStore } from '@prserv/core';
import { RawSocket, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { parseNetworks, type RunningPrServer, startPrServer } from '../../src/daemon/pr-server.js';
import type { ServerLogger } from '../../src/daemon/logger.js';

// Only ping is asked here, which no engine method answers.
const unusedEngine = new Proxy({ readOnly: false } as PrEngine, {
  get: (target, name) => (name in target ? target[name as keyof PrEngine] : () => Promise.reject(new Error(`engine.${String(name)} called`))),
});

const servers: RunningPrServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

function recordingLogger(): ServerLogger & { warnings: { fields: object; message: string }[] } {
  const warnings: { fields: object; message: string }[] = [];
  return { debug() {}, info() {}, error() {}, warn: (fields, message) => warnings.push({ fields, message }), warnings };
}

async function serve(options: { host?: string; maxClients?: number; allow?: string[] }, logger = recordingLogger()) {
  const server = await startPrServer({ engine: unusedEngine, host: options.host ?? '127.0.0.1', port: 0, logger, ...options });
  servers.push(server);
  return { server, logger };
}

/** Connects (from `localAddress` if given) and pings; resolves with the answer, or 'closed' if dropped unanswered. */
function ping(port: number, options: { host?: string; localAddress?: string; keepOpen?: boolean } = {}): Promise<{ answer: string; close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
    let received = '';
    const close = () => socket.destroy();
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('PRSERVICE 1.0\n\n{"ping": {}}\n'));
    socket.on('data', (text: string) => {
      received += text;
      if (received.endsWith('\n')) {
        if (!options.keepOpen) close();
        resolve({ answer: received.trim(), close });
      }
    });
    socket.on('close', () => resolve({ answer: received === '' ? 'closed' : received.trim(), close }));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve({ answer: 'closed', close }) : reject(error)));
  });
}

describe('--max-clients', () => {
  it('closes connections beyond the bound at accept, logs them, and accepts again once one leaves', async () => {
    const { server, logger } = await serve({ maxClients: 2 });
    const first = await ping(server.address.port, { keepOpen: true });
    const second = await ping(server.address.port, { keepOpen: true });
    expect([first.answer, second.answer]).toEqual(['{"alive":true}', '{"alive":true}']);
    expect((await ping(server.address.port)).answer).toBe('closed');
    expect(logger.warnings).toEqual([
      { message: 'connection refused: --max-clients reached', fields: expect.objectContaining({ clients: 2, maxClients: 2 }) },
    ]);
    first.close();
    await expect.poll(() => server.connections).toBe(1);
    expect((await ping(server.address.port)).answer).toBe('{"alive":true}');
    second.close();
  });
});

describe('--allow', () => {
  it('serves IPv4 peers inside the networks and closes the others at accept, with a log line', async () => {
    const { server, logger } = await serve({ allow: ['127.0.0.2/32', '10.0.0.0/8'] });
    expect((await ping(server.address.port, { localAddress: '127.0.0.2' })).answer).toBe('{"alive":true}');
    expect((await ping(server.address.port, { localAddress: '127.0.0.3' })).answer).toBe('closed');
    expect(logger.warnings).toEqual([
      { message: 'connection from outside --allow closed', fields: { peer: expect.objectContaining({ address: '127.0.0.3' }) } },
    ]);
  });

  it('matches IPv4 peers of a dual-stack listener, and IPv6 peers', async () => {
    const { server } = await serve({ host: '::', allow: ['127.0.0.0/30', '::1/128'] });
    const { port } = server.address;
    expect((await ping(port, { localAddress: '127.0.0.2' })).answer).toBe('{"alive":true}');
    expect((await ping(port, { localAddress: '127.0.0.9' })).answer).toBe('closed');
    expect((await ping(port, { host: '::1' })).answer).toBe('{"alive":true}');
  });

  it('closes IPv6 peers outside the networks', async () => {
    const { server } = await serve({ host: '::1', allow: ['fd00::/8'] });
    expect((await ping(server.address.port, { host: '::1' })).answer).toBe('closed');
  });
});

describe.each(STORE_KINDS)('--allow-write on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let port: number;
  const pkg = { version: `allow-write-${kind}`, pkgarch: 'core2-64' };

  beforeAll(async () => {
    database = await create(`allow_write_${kind}`);
    store = await openPrStore({ database: database.url });
    const server = await startPrServer({ engine: store, host: '::', port: 0, allowWrite: ['127.0.0.2', '::1/128'] });
    servers.push(server);
    port = server.address.port;
  });
  afterAll(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
    await store?.close();
    await database?.drop();
  });

  /** One conversation of `requests`, from `from`; resolves with the answer lines. */
  async function ask(from: { localAddress?: string; host?: string }, requests: object[]): Promise<unknown[]> {
    const raw = await RawSocket.open(port, from.host ?? '127.0.0.1', from.localAddress);
    raw.write(`PRSERVICE 1.0\n\n${requests.map((request) => `${JSON.stringify(request)}\n`).join('')}`);
    const answers: unknown[] = [];
    for (const _ of requests) answers.push(JSON.parse(await raw.readLine()));
    raw.close();
    return answers;
  }
  const getPr = (checksum: string) => ({ 'get-pr': { ...pkg, checksum, history: false } });

  it('stores what writers ask, and answers others as a read-only server without storing', async () => {
    // A reader first: it is told what a writer would get, and nothing is stored.
    expect(await ask({ localAddress: '127.0.0.3' }, [{ 'is-readonly': {} }, getPr('c0'), getPr('c0')])).toEqual([
      { readonly: true },
      { value: '0' },
      { value: '0' },
    ]);
    expect(await store.testPr({ ...pkg, checksum: 'c0' })).toBeNull();
    expect(await ask({ localAddress: '127.0.0.3' }, [{ 'import-one': { ...pkg, checksum: 'c9', value: '9' } }])).toEqual([null]);
    expect(await store.maxPackagePr(pkg)).toBeNull();

    // Writers, over IPv4 and IPv6, store.
    expect(await ask({ localAddress: '127.0.0.2' }, [{ 'is-readonly': {} }, getPr('c0'), getPr('c1')])).toEqual([
      { readonly: false },
      { value: '0' },
      { value: '1' },
    ]);
    expect(await ask({ host: '::1' }, [getPr('c2')])).toEqual([{ value: '2' }]);
    expect(await store.maxPackagePr(pkg)).toBe('2');

    // A reader sees what the writers stored, and still stores nothing new.
    const testPr = { 'test-pr': { ...pkg, checksum: 'c1', history: false } };
    expect(await ask({ localAddress: '127.0.0.3' }, [testPr, getPr('c3')])).toEqual([{ value: '1' }, { value: '3' }]);
    expect(await store.testPr({ ...pkg, checksum: 'c3' })).toBeNull();
  });
});

describe('parseNetworks', () => {
  it.each(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1', '0.0.0.0/0', '::/0'])('takes %s', (network) => {
    expect(() => parseNetworks([network])).not.toThrow();
  });

  it.each(['10.0.0.0/33', '2001:db8::/129', 'example.com', '10.0.0/8', '10.0.0.0/8/1', '10.0.0.0/x', ''])('refuses %j, naming it', (network) => {
    expect(() => parseNetworks([network])).toThrow(new RegExp(`^${JSON.stringify(network).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is not a network`));
  });
});
