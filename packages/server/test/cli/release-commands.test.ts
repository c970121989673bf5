import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { runInProcess } from './run-in-process.js';
import { startPrServer } from '../../src/daemon/pr-server.js';

// history, freeze, thaw and client preflight in process, on both stores. The embedded store is
// one process's: the commands run while no server holds it.

const run = runInProcess;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prserv-release-commands-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('release-control commands: usage', () => {
  it.each(['history', 'freeze', 'thaw'])('prserv %s --help describes the command', async (command) => {
    const result = await run([command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Usage: prserv ${command} `));
    expect(result.stdout).toContain('--database');
  });

  it('lists preflight and history in prserv client --help and the commands in prserv --help', async () => {
    const client = await run(['client', '--help']);
    expect(client.stdout).toMatch(/^\s+preflight FILE/m);
    expect(client.stdout).toMatch(/^\s+history VERSION PKGARCH \[CHECKSUM\]/m);
    expect((await run(['--help'])).stdout).toContain('prserv history|freeze|thaw');
  });

  it('refuses wrong arguments with exit code 2', async () => {
    expect((await run(['history', 'only-version'])).code).toBe(2);
    expect((await run(['freeze'])).code).toBe(2);
    expect((await run(['freeze', 'a', 'b'])).code).toBe(2);
    expect((await run(['freeze', '--list', 'a'])).code).toBe(2);
    expect((await run(['thaw', '--bogus', 'a'])).stderr).toContain("unknown option --bogus (see 'prserv thaw --help')");
    expect((await run(['client', 'preflight'])).code).toBe(2);
  });
});

describe.each(STORE_KINDS)('release-control commands on $kind', ({ kind, create }) => {
  let database: TestDatabase;

  beforeAll(async () => {
    database = await create(`release_cli_${kind}`);
    // The store as a server's first start leaves it: these commands create none.
    await (await openPrStore({ database: database.url })).close();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('freezes, lists, previews, tells a package’s history and thaws', async () => {
    const env = { PRSERV_DATABASE: database.url };
    const frozen = await run(['freeze', 'held-*', '--reason', 'release 5.0'], env);
    expect(frozen).toMatchObject({ code: 0, stdout: 'frozen: version "held-*", pkgarch "*"\n' });
    expect((await run(['freeze', 'held-*'], env)).stdout).toBe('already frozen: version "held-*", pkgarch "*"\n');
    expect((await run(['freeze', 'empty-*', '--pkgarch', 'core2-*', '--database', database.url])).code).toBe(0);
    const listed = await run(['freeze', '--list', '--json'], env);
    expect(listed.stdout.trim().split('\n').map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ version: 'held-*', pkgarch: '*', reason: 'release 5.0', frozenBy: expect.stringContaining('@') }),
      expect.objectContaining({ version: 'empty-*', pkgarch: 'core2-*', reason: null }),
    ]);
    expect((await run(['freeze', '--list'], env)).stdout).toMatch(/^VERSION\tPKGARCH\tFROZEN_AT\tBY\tREASON\nheld-\*\t\*\t/);

    // Some history made through a server; then the preflight of a build.
    const store = await openPrStore({ database: database.url });
    const server = await startPrServer({ engine: store, host: '127.0.0.1', port: 0 });
    const address = `127.0.0.1:${server.address.port}`;
    try {
      await store.thaw({ version: 'held-*' });
      await store.getPr({ version: 'held-1.0', pkgarch: 'core2-64', checksum: 'h0' });
      await store.freeze({ version: 'held-*' });
      for (const checksum of ['a', 'b', 'a']) {
        expect((await run(['client', '--server', address, 'get-pr', 'busybox-1.36', 'core2-64', checksum])).code).toBe(0);
      }
      const list = join(dir, `${kind}-tuples.txt`);
      await writeFile(
        list,
        [
          '# a build’s outputs',
          'busybox-1.36 core2-64 a',
          '',
          '{"version": "busybox-1.36", "pkgarch": "core2-64", "checksum": "new"}',
          'held-1.0 core2-64 h1',
          'empty-2.0 core2-64 e0',
        ].join('\n'),
      );
      const preflight = await run(['client', '--server', address, 'preflight', list]);
      expect(preflight.stdout).toBe(
        [
          'preflight: 4 tuples: 1 would get a new PR, 1 stay, 1 frozen, 1 refused',
          'bump\tbusybox-1.36 core2-64 new\t2 -> 3',
          'frozen\theld-1.0 core2-64 h1\t0\tfrozen by "held-*" (pkgarch "*")',
          'refused\tempty-2.0 core2-64 e0\tno PR yet\tfrozen by "empty-*" (pkgarch "core2-*")',
          '',
        ].join('\n'),
      );
      expect(preflight.code).toBe(3);
      const steady = join(dir, `${kind}-steady.txt`);
      await writeFile(steady, 'busybox-1.36 core2-64 a\n');
      const quiet = await run(['client', '--server', address, '--json', 'preflight', steady]);
      expect(quiet.code).toBe(0);
      expect(JSON.parse(quiet.stdout).counts).toEqual({ bump: 0, stay: 1, frozen: 0, refused: 0 });
      const wire = await run(['client', '--server', address, '--json', 'history', 'busybox-1.36', 'core2-64', 'a']);
      expect(JSON.parse(wire.stdout).revisions.map((row: { value: string; storedBy: string }) => [row.value, row.storedBy])).toEqual([
        ['0', '127.0.0.1'],
        ['2', '127.0.0.1'],
      ]);
      expect((await run(['client', '--server', address, 'preflight', join(dir, 'missing.txt')])).code).toBe(2);
    } finally {
      await server.close();
      await store.close();
    }

    const history = await run(['history', 'busybox-1.36', 'core2-64'], env);
    expect(history.code).toBe(0);
    const lines = history.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('busybox-1.36 core2-64: 3 rows, greatest PR 2');
    expect(lines[1]).toBe('PR\tCHECKSUM\tSTORED_AT\tHOW\tFROM\tPREVIOUS_MAX\tNOTE');
    expect(lines.slice(2).map((line) => line.split('\t')).map(([pr, sum, , how, from, previous, note]) => [pr, sum, how, from, previous, note])).toEqual([
      ['0', 'a', 'get-pr-nohist', '127.0.0.1', '-', 'first PR of the package'],
      ['1', 'b', 'get-pr-nohist', '127.0.0.1', '0', 'new checksum'],
      ['2', 'a', 'get-pr-nohist', '127.0.0.1', '1', 'checksum returned (it had 0); PRs never go down'],
    ]);
    // One checksum's rows: the header gives that checksum's greatest PR, and says so.
    const ofA = (await run(['history', 'busybox-1.36', 'core2-64', 'a'], env)).stdout.split('\n');
    expect(ofA[0]).toBe('busybox-1.36 core2-64 a: 2 rows, greatest PR of this checksum 2');
    expect((await run(['history', 'busybox-1.36', 'core2-64', 'nothing'], env)).stdout).toBe(
      'busybox-1.36 core2-64 nothing: no PRs stored for this checksum\n',
    );
    expect(JSON.parse((await run(['history', 'busybox-1.36', 'core2-64', 'b', '--json'], env)).stdout)).toEqual({
      version: 'busybox-1.36',
      pkgarch: 'core2-64',
      revisions: [expect.objectContaining({ checksum: 'b', value: '1', storedHow: 'get-pr-nohist', previousMax: '0' })],
    });

    // `--` ends the options, so a pattern may start with '-'.
    expect((await run(['freeze', '--', '-rc*'], env)).stdout).toBe('frozen: version "-rc*", pkgarch "*"\n');
    expect((await run(['thaw', '--', '-rc*'], env)).stdout).toBe('thawed: version "-rc*", pkgarch "*"\n');

    expect((await run(['thaw', 'held-*'], env)).stdout).toBe('thawed: version "held-*", pkgarch "*"\n');
    const again = await run(['thaw', 'held-*'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('no freeze with version "held-*"');
    expect((await run(['thaw', 'empty-*', '--pkgarch', 'core2-*'], env)).code).toBe(0);
    expect((await run(['freeze', '--list'], env)).stdout).toBe('no frozen packages\n');
  });
});
