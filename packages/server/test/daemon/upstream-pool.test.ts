import { connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PrClientError } from '@prserv/client';
import { createPostgresDatabase, type InProcessServer, startInProcessServer, type TestDatabase, unusedPort } from '@prserv/test-support';
import type { ServerLogger } from '../../src/daemon/logger.js';
import { createUpstreamPool } from '../../src/daemon/upstream-pool.js';

interface LogLine {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly fields: Record<string, unknown>;
  readonly message: string;
}

/** A logger that keeps every line it is given. */
function recordingLogger(): ServerLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  const record = (level: LogLine['level']) => (fields: object, message: string) => {
    lines.push({ level, fields: fields as Record<string, unknown>, message });
  };
  return { lines, debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') };
}

const quietLogger = recordingLogger();

interface CountingRelay {
  /** `127.0.0.1:PORT` of the relay. */
  readonly address: string;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections still open. */
  readonly open: number;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of the upstream: each connection it accepts gets its own connection to the
 * upstream, so its counts are those of the connections the upstream serves.
 */
async function countingRelay(upstreamPort: number): Promise<CountingRelay> {
  const open = new Set<Socket>();
  let accepted = 0;
  const server = createServer((downstream) => {
    accepted += 1;
    open.add(downstream);
    const upstream = connect({ host: '127.0.0.1', port: upstreamPort });
    const drop = () => {
      open.delete(downstream);
      downstream.destroy();
      upstream.destroy();
    };
    for (const socket of [downstream, upstream]) {
      socket.on('error', () => {});
      socket.on('close', drop);
    }
    downstream.pipe(upstream);
    upstream.pipe(downstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return open.size;
    },
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}


describe('createUpstreamPool against a prserv upstream', () => {
  let database: TestDatabase;
  let upstream: InProcessServer;
  const pkg = { version: '1.0-r0', pkgarch: 'upstream-pool' };
  const dotted = { version: '2.0-r0', pkgarch: 'upstream-pool' };

  beforeAll(async () => {
    database = await createPostgresDatabase('upstream_pool');
    upstream = await startInProcessServer(database.url);
    // c0 → 0, c1 → 1, then c0 again: it is below the maximum, so it moves to 2 (no-history).
    for (const [checksum, expected] of [['c0', '0'], ['c1', '1'], ['c0', '2']] as const) {
      expect(await upstream.store.getPr({ ...pkg, checksum, history: false })).toBe(expected);
    }
    // In revision order 1.10 is greater than 1.9, though not as a string.
    await upstream.store.importOne({ ...dotted, checksum: 'd0', value: '1.10' });
    await upstream.store.importOne({ ...dotted, checksum: 'd1', value: '1.9' });
  });

  afterAll(async () => {
    await upstream?.close();
    await database?.drop();
  });

  it('answers maxPackagePr with the greatest revision the upstream holds, or null for a package it does not know', async () => {
    const pool = createUpstreamPool({ address: upstream.address, logger: quietLogger });
    expect(await pool.maxPackagePr(pkg)).toBe('2');
    expect(await pool.maxPackagePr(dotted)).toBe('1.10');
    expect(await pool.maxPackagePr({ version: '1.0-r0', pkgarch: 'nowhere' })).toBeNull();
    await pool.close();
  });

  it('asks testPr in no-history mode: a checksum that came back after a newer one answers its latest value', async () => {
    // The upstream holds 0 and 2 for c0: history mode would answer its first, 0.
    expect(await upstream.store.testPr({ ...pkg, checksum: 'c0', history: true })).toBe('0');
    const pool = createUpstreamPool({ address: upstream.address, logger: quietLogger });
    expect(await pool.testPr({ ...pkg, checksum: 'c0' })).toBe('2');
    expect(await pool.testPr({ ...pkg, checksum: 'c1' })).toBe('1');
    expect(await pool.testPr({ ...dotted, checksum: 'd1' })).toBe('1.9');
    expect(await pool.testPr({ ...pkg, checksum: 'unknown' })).toBeNull();
    await pool.close();
  });

  it('spreads concurrent calls over its connections: twenty at once on a pool of 2 use both, and no more', async () => {
    const relay = await countingRelay(upstream.port);
    const pool = createUpstreamPool({ address: relay.address, size: 2, logger: quietLogger });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, index) =>
        index % 2 === 0 ? pool.maxPackagePr(pkg) : pool.testPr({ ...pkg, checksum: index % 4 === 1 ? 'c0' : 'c1' }),
      ),
    );
    expect(answers).toEqual(Array.from({ length: 20 }, (_, index) => (index % 2 === 0 ? '2' : index % 4 === 1 ? '2' : '1')));
    expect(relay.accepted).toBe(2);
    await pool.close();
    await relay.close();
  });

  it('ends its connections on close() and refuses calls afterwards', async () => {
    const relay = await countingRelay(upstream.port);
    const pool = createUpstreamPool({ address: relay.address, size: 2, logger: quietLogger });
    await Promise.all([pool.maxPackagePr(pkg), pool.maxPackagePr(pkg)]);
    expect(relay.open).toBe(2);
    await pool.close();
    await vi.waitFor(() => expect(relay.open).toBe(0));
    await expect(pool.maxPackagePr(pkg)).rejects.toMatchObject({ name: 'PrClientError', code: 'CLOSED' });
    expect(relay.accepted).toBe(2);
    await relay.close();
  });

  it('fails fast with an error naming the upstream while it is down, and recovers once it listens again', async () => {
    // Timeouts far longer than the test allows: only a refusal can end the call in time.
    const pool = createUpstreamPool({ address: upstream.address, connectTimeoutMs: 30_000, requestTimeoutMs: 30_000, logger: quietLogger });
    expect(await pool.maxPackagePr(pkg)).toBe('2');
    await upstream.stopListening();
    try {
      const started = Date.now();
      const error = await pool.testPr({ ...pkg, checksum: 'c0' }).catch((caught: unknown) => caught);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(error).toBeInstanceOf(PrClientError);
      expect(error).toMatchObject({ code: 'CONNECT_FAILED' });
      expect((error as Error).message).toContain(upstream.address);
    } finally {
      await upstream.listenAgain();
    }
    expect(await pool.testPr({ ...pkg, checksum: 'c0' })).toBe('2');
    await pool.close();
  });

  it('logs each call at debug with the method, the upstream name, the package and the result', async () => {
    const logger = recordingLogger();
    const pool = createUpstreamPool({ address: upstream.address, logger });
    await pool.maxPackagePr(pkg);
    await pool.testPr({ ...pkg, checksum: 'c1' });
    await pool.close();
    expect(logger.lines.map(({ level, message }) => [level, message])).toEqual([
      ['debug', 'upstream call'],
      ['debug', 'upstream call'],
    ]);
    expect(logger.lines[0]!.fields).toMatchObject({ upstream: upstream.address, method: 'max-package-pr', ...pkg, result: '2' });
    expect(logger.lines[1]!.fields).toMatchObject({ upstream: upstream.address, method: 'test-pr', ...pkg, result: '1' });
    expect(logger.lines[1]!.fields.ms).toEqual(expect.any(Number));
  });

  it('logs a failed call at warn with the method, the upstream name and the error', async () => {
    const logger = recordingLogger();
    const address = `127.0.0.1:${await unusedPort()}`;
    const pool = createUpstreamPool({ address, logger });
    await expect(pool.testPr({ ...pkg, checksum: 'c0' })).rejects.toMatchObject({ code: 'CONNECT_FAILED' });
    await pool.close();
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({
      level: 'warn',
      message: 'upstream call failed',
      fields: { upstream: address, method: 'test-pr', ...pkg, err: expect.stringContaining(`cannot connect to PR server ${address}`) },
    });
  });

  it('is named after its upstream as host:port, [v6]:port for IPv6, and refuses an address that is neither', async () => {
    const pool = createUpstreamPool({ address: upstream.address, logger: quietLogger });
    expect(pool.name).toBe(upstream.address);
    await pool.close();
    const v6 = createUpstreamPool({ address: '[::1]:8585', logger: quietLogger });
    expect(v6.name).toBe('[::1]:8585');
    await v6.close();
    expect(() => createUpstreamPool({ address: 'prserv.example', logger: quietLogger })).toThrow(
      expect.objectContaining({ code: 'INVALID_ADDRESS' }),
    );
  });
});
