import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore } from '@prserv/core';
import { PrClient } from '@prserv/client';
import {
  createPostgresDatabase,
  RawSocket,
  type ServerProcess,
  startServerProcess,
  type TestDatabase,
} from '@prserv/test-support';

/** Resident memory of a process, in bytes (Linux). */
function residentBytes(pid: number): number {
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib) * 1024;
}

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until a log line with message `msg` (and matching `where`) shows up. */
async function logLine(server: ServerProcess, msg: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const entry = server.logs.find((line) => line.msg === msg);
    if (entry) return entry;
    if (Date.now() > deadline) throw new Error(`no "${msg}" log line in ${timeoutMs} ms; logs: ${JSON.stringify(server.logs.slice(-5))}`);
    await sleep(50);
  }
}

describe.skipIf(process.platform !== 'linux')('prserv server under abuse (limits, as a process)', () => {
  let database: TestDatabase;
  let server: ServerProcess;
  const pkg = { version: 'big-1.0', pkgarch: 'core2-64' };

  beforeAll(async () => {
    database = await createPostgresDatabase('connection_limits');
    // Rows that make each export answer ~50 KB, so an unread pipeline fills every buffer quickly.
    const store = await openPrStore({ database: database.url });
    for (let index = 0; index < 400; index += 1) {
      await store.importOne({ ...pkg, checksum: index.toString(16).padStart(64, '0'), value: String(index) });
    }
    await store.close();
    server = await startServerProcess({
      database: database.url,
      args: ['--request-timeout', '2', '--max-unread-bytes', '262144', '--max-clients', '1100'],
    });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('holds 1,000 idle connections in bounded memory and still answers a new client', async () => {
    const before = residentBytes(server.child.pid!);
    const idle = await Promise.all(Array.from({ length: 1000 }, () => RawSocket.greeted(server.port)));
    try {
      // Each connection has sent its hello and a ping, so each session is fully set up.
      for (const raw of idle) raw.send({ ping: {} });
      for (const raw of idle) expect(await raw.readLine()).toBe('{"alive":true}');
      const growth = residentBytes(server.child.pid!) - before;
      // Measured 10–11 MiB (docs/reliability.md); the bound is generous against allocator and GC timing.
      expect(growth).toBeLessThan(100 * MiB);
      const client = new PrClient({ address: server.address });
      try {
        expect(await client.getPr({ version: 'fresh-1.0', pkgarch: 'core2-64', checksum: 'c1' })).toBe('0');
      } finally {
        await client.close();
      }
      // None of them was dropped: idle connections stay by default.
      await sleep(2_500);
      for (const raw of idle.slice(0, 20)) {
        raw.send({ ping: {} });
        expect(await raw.readLine()).toBe('{"alive":true}');
      }
    } finally {
      for (const raw of idle) raw.close();
    }
  }, 60_000);

  it('drops a hello sent one byte per second once the request timeout has passed, and logs it', async () => {
    const raw = await RawSocket.open(server.port);
    const hello = 'PRSERVICE 1.0\n\n';
    const started = Date.now();
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent < hello.length) raw.write(hello[sent++]!);
    }, 1_000);
    try {
      expect(await raw.closedByPeer(10_000)).toBe(true);
    } finally {
      clearInterval(trickle);
      raw.close();
    }
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1_500);
    expect(elapsed).toBeLessThan(6_000);
    expect(sent).toBeLessThan(hello.length);
    expect(await logLine(server, 'no hello in time; connection dropped', 1_000)).toMatchObject({ peer: expect.any(String) });
  }, 20_000);

  it('drops a request that never ends, however steadily its bytes come, and logs it', async () => {
    const raw = await RawSocket.greeted(server.port);
    raw.write('{"get-pr": {"version": "');
    const trickle = setInterval(() => raw.write('x'), 200);
    const started = Date.now();
    try {
      expect(await raw.closedByPeer(10_000)).toBe(true);
    } finally {
      clearInterval(trickle);
      raw.close();
    }
    expect(Date.now() - started).toBeLessThan(6_000);
    const entry = await logLine(server, 'request not received whole in time; connection dropped', 1_000);
    expect(entry.bufferedBytes).toBeGreaterThan(0);
  }, 20_000);

  it('drops a client that pipelines without reading its answers, in bounded memory, and logs it', async () => {
    const before = residentBytes(server.child.pid!);
    const raw = await RawSocket.greeted(server.port);
    raw.pause();
    const request = `${JSON.stringify({ export: { ...pkg, checksum: null, colinfo: false, history: true } })}\n`;
    raw.write(request.repeat(2_000));
    try {
      const entry = await logLine(server, 'client does not read its answers; connection dropped', 15_000);
      // The bound, plus the one answer that crossed it.
      expect(entry.unreadBytes).toBeGreaterThan(262_144);
      expect(entry.unreadBytes).toBeLessThan(262_144 + 100_000);
      expect(residentBytes(server.child.pid!) - before).toBeLessThan(64 * MiB);
    } finally {
      raw.close();
    }
  }, 30_000);
});

describe('prserv server --idle-timeout (as a process)', () => {
  let database: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createPostgresDatabase('idle_timeout');
    server = await startServerProcess({ database: database.url, args: ['--idle-timeout', '0.5'] });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('closes a connection that sends nothing for the idle time, and logs it', async () => {
    const raw = await RawSocket.greeted(server.port);
    raw.send({ ping: {} });
    expect(await raw.readLine()).toBe('{"alive":true}');
    const started = Date.now();
    expect(await raw.closedByPeer(5_000)).toBe(true);
    expect(Date.now() - started).toBeLessThan(3_000);
    raw.close();
    expect(await logLine(server, 'connection idle; closed', 1_000)).toMatchObject({ idleTimeoutMs: 500 });
  });
});
