import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type CliResult, runCliProcess, type ServerProcess, startServerProcess, unusedPort } from '@prserv/test-support';
import { createEmbeddedFolder, createPostgresDatabase, type TestDatabase } from '@prserv/test-support';

// End to end through the built CLI (`pnpm build` first). Most servers run on one PostgreSQL
// database (fast to start); only the lock and restart tests use an embedded PGlite folder,
// whose first opening costs seconds and most of a gigabyte. Suites whose tests share no server
// state (or use distinct packages of one server) run their tests concurrently: each CLI run costs
// a Node start-up.

let db: TestDatabase;
let workDir: string;
/** Servers started by single tests; stopped after each test. */
const started: ServerProcess[] = [];

beforeAll(async () => {
  db = await createPostgresDatabase('cli');
  workDir = await mkdtemp(join(tmpdir(), 'prserv-cli-test-'));
});

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.stop()));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
  await db?.drop();
});

async function startServer(options: { args?: string[]; env?: Record<string, string> } = {}): Promise<ServerProcess> {
  const server = await startServerProcess({ database: db.url, ...options });
  started.push(server);
  return server;
}

function client(server: ServerProcess | string, ...args: string[]): Promise<CliResult> {
  const address = typeof server === 'string' ? server : server.address;
  return runCliProcess(['client', '--server', address, ...args]);
}

/** Runs a client command that must succeed and returns its stdout without the final newline. */
async function ask(server: ServerProcess | string, ...args: string[]): Promise<string> {
  const result = await client(server, ...args);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout.endsWith('\n')).toBe(true);
  return result.stdout.slice(0, -1);
}

/** Runs a client command with --json that must succeed and returns the parsed output. */
async function askJson(server: ServerProcess | string, ...args: string[]): Promise<unknown> {
  return JSON.parse(await ask(server, '--json', ...args));
}

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(workDir, name);
  await writeFile(path, text);
  return path;
}

function startupLine(server: ServerProcess): Record<string, unknown> {
  const line = server.logs.find((entry) => entry.msg === 'prserv listening');
  expect(line).toBeDefined();
  return line!;
}

