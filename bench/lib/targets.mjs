// The servers a benchmark can drive. Each target starts a fresh instance per cell (fresh
// database, fresh folder or fresh sqlite file) and stops it afterwards, leaving nothing behind.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, onCleanup, scratchDir, startChild, stopChild, trackDatabase } from './proc.mjs';
import { ident, pgQuery, withDatabase } from './pg-mini.mjs';
import { waitUntilServing } from './wire.mjs';

export const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = resolve(BENCH_DIR, '..');
/** The built CLI of our server. */
export const DEFAULT_SERVER_CLI = join(REPO_DIR, 'packages/server/dist/cli.js');
/** Default PostgreSQL for the benchmarks (env PRSERV_BENCH_DATABASE_URL). */
export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Every target name, in the order tables list them. */
export const TARGET_NAMES = ['bitbake', 'ours-pg', 'ours-embedded', 'echo'];

function tail(file, lines = 15) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function startServing(label, command, args, logFile, port, { timeoutMs = 120_000 } = {}) {
  const child = startChild(command, args, { logFile });
  try {
    await waitUntilServing({ port, timeoutMs, isAlive: child.alive });
  } catch (error) {
    await stopChild(child, 2_000);
    throw new Error(`${label} did not start: ${error.message}\n--- ${logFile}\n${tail(logFile)}`);
  }
  return child;
}

/**
 * Builds the targets for a run. `options`: `databaseUrl`, `bitbakeDir` (null: no BitBake target),
 * `serverCli`, `maxConnections` (our server's pool; null: its default), `python` (default
 * python3). Returns a map name → target, each with `prepare()` (once per run) and
 * `start(label)` → instance `{ name, ports, pids, describe, stop() }`.
 */
export function createTargets(options) {
  const scratch = scratchDir('targets');
  const databaseUrl = options.databaseUrl;
  const serverCli = options.serverCli;
  let sequence = 0;
  const next = () => (sequence += 1);

  const ourArgs = (database, port) => {
    const args = [serverCli, 'server', '--database', database, '--bind', `127.0.0.1:${port}`, '--log-level', 'warn'];
    if (options.maxConnections) args.push('--max-connections', String(options.maxConnections));
    return args;
  };

  /** Starts `count` replicas of our server on one database. */
  async function startOurs(name, database, count, log) {
    const children = [];
    const ports = [];
    try {
      for (let i = 0; i < count; i += 1) {
        const port = await freePort();
        const logFile = `${log}-${i}.log`;
        children.push(await startServing(`${name} server ${i}`, process.execPath, ourArgs(database, port), logFile, port));
        ports.push(port);
      }
    } catch (error) {
      await Promise.all(children.map((c) => stopChild(c)));
      throw error;
    }
    return { children, ports };
  }

  const targets = {};

  targets.echo = {
    name: 'echo',
    async prepare() {},
    async start() {
      const port = await freePort();
      const logFile = join(scratch, `echo-${next()}.log`);
      const child = await startServing('echo server', process.execPath, [join(BENCH_DIR, 'echo-server.mjs'), '--bind', `127.0.0.1:${port}`], logFile, port);
      return {
        name: 'echo',
        ports: [port],
        pids: [child.pid],
        describe: 'fixed answers',
        async stop() {
          await stopChild(child);
        },
      };
    },
  };

  targets['ours-pg'] = {
    name: 'ours-pg',
    async prepare() {
      await pgQuery(databaseUrl, 'SELECT 1');
    },
    /** `replicas`: how many servers share the fresh database (default 1). */
    async start({ replicas = 1 } = {}) {
      const database = `prserv_bench_${process.pid}_${next()}`;
      const tracked = trackDatabase(databaseUrl, database);
      await pgQuery(databaseUrl, `CREATE DATABASE ${ident(database)}`);
      let dropped = false;
      const drop = async () => {
        if (dropped) return;
        dropped = true;
        await pgQuery(databaseUrl, `DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
        tracked.forget();
      };
      onCleanup(drop);
      const url = withDatabase(databaseUrl, database);
      let servers;
      try {
        servers = await startOurs('ours-pg', url, replicas, join(scratch, database));
      } catch (error) {
        await drop();
        throw error;
      }
      return {
        name: 'ours-pg',
        ports: servers.ports,
        pids: servers.children.map((c) => c.pid),
        databaseUrl: url,
        databaseName: database,
        describe: `database ${database}`,
        async stop() {
          await Promise.all(servers.children.map((c) => stopChild(c)));
          await drop();
        },
      };
    },
  };

  // Creating an embedded store (PGlite initdb + migrations) takes seconds; make one template per
  // run and copy its folder per cell, without the lock file that names the process holding it.
  let template = null;
  targets['ours-embedded'] = {
    name: 'ours-embedded',
    async prepare() {
      if (template) return;
      const folder = join(scratch, 'embedded-template');
      const { children } = await startOurs('ours-embedded (template)', folder, 1, join(scratch, 'embedded-template'));
      await Promise.all(children.map((c) => stopChild(c, 30_000)));
      template = folder;
    },
    async start() {
      if (!template) await this.prepare();
      const folder = join(scratch, `embedded-${next()}`);
      cpSync(template, folder, { recursive: true, filter: (src) => !/\.lock$/.test(basename(src)) });
      const remove = () => rmSync(folder, { recursive: true, force: true });
      onCleanup(remove);
      let servers;
      try {
        servers = await startOurs('ours-embedded', folder, 1, folder);
      } catch (error) {
        remove();
        throw error;
      }
      return {
        name: 'ours-embedded',
        ports: servers.ports,
        pids: servers.children.map((c) => c.pid),
        describe: `folder ${folder}`,
        async stop() {
          await Promise.all(servers.children.map((c) => stopChild(c, 30_000)));
          remove();
        },
      };
    },
  };

  if (options.bitbakeDir) {
    targets.bitbake = {
      name: 'bitbake',
      async prepare() {
        if (!existsSync(join(options.bitbakeDir, 'lib', 'prserv', 'serv.py'))) {
          throw new Error(`BITBAKE_DIR=${options.bitbakeDir} has no lib/prserv/serv.py`);
        }
      },
      async start() {
        const folder = join(scratch, `bitbake-${next()}`);
        mkdirSync(folder);
        const remove = () => rmSync(folder, { recursive: true, force: true });
        onCleanup(remove);
        const port = await freePort();
        const args = [
          join(BENCH_DIR, 'bitbake-prserv-launcher.py'),
          '--bitbake-dir', options.bitbakeDir,
          '--file', join(folder, 'prserv.sqlite3'),
          '--host', '127.0.0.1',
          '--port', String(port),
        ];
        let child;
        try {
          child = await startServing('BitBake PR server', options.python ?? 'python3', args, `${folder}.log`, port);
        } catch (error) {
          remove();
          throw error;
        }
        return {
          name: 'bitbake',
          ports: [port],
          pids: [child.pid],
          describe: `sqlite ${folder}/prserv.sqlite3`,
          async stop() {
            await stopChild(child);
            remove();
          },
        };
      },
    };
  }
  return targets;
}

/** BitBake's version string from a checkout (lib/bb/__init__.py), or null. */
export function bitbakeVersion(bitbakeDir) {
  try {
    const text = readFileSync(join(bitbakeDir, 'lib', 'bb', '__init__.py'), 'utf8');
    return /__version__\s*=\s*["']([^"']+)/.exec(text)?.[1] ?? null;
  } catch {
    return null;
  }
}
