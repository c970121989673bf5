import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { startPrServer } from '../../src/daemon/pr-server.js';
import { runInProcess } from './run-in-process.js';

// `prserv client` in process. Usage mistakes are refused before anything is sent: the server
// address is port 1, where nothing listens, so a request sent would exit 1, not 2.
const NOWHERE = '127.0.0.1:1';
const run = (args: string[]) => runInProcess(['client', '--server', NOWHERE, ...args]);

describe('prserv client: usage', () => {
  it.each([
    [['history'], "history takes VERSION PKGARCH [CHECKSUM], got 0 arguments (see 'prserv client --help')"],
    [['history', 'v'], "history takes VERSION PKGARCH [CHECKSUM], got 1 argument (see 'prserv client --help')"],
    [['history', 'v', 'a', 'c', 'extra'], "history takes VERSION PKGARCH [CHECKSUM], got 4 arguments (see 'prserv client --help')"],
    [['get-pr', 'v', 'a'], "get-pr takes VERSION PKGARCH CHECKSUM, got 2 arguments (see 'prserv client --help')"],
    [['ping', 'extra'], "ping takes no arguments, got 1 argument (see 'prserv client --help')"],
  ])('refuses %j naming the operands: %s', async (args, message) => {
    expect(await run(args)).toEqual({ code: 2, stdout: '', stderr: `prserv: ${message}\n` });
  });

  it.each([['99999999999'], ['2147483648']])('refuses --timeout %s, past the longest Node timer, naming the largest accepted', async (timeout) => {
    expect(await run(['--timeout', timeout, 'ping'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `prserv: invalid --timeout "${timeout}": at most 2147483647 ms (the longest timer Node keeps, about 24.8 days)\n`,
    });
  });

  it('says how to give a value that starts with "-", which then meets the usual checks', async () => {
    expect(await run(['--timeout', '-5', 'ping'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `prserv: option --timeout: its value "-5" starts with "-"; write --timeout=-5 if you mean it (see 'prserv client --help')\n`,
    });
    expect(await run(['--timeout=-5', 'ping'])).toEqual({ code: 2, stdout: '', stderr: 'prserv: invalid --timeout "-5": expected milliseconds\n' });
  });

  it('refuses an empty value as empty', async () => {
    expect(await run(['export', '--pkgarch', ''])).toEqual({
      code: 2,
      stdout: '',
      stderr: "prserv: option --pkgarch: its value is empty (see 'prserv client --help')\n",
    });
  });

  it('sends operands after -- as they are, dashes and all', async () => {
    // Accepted as operands: the request is sent, and fails to connect (exit 1).
    const result = await run(['--timeout', '200', 'get-pr', '--', '-1.0', 'core2-64', 'c']);
    expect(result.code).toBe(1);
    expect(result.stderr).not.toContain('option');
  });
});

describe.each(STORE_KINDS)('prserv client history on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;
  let server: Awaited<ReturnType<typeof startPrServer>>;
  let address: string;

  beforeAll(async () => {
    database = await create(`client_command_${kind}`);
    store = await openPrStore({ database: database.url });
    server = await startPrServer({ engine: store, host: '127.0.0.1', port: 0 });
    address = `127.0.0.1:${server.address.port}`;
    // a: 0, b: 1, c: 2, then a returns: 3. a's greatest is 3, the package's 3; b's is 1.
    for (const checksum of ['a', 'b', 'c', 'a']) await store.getPr({ version: 'hist-1.0', pkgarch: 'core2-64', checksum });
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
    await database?.drop();
  });

  const history = (...operands: string[]) => runInProcess(['client', '--server', address, 'history', ...operands]);

  it("heads the package's rows with the package's greatest PR", async () => {
    const result = await history('hist-1.0', 'core2-64');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('hist-1.0 core2-64: 4 rows, greatest PR 3');
  });

  it("heads one checksum's rows with that checksum's greatest PR, saying so", async () => {
    const result = await history('hist-1.0', 'core2-64', 'b');
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('hist-1.0 core2-64 b: 1 row, greatest PR of this checksum 1');
    expect(lines[1]).toBe('PR\tCHECKSUM\tSTORED_AT\tHOW\tFROM\tPREVIOUS_MAX\tNOTE');
    expect(lines.slice(2).map((line) => line.split('\t').slice(0, 2))).toEqual([['1', 'b']]);
  });

  it('says when a checksum has no rows', async () => {
    expect((await history('hist-1.0', 'core2-64', 'unknown')).stdout).toBe('hist-1.0 core2-64 unknown: no PRs stored for this checksum\n');
  });
});