async function waitFor(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

type Row = { version: string; pkgarch: string; checksum: string; value: string };

/** Export rows in a fixed order (the server's order does not matter). */
function sortRows(rows: Row[]): Row[] {
  const key = (row: Row) => [row.version, row.pkgarch, row.checksum, row.value].join('\t');
  return [...rows].sort((a, b) => key(a).localeCompare(key(b)));
}

/** The block of help text describing one option: its line and the indented lines under it. */
function optionBlock(help: string, option: string): string {
  const lines = help.split('\n');
  const first = lines.findIndex((line) => new RegExp(`^\\s+${option}(\\s|$)`).test(line));
  expect(first, `${option} is described`).toBeGreaterThanOrEqual(0);
  const block = [lines[first]!];
  for (const line of lines.slice(first + 1)) {
    if (/^\s{0,4}\S/.test(line) || line.trim() === '') break;
    block.push(line);
  }
  return block.join('\n');
}

describe.concurrent('help', () => {
  const SERVER_OPTIONS = [
    { option: '--database', env: 'PRSERV_DATABASE', fallback: './prserv-data' },
    { option: '--bind', env: 'PRSERV_BIND_ADDR', fallback: 'localhost:8585' },
    { option: '--max-connections', env: 'PRSERV_MAX_CONNECTIONS', fallback: '10' },
    { option: '--read-only', env: 'PRSERV_READ_ONLY', fallback: 'off' },
    { option: '--nohist', env: 'PRSERV_NOHIST', fallback: 'on' },
    { option: '--history', env: 'PRSERV_NOHIST', fallback: 'off' },
    { option: '--sync-mode', env: 'PRSERV_SYNC_MODE', fallback: 'none' },
    { option: '--config', env: undefined, fallback: 'none' },
    { option: '--log-level', env: 'PRSERV_LOG_LEVEL', fallback: 'info' },
  ] as const;

  for (const args of [['--help'], ['server', '--help']]) {
    it(`prserv ${args.join(' ')} describes every server option with its default and environment variable`, async () => {
      const result = await runCliProcess(args);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      for (const { option, env, fallback } of SERVER_OPTIONS) {
        const block = optionBlock(result.stdout, option);
        expect(block, option).toContain(`Default: ${fallback}`);
        if (env) expect(block, option).toContain(env);
      }
    });
  }

  it('prserv client --help lists every client command and the server address setting', async () => {
    const result = await runCliProcess(['client', '--help']);
    expect(result.code).toBe(0);
    for (const command of ['get-pr', 'test-pr', 'test-package', 'max-package-pr', 'import-one', 'export', 'ping', 'is-readonly', 'stats', 'reset-stats', 'preflight', 'history']) {
      expect(result.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    }
    for (const option of ['--server', '--json', '--config', '--history', '--colinfo', '--version', '--pkgarch', '--checksum']) {
      expect(result.stdout).toContain(option);
    }
    expect(result.stdout).toContain('PRSERV_SERVER_ADDR');
    expect(result.stdout).toContain('localhost:8585');
  });
});

describe.concurrent('bad settings', () => {
  /** Asserts exit code 2, one stderr line naming `setting`, and no server started. */
  function expectRefused(result: CliResult, setting: string): void {
    expect(result.code).toBe(2);
    expect(result.stderr.endsWith('\n')).toBe(true);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(setting);
    expect(result.stdout).not.toContain('prserv listening');
  }

  it('refuses --max-connections abc with exit code 2 naming the flag', async () => {
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--max-connections', 'abc']);
    expectRefused(result, '--max-connections');
  });

  it('refuses a malformed PRSERV_BIND_ADDR with exit code 2 naming the variable', async () => {
    const result = await runCliProcess(['server', '--database', db.url], { PRSERV_BIND_ADDR: 'nonsense' });
    expectRefused(result, 'PRSERV_BIND_ADDR');
  });

  it('refuses read_only: maybe in a config file with exit code 2 naming the key', async () => {
    const config = await writeConfig('read-only-maybe.yaml', 'server: {read_only: maybe}\n');
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--config', config]);
    expectRefused(result, 'server.read_only');
  });

  it('refuses an unknown key in a config file with exit code 2 naming it', async () => {
    const config = await writeConfig('unknown-key.yaml', 'server:\n  max_conections: 3\n');
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--config', config]);
    expectRefused(result, 'server.max_conections');
  });

  it('refuses a missing config file with exit code 2 naming it', async () => {
    const config = join(workDir, 'absent.yaml');
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--config', config]);
    expectRefused(result, config);
  });

  it('refuses an unknown flag with exit code 2 naming it', async () => {
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--frobnicate']);
    expectRefused(result, '--frobnicate');
  });

  it('refuses an unknown log level with exit code 2 naming the flag', async () => {
    const result = await runCliProcess(['server', '--database', db.url, '--bind', '127.0.0.1:0', '--log-level', 'loud']);
    expectRefused(result, '--log-level');
  });

  it('refuses a malformed client address with exit code 2 naming where it came from', async () => {
    expectRefused(await runCliProcess(['client', '--server', 'nonsense', 'ping']), '--server');
    expectRefused(await runCliProcess(['client', 'ping'], { PRSERV_SERVER_ADDR: 'nonsense' }), 'PRSERV_SERVER_ADDR');
  });

  it.each([
    [['server', '--bogus'], "prserv: unknown option --bogus (see 'prserv server --help')"],
    [['server', '--database'], "prserv: option --database needs a value (see 'prserv server --help')"],
    [['server', '--database', '--bind', '127.0.0.1:0'], "prserv: option --database needs a value (see 'prserv server --help')"],
    [['server', '--read-only=yes'], "prserv: option --read-only takes no value (see 'prserv server --help')"],
    [['server', 'extra'], `prserv: unexpected argument "extra" (see 'prserv server --help')`],
    [['client', '--bogus', 'ping'], "prserv: unknown option --bogus (see 'prserv client --help')"],
    [['client', 'stress', '--bogus'], "prserv: unknown option --bogus (see 'prserv client stress --help')"],
  ])('refuses %j with exactly: %s', async (args, message) => {
    const result = await runCliProcess(args);
    expect(result).toMatchObject({ code: 2, stderr: `${message}\n`, stdout: '' });
  });

  it('refuses a database URL of another scheme, naming the accepted forms, and creates no folder', async () => {
    const cwd = await mkdtemp(join(workDir, 'scheme-'));
    const result = await runCliProcess(['server', '--database', 'pg://db.example/prserv', '--bind', '127.0.0.1:0'], {}, { cwd });
    expectRefused(result, '"pg://"');
    expect(result.stderr).toContain('postgres://');
    expect(await readdir(cwd)).toEqual([]);
  });

  it('refuses import-one with a value that is not a revision before sending anything', async () => {
    // Nothing listens on port 1: a request sent would fail with exit code 1, not 2.
    const result = await runCliProcess(['client', '--server', '127.0.0.1:1', 'import-one', '1.0', 'core2-64', 'c1', 'notanumber']);
    expectRefused(result, '"notanumber"');
  });

  it('refuses a client command with the wrong number of arguments with exit code 2', async () => {
    expectRefused(await runCliProcess(['client', 'get-pr', '1.0', 'core2-64']), 'get-pr');
    expectRefused(await runCliProcess(['client', 'frobnicate']), 'frobnicate');
  });
});

describe('prserv server start-up and shutdown', () => {
  it('reports a port in use before creating an embedded store, and leaves no folder behind', async () => {
    const occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, '127.0.0.1', resolve));
    const { port } = occupied.address() as { port: number };
    const folder = join(workDir, 'never-created');
    try {
      const result = await runCliProcess(['server', '--database', folder, '--bind', `127.0.0.1:${port}`]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`prserv: cannot listen on 127.0.0.1:${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
      await expect(stat(folder)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await new Promise((resolve) => occupied.close(resolve));
    }
  });

  it('refuses --http on the port it listens on, before creating an embedded store', async () => {
    const folder = join(workDir, 'never-created-http');
    const result = await runCliProcess(['server', '--database', folder, '--bind', '127.0.0.1:18719', '--http', '0.0.0.0:18719']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('prserv: --http 0.0.0.0:18719 is the address the server listens on (--bind): give it another port\n');
    await expect(stat(folder)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('prints the cause of a failed start once', async () => {
    // A file where the store's folder should be.
    const file = await writeConfig('not-a-folder', 'x');
    const result = await runCliProcess(['server', '--database', file, '--bind', '127.0.0.1:0']);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr.match(/EEXIST/g)).toHaveLength(1);
  });

  it('warns when it listens beyond loopback, and only then', async () => {
    const isWarning = (line: Record<string, unknown>) => String(line.msg).startsWith('listening on a non-loopback address');
    const everywhere = await startServer({ args: ['--bind', '0.0.0.0:0'] });
    // The warning follows the "prserv listening" line that startServer waits for.
    await vi.waitFor(() => expect(everywhere.logs.find(isWarning)).toMatchObject({ level: 40, bind: expect.stringMatching(/^0\.0\.0\.0:\d+$/) }));
    const loopback = await startServer();
    await loopback.stop();
    expect(loopback.logs.some(isWarning)).toBe(false);
  });

  it('closes connections from outside --allow, and says so in its log', async () => {
    const server = await startServer({ args: ['--allow', '10.0.0.0/8,fd00::/8'] });
    const result = await client(server, 'ping');
    expect(result.code).toBe(1);
    await vi.waitFor(() => expect(server.logs.some((line) => line.msg === 'connection from outside --allow closed')).toBe(true));
    const open = await startServer({ args: ['--allow', '127.0.0.0/8', '--max-clients', '5'] });
    expect(await ask(open, 'ping')).toBe(`alive (${open.address})`);
    expect(startupLine(open)).toMatchObject({ maxClients: 5, allow: ['127.0.0.0/8'] });
  });

  it('serves clients from outside --allow-write as a read-only server', async () => {
    const server = await startServer({ args: ['--allow-write', '10.0.0.0/8'] });
    expect(startupLine(server)).toMatchObject({ allowWrite: ['10.0.0.0/8'] });
    expect(await ask(server, 'is-readonly')).toBe('true');
    expect(await ask(server, 'get-pr', 'allow-write-1.0', 'core2-64', 'c0')).toBe('0');
    expect(await ask(server, 'test-pr', 'allow-write-1.0', 'core2-64', 'c0')).toBe('none');
  });

  it('exits as soon as it has logged "stopped" after SIGTERM', async () => {
    const server = await startServerProcess({ database: db.url });
    const code = await server.stop('SIGTERM');
    const exitedAt = Date.now();
    expect(code).toBe(0);
    const stopped = server.logs.find((line) => line.msg === 'stopped');
    expect(stopped).toBeDefined();
    // Generous for a loaded machine; the process used to linger for seconds after this line.
    expect(exitedAt - Date.parse(String(stopped!.time))).toBeLessThan(1_500);
  });
});

describe('server settings from flags, environment and config file', () => {
  it('accepts --sync-mode full and logs exactly one warning that it is ignored', async () => {
    const server = await startServer({ args: ['--sync-mode', 'full'] });
    const warnings = server.logs.filter((entry) => entry.level === 40);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.msg)).toMatch(/sync-mode/i);
    expect(String(warnings[0]!.msg)).toMatch(/ignored/i);
    expect(await ask(server, 'ping')).toBe(`alive (${server.address})`);
  });

  it('accepts PRSERV_SYNC_MODE and logs exactly one warning that it is ignored', async () => {
    const server = await startServer({ env: { PRSERV_SYNC_MODE: 'normal' } });
    const warnings = server.logs.filter((entry) => entry.level === 40);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!.msg)).toContain('PRSERV_SYNC_MODE');
  });

  it('logs no warning without a sync mode', async () => {
    const server = await startServer();
    expect(server.logs.filter((entry) => Number(entry.level) >= 40)).toEqual([]);
    expect(startupLine(server)).toMatchObject({ store: 'postgres', mode: 'nohist', readOnly: false, maxConnections: 10 });
  });

  it('runs read-only when PRSERV_READ_ONLY=1', async () => {
    const server = await startServer({ env: { PRSERV_READ_ONLY: '1' } });
    expect(await ask(server, 'is-readonly')).toBe('true');
    expect(await askJson(server, 'is-readonly')).toEqual({ readonly: true });
    // A read-only server computes an answer but stores nothing.
    expect(await ask(server, 'get-pr', 'ro-env-1.0', 'core2-64', 'c0')).toBe('0');
    expect(await ask(server, 'test-pr', 'ro-env-1.0', 'core2-64', 'c0')).toBe('none');
    expect(await ask(server, 'import-one', 'ro-env-1.0', 'core2-64', 'c0', '5')).toBe('none (read-only server)');
    expect(await askJson(server, 'import-one', 'ro-env-1.0', 'core2-64', 'c0', '5')).toEqual({ value: null });
  });

  it('runs read-only with read_only: true in a YAML config file', async () => {
    const config = await writeConfig('read-only.yaml', 'server:\n  read_only: true\n');
    const server = await startServer({ args: ['--config', config] });
    expect(await ask(server, 'is-readonly')).toBe('true');
  });

  it('uses max_connections and nohist from a JSON config file', async () => {
    const config = await writeConfig('settings.json', JSON.stringify({ server: { max_connections: 2, nohist: false } }));
    const server = await startServer({ args: ['--config', config] });
    expect(startupLine(server)).toMatchObject({ maxConnections: 2, mode: 'history', readOnly: false });
  });

  it('uses PRSERV_MAX_CONNECTIONS and PRSERV_NOHIST from the environment over the config file', async () => {
    const config = await writeConfig('overridden.yaml', 'server:\n  max_connections: 2\n  nohist: true\n  read_only: true\n');
    const server = await startServer({ args: ['--config', config], env: { PRSERV_MAX_CONNECTIONS: '3', PRSERV_NOHIST: '0', PRSERV_READ_ONLY: 'no' } });
    expect(startupLine(server)).toMatchObject({ maxConnections: 3, mode: 'history', readOnly: false });
    expect(await ask(server, 'is-readonly')).toBe('false');
  });

  it('lets flags win over the environment', async () => {
    const server = await startServer({
      args: ['--max-connections', '4', '--nohist', '--read-only'],
      env: { PRSERV_MAX_CONNECTIONS: '3', PRSERV_NOHIST: '0', PRSERV_READ_ONLY: '0' },
    });
    expect(startupLine(server)).toMatchObject({ maxConnections: 4, mode: 'nohist', readOnly: true });
  });

  it('logs one JSON line per request, naming the method, at --log-level debug', async () => {
    const server = await startServer({ args: ['--log-level', 'debug'] });
    await ask(server, 'ping');
    await ask(server, 'get-pr', 'debug-1.0', 'core2-64', 'c0');
    await ask(server, 'test-pr', 'debug-1.0', 'core2-64', 'c0');
    const requests = () => server.logs.filter((entry) => entry.method !== undefined);
    await waitFor(() => requests().length >= 3, 'three request log lines');
    // Give a stray fourth line a moment to show up before counting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests().map((entry) => entry.method)).toEqual(['ping', 'get-pr', 'test-pr']);
    for (const entry of requests()) expect(entry.level).toBe(20);
  });

  it('logs no request lines at the default level', async () => {
    const server = await startServer();
    await ask(server, 'ping');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(server.logs.filter((entry) => entry.method !== undefined)).toEqual([]);
  });
});

describe.concurrent('prserv client against a server on PostgreSQL', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServerProcess({ database: db.url });
  });

  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('answers ping readably and as JSON', async () => {
    expect(await ask(server, 'ping')).toBe(`alive (${server.address})`);
    expect(await askJson(server, 'ping')).toEqual({ alive: true });
  });

  it('runs client stress from the built CLI: one JSON report, every check held, exit 0', async () => {
    const run = await client(server, 'stress', '--connections', '4', '--requests', '200', '--package-prefix', 'cli-stress', '--json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as { ok: boolean; requests: number; checks: { ok: boolean }[] };
    expect(report).toMatchObject({ ok: true, requests: 200 });
    expect(report.checks.length).toBeGreaterThan(0);
    expect(report.checks.every((check) => check.ok)).toBe(true);
  });

  it('reports stats over either protocol, readably and as JSON, and resets them', async () => {
    await ask(server, 'ping');
    const stats = (await askJson(server, '--protocol', 'jsonrpc', 'stats')) as { requests: Record<string, { count: number }> };
    expect(stats.requests.ping!.count).toBeGreaterThanOrEqual(1);
    const table = await ask(server, 'stats');
    expect(table.split('\n')[1]).toBe('METHOD\tCOUNT\tERRORS\tMEAN_MS\tP50_MS\tP90_MS\tP99_MS\tMAX_MS');
    expect(table).toMatch(/^ping\t\d+\t0\t/m);
    expect(await ask(server, 'reset-stats')).toMatch(/^requests until now, since /);
    const fresh = (await askJson(server, 'stats')) as { requests: Record<string, { count: number }> };
    // Other tests share this server: only what came after the reset is counted.
    expect(fresh.requests['reset-stats']!.count).toBeGreaterThanOrEqual(1);
    expect(fresh.requests.all!.count).toBeLessThan(stats.requests.all!.count + 50);
  });

  it('refuses an unknown --protocol with exit code 2 naming the flag', async () => {
    const result = await client(server, '--protocol', 'grpc', 'ping');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--protocol');
  });

  it('answers is-readonly readably and as JSON', async () => {
    expect(await ask(server, 'is-readonly')).toBe('false');
    expect(await askJson(server, 'is-readonly')).toEqual({ readonly: false });
  });

  it('gives new checksums 0 then 1, and a returning checksum 2 in no-history mode', async () => {
    const pkg = ['getpr-1.0-r0', 'core2-64'];
    expect(await ask(server, 'get-pr', ...pkg, 'c0')).toBe('0');
    expect(await askJson(server, 'get-pr', ...pkg, 'c1')).toEqual({ value: '1' });
    expect(await ask(server, 'get-pr', ...pkg, 'c0')).toBe('2');
    expect(await ask(server, 'get-pr', ...pkg, 'c0')).toBe('2');
  });

  it('gives a returning checksum its first value with --history', async () => {
    const pkg = ['getpr-hist-1.0', 'core2-64'];
    expect(await ask(server, 'get-pr', ...pkg, 'c0')).toBe('0');
    expect(await ask(server, 'get-pr', ...pkg, 'c1')).toBe('1');
    expect(await ask(server, 'get-pr', ...pkg, 'c0')).toBe('2');
    expect(await ask(server, 'get-pr', ...pkg, 'c0', '--history')).toBe('0');
    expect(await askJson(server, 'get-pr', ...pkg, 'c1', '--history')).toEqual({ value: '1' });
  });

  it('answers test-pr with the last value, the first with --history, and none for an unknown checksum', async () => {
    const pkg = ['testpr-1.0', 'core2-64'];
    expect(await ask(server, 'test-pr', ...pkg, 'c0')).toBe('none');
    expect(await askJson(server, 'test-pr', ...pkg, 'c0')).toEqual({ value: null });
    await ask(server, 'get-pr', ...pkg, 'c0');
    await ask(server, 'get-pr', ...pkg, 'c1');
    await ask(server, 'get-pr', ...pkg, 'c0');
    expect(await ask(server, 'test-pr', ...pkg, 'c0')).toBe('2');
    expect(await askJson(server, 'test-pr', ...pkg, 'c0')).toEqual({ value: '2' });
    expect(await ask(server, 'test-pr', ...pkg, 'c0', '--history')).toBe('0');
    expect(await askJson(server, 'test-pr', ...pkg, 'c0', '--history')).toEqual({ value: '0' });
    expect(await ask(server, 'test-pr', ...pkg, 'unknown')).toBe('none');
    // test-pr never stores
    expect(await ask(server, 'get-pr', ...pkg, 'unknown')).toBe('3');
  });

  it('answers test-package for unknown and known packages', async () => {
    const pkg = ['testpkg-1.0', 'core2-64'];
    expect(await ask(server, 'test-package', ...pkg)).toBe('false');
    expect(await askJson(server, 'test-package', ...pkg)).toEqual({ value: false });
    await ask(server, 'get-pr', ...pkg, 'c0');
    expect(await ask(server, 'test-package', ...pkg)).toBe('true');
    expect(await askJson(server, 'test-package', ...pkg)).toEqual({ value: true });
  });

  it('answers max-package-pr with none for an unknown package and the greatest PR otherwise', async () => {
    const pkg = ['maxpr-1.0', 'core2-64'];
    expect(await ask(server, 'max-package-pr', ...pkg)).toBe('none');
    expect(await askJson(server, 'max-package-pr', ...pkg)).toEqual({ value: null });
    await ask(server, 'get-pr', ...pkg, 'c0');
    await ask(server, 'get-pr', ...pkg, 'c1');
    expect(await ask(server, 'max-package-pr', ...pkg)).toBe('1');
    expect(await askJson(server, 'max-package-pr', ...pkg)).toEqual({ value: '1' });
  });

  it('stores a row with import-one and echoes its value', async () => {
    const pkg = ['import-1.0', 'core2-64'];
    expect(await ask(server, 'import-one', ...pkg, 'c0', '7')).toBe('7');
    expect(await askJson(server, 'import-one', ...pkg, 'c1', '9')).toEqual({ value: '9' });
    expect(await ask(server, 'test-pr', ...pkg, 'c0')).toBe('7');
    expect(await ask(server, 'max-package-pr', ...pkg)).toBe('9');
    expect(await ask(server, 'get-pr', ...pkg, 'c2')).toBe('10');
  });

  describe('export', () => {
    const version = 'export-1.0';
    type Exported = { metainfo: Record<string, unknown>; datainfo: Row[] };
    const sorted = sortRows;

    beforeAll(async () => {
      // armv8a: e0 → 0, e1 → 1, e0 again → 2 (no-history); x86-64: x0 → 0
      for (const [pkgarch, checksum] of [
        ['armv8a', 'e0'],
        ['armv8a', 'e1'],
        ['armv8a', 'e0'],
        ['x86-64', 'x0'],
      ] as const) {
        await ask(server, 'get-pr', version, pkgarch, checksum);
      }
    });

    it('exports the rows at each package maximum as JSON with empty metainfo', async () => {
      const result = (await askJson(server, 'export', '--version', version)) as Exported;
      expect(result.metainfo).toEqual({});
      expect(sorted(result.datainfo)).toEqual([
        { version, pkgarch: 'armv8a', checksum: 'e0', value: '2' },
        { version, pkgarch: 'x86-64', checksum: 'x0', value: '0' },
      ]);
    });

    it('exports every row with --history', async () => {
      const result = (await askJson(server, 'export', '--version', version, '--history')) as Exported;
      expect(sorted(result.datainfo)).toEqual([
        { version, pkgarch: 'armv8a', checksum: 'e0', value: '0' },
        { version, pkgarch: 'armv8a', checksum: 'e0', value: '2' },
        { version, pkgarch: 'armv8a', checksum: 'e1', value: '1' },
        { version, pkgarch: 'x86-64', checksum: 'x0', value: '0' },
      ]);
    });

    it('filters by --pkgarch and --checksum', async () => {
      const byArch = (await askJson(server, 'export', '--version', version, '--pkgarch', 'x86-64', '--history')) as Exported;
      expect(byArch.datainfo).toEqual([{ version, pkgarch: 'x86-64', checksum: 'x0', value: '0' }]);
      const byChecksum = (await askJson(server, 'export', '--version', version, '--checksum', 'e1', '--history')) as Exported;
      expect(byChecksum.datainfo).toEqual([{ version, pkgarch: 'armv8a', checksum: 'e1', value: '1' }]);
      const nothing = (await askJson(server, 'export', '--version', 'no-such-version', '--history')) as Exported;
      expect(nothing).toEqual({ metainfo: {}, datainfo: [] });
    });

    it('describes the PRMAIN table with --colinfo', async () => {
      const result = (await askJson(server, 'export', '--version', version, '--colinfo')) as Exported;
      expect(result.metainfo).toMatchObject({ tbl_name: 'PRMAIN', core_ver: '2.0.0' });
      const columns = result.metainfo.col_info as { name: string; type: string; pk: number }[];
      expect(columns.map((column) => [column.name, column.type, column.pk])).toEqual([
        ['version', 'TEXT', 1],
        ['pkgarch', 'TEXT', 2],
        ['checksum', 'TEXT', 3],
        ['value', 'TEXT', 4],
      ]);
      expect(result.datainfo).toHaveLength(2);
    });

    it('prints readable rows under a header, with the table name given --colinfo', async () => {
      const plain = await ask(server, 'export', '--version', version, '--pkgarch', 'armv8a', '--history');
      const lines = plain.split('\n');
      expect(lines[0]).toBe('VERSION\tPKGARCH\tCHECKSUM\tVALUE');
      expect(lines.slice(1).sort()).toEqual([`${version}\tarmv8a\te0\t0`, `${version}\tarmv8a\te0\t2`, `${version}\tarmv8a\te1\t1`]);
      const withColinfo = await ask(server, 'export', '--version', version, '--pkgarch', 'armv8a', '--colinfo');
      expect(withColinfo.split('\n')).toEqual(['# table PRMAIN (core 2.0.0)', 'VERSION\tPKGARCH\tCHECKSUM\tVALUE', `${version}\tarmv8a\te0\t2`]);
    });
  });

  describe('server address', () => {
    it('connects to PRSERV_SERVER_ADDR', async () => {
      const result = await runCliProcess(['client', 'ping'], { PRSERV_SERVER_ADDR: server.address });
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`alive (${server.address})\n`);
    });

    it('lets --server override PRSERV_SERVER_ADDR', async () => {
      const elsewhere = `127.0.0.1:${await unusedPort()}`;
      const result = await runCliProcess(['client', '--server', server.address, 'ping'], { PRSERV_SERVER_ADDR: elsewhere });
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`alive (${server.address})\n`);
    });

    it('connects to server_addr from the client section of a config file', async () => {
      const config = await writeConfig('client.yaml', `client:\n  server_addr: ${server.address}\n`);
      const result = await runCliProcess(['client', '--config', config, 'ping']);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`alive (${server.address})\n`);
    });

    it('lets PRSERV_SERVER_ADDR override the config file', async () => {
      const config = await writeConfig('client-elsewhere.json', JSON.stringify({ client: { server_addr: `127.0.0.1:${await unusedPort()}` } }));
      const result = await runCliProcess(['client', '--config', config, 'ping'], { PRSERV_SERVER_ADDR: server.address });
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`alive (${server.address})\n`);
    });
  });
});

describe.concurrent('prserv client against an unreachable address', () => {
  for (const command of [['ping'], ['get-pr', '1.0', 'core2-64', 'c0'], ['--json', 'is-readonly']]) {
    it(`exits 1 quickly naming the address for ${command.join(' ')}`, async () => {
      const address = `127.0.0.1:${await unusedPort()}`;
      const began = Date.now();
      const result = await client(address, ...command);
      expect(Date.now() - began).toBeLessThan(10_000);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(address);
    });
  }
});

describe('prserv server on the embedded store', () => {
  let folder: TestDatabase;
  let first: ServerProcess | undefined;
  let again: ServerProcess | undefined;

  beforeAll(async () => {
    folder = await createEmbeddedFolder('cli-embedded');
  });

  afterAll(async () => {
    await first?.stop();
    await again?.stop();
    await folder?.drop();
  });

  it('creates a new store from the template the build packs, replacing a half-unpacked one', async () => {
    const location = join(workDir, 'from-template');
    // What a crash while unpacking leaves behind: it must not be taken for a store.
    await mkdir(join(location, 'pgdata.new', 'base'), { recursive: true });
    await writeFile(join(location, 'pgdata.new', 'base', 'junk'), 'junk');
    const server = await startServerProcess({ database: location });
    try {
      expect(await ask(server, 'get-pr', 'template-1.0', 'core2-64', 'c0')).toBe('0');
      expect(await ask(server, 'get-pr', 'template-1.0', 'core2-64', 'c1')).toBe('1');
    } finally {
      expect(await server.stop('SIGTERM')).toBe(0);
    }
    const entries = await readdir(location);
    expect(entries).not.toContain('pgdata.new');
    // The template is made with 1 MB WAL segments; a store made by initdb has 16 MB ones.
    const segments = (await readdir(join(location, 'pgdata', 'pg_wal'))).filter((name) => /^[0-9A-F]{24}$/.test(name));
    expect(segments.length).toBeGreaterThan(0);
    for (const segment of segments) expect((await stat(join(location, 'pgdata', 'pg_wal', segment))).size).toBe(1024 * 1024);
  }, 120_000);

  it('refuses a second server on the same folder, naming the first one’s pid, and keeps the values across a restart', async () => {
    const pkg = ['embedded-1.0', 'core2-64'];
    first = await startServerProcess({ database: folder.url });
    expect(startupLine(first)).toMatchObject({ store: 'embedded' });
    expect(await ask(first, 'get-pr', ...pkg, 'c0')).toBe('0');
    expect(await ask(first, 'get-pr', ...pkg, 'c1')).toBe('1');
    expect(await ask(first, 'get-pr', ...pkg, 'c0')).toBe('2');
    expect(await ask(first, 'import-one', ...pkg, 'c9', '5')).toBe('5');
    const reads = async (server: ServerProcess) => ({
      last: await ask(server, 'test-pr', ...pkg, 'c0'),
      first: await ask(server, 'test-pr', ...pkg, 'c0', '--history'),
      c1: await ask(server, 'test-pr', ...pkg, 'c1'),
      max: await ask(server, 'max-package-pr', ...pkg),
      known: await ask(server, 'test-package', ...pkg),
      rows: sortRows(((await askJson(server, 'export', '--history')) as { datainfo: Row[] }).datainfo),
    });
    const before = await reads(first);
    expect(before).toMatchObject({ last: '2', first: '0', c1: '1', max: '5', known: 'true' });

    const second = await runCliProcess(['server', '--database', folder.url, '--bind', '127.0.0.1:0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`pid ${first.child.pid}`);
    expect(second.stdout).not.toContain('prserv listening');
    // The first server is unharmed.
    expect(await ask(first, 'ping')).toBe(`alive (${first.address})`);

    expect(await first.stop('SIGTERM')).toBe(0);
    first = undefined;

    again = await startServerProcess({ database: folder.url });
    const after = await reads(again);
    expect(after.rows).toEqual(before.rows);
    expect(after).toEqual(before);
    expect(await ask(again, 'get-pr', ...pkg, 'c0', '--history')).toBe('0');
    expect(await ask(again, 'get-pr', ...pkg, 'c2')).toBe('6');
    expect(await again.stop('SIGTERM')).toBe(0);
    again = undefined;
  }, 120_000);
});
