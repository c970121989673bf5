import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrClient } from '@prserv/client';
import { CLI_PATH, createPostgresDatabase, STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { PRSERV_ADVISORY_LOCK_KEY } from '../packages/core/src/engine/schema.js';
import { type ServerProcess, startServerProcess } from '@prserv/test-support';
import { RawSocket } from '@prserv/test-support';

describe.each(STORE_KINDS)('prserv server lifecycle on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let server: ServerProcess | undefined;
  const pkg = { version: `2.0-r0-${randomUUID().slice(0, 8)}`, pkgarch: 'armv8a' };
  const pipelined = 200;

  beforeAll(async () => {
    database = await create(`lifecycle_${kind}`);
  });

  afterAll(async () => {
    await server?.stop('SIGKILL');
    await database?.drop();
  });

  it('answers every request in flight on SIGTERM, then exits 0', async () => {
    server = await startServerProcess({ database: database.url });
    const raw = await RawSocket.greeted(server.port);
    let requests = '';
    for (let index = 0; index < pipelined; index += 1) {
      requests += `${JSON.stringify({ 'get-pr': { ...pkg, checksum: `c${index}`, history: false } })}\n`;
    }
    raw.write(requests);
    // The first answer proves the server is working through the batch; stop it right then.
    const first = await raw.readMessage();
    const exitCode = server.stop('SIGTERM');
    const answers = [first];
    for (let index = 1; index < pipelined; index += 1) answers.push(await raw.readMessage());
    expect(answers).toEqual(Array.from({ length: pipelined }, (_, index) => ({ value: String(index) })));
    expect(await raw.closedByPeer()).toBe(true);
    expect(await exitCode).toBe(0);
    // In order, and the last line not lost to the exit that follows it.
    const messages = server.logs.map((entry) => entry.msg);
    expect(messages.slice(messages.indexOf('shutting down'))).toEqual(['shutting down', 'stopped']);
    raw.close();
    server = undefined;
  });

  it('gives the same answers after a restart', async () => {
    server = await startServerProcess({ database: database.url });
    const client = createPrClient({ address: server.address });
    expect(await client.maxPackagePr(pkg)).toBe(String(pipelined - 1));
    expect(await client.getPr({ ...pkg, checksum: 'c7' })).toBe(String(pipelined));
    expect(await client.getPr({ ...pkg, checksum: 'c7', history: true })).toBe('7');
    expect(await client.getPr({ ...pkg, checksum: 'c7' })).toBe(String(pipelined));
    await client.close();
    expect(await server.stop('SIGINT')).toBe(0);
    server = undefined;
  });

  it('computes answers without storing them when read-only', async () => {
    server = await startServerProcess({ database: database.url, args: ['--read-only'] });
    const client = createPrClient({ address: server.address });
    expect(await client.isReadonly()).toBe(true);
    // A new checksum gets the value a writer would give, and nothing is kept.
    expect(await client.getPr({ ...pkg, checksum: 'new' })).toBe(String(pipelined + 1));
    expect(await client.getPr({ ...pkg, checksum: 'new' })).toBe(String(pipelined + 1));
    expect(await client.testPr({ ...pkg, checksum: 'new' })).toBeNull();
    expect(await client.importOne({ ...pkg, checksum: 'imported', value: '999' })).toBeNull();
    expect(await client.maxPackagePr(pkg)).toBe(String(pipelined));
    const fresh = { version: 'never-seen', pkgarch: 'x' };
    expect(await client.getPr({ ...fresh, checksum: 'a' })).toBe('0');
    expect(await client.testPackage(fresh)).toBe(false);
    // Known checksums answer as before.
    expect(await client.getPr({ ...pkg, checksum: 'c7', history: true })).toBe('7');
    await client.close();
    expect(await server.stop()).toBe(0);
    server = undefined;
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('prserv server stopped while starting', () => {
  it('stops at once with exit code 0 on SIGTERM while it waits for another replica’s migration', async () => {
    const database = await createPostgresDatabase('lifecycle_starting');
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [PRSERV_ADVISORY_LOCK_KEY]);
      const child = spawn(process.execPath, [CLI_PATH, 'server', '--database', database.url, '--bind', '127.0.0.1:0', '--log-format', 'json'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      // Blocked on the migration lock: no "prserv listening" comes.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(stdout).not.toContain('prserv listening');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('signal while starting: stopped before serving');
    } finally {
      await other.end();
      await database.drop();
    }
  });
});
