// Process bookkeeping for the bench scripts: starting children that are always stopped (with a
// watchdog for when we are killed outright), free loopback ports, CPU accounting from /proc, and
// the guard against measuring beside a test suite, a build or someone else's load.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync, readdirSync, rmSync, mkdtempSync, createWriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pgConnect } from './pg-mini.mjs';

/** Clock ticks per second of /proc/<pid>/stat times (CLK_TCK; 100 on every common Linux). */
export const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const children = new Set();
const cleanups = [];
let exiting = false;

// What the watchdog (lib/watchdog.mjs) must undo if this process dies without cleaning up.
const state = { pids: [], dirs: [], databases: [] };
let stateFile = null;
function saveState() {
  if (stateFile) writeFileSync(stateFile, JSON.stringify(state));
}

/** Lists a database for the watchdog to drop should this process die; `forget` when dropped. */
export function trackDatabase(url, name) {
  state.databases.push({ url, name });
  saveState();
  return {
    forget() {
      state.databases = state.databases.filter((d) => d.name !== name);
      saveState();
    },
  };
}

function startTime(pid) {
  try {
    return statFields(pid)[19];
  } catch {
    return null;
  }
}

/**
 * Registers an async cleanup (drop a database, remove a folder). Cleanups run once, newest
 * first, on normal exit via `runCleanups()`, on SIGINT/SIGTERM and on an uncaught error.
 */
export function onCleanup(fn) {
  cleanups.push(fn);
}

/** Stops every child still running, then runs the registered cleanups. Idempotent. */
export async function runCleanups() {
  await Promise.all([...children].map((child) => stopChild(child)));
  while (cleanups.length > 0) {
    const fn = cleanups.pop();
    try {
      await fn();
    } catch (error) {
      console.error(`cleanup failed: ${error.message}`);
    }
  }
}

/**
 * Installs the exit handlers: signals and uncaught errors stop every child and run cleanups;
 * a last synchronous SIGKILL on 'exit' makes sure no child outlives this process.
 */
export function installExitHandlers() {
  // A detached watchdog undoes what we leave behind if we are killed outright (SIGKILL).
  stateFile = join(mkdtempSync(join(tmpdir(), 'prserv-bench-state-')), 'state.json');
  state.dirs.push(dirname(stateFile));
  saveState();
  const watchdog = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'watchdog.mjs'), String(process.pid), stateFile], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();
  cleanups.unshift(() => {
    rmSync(dirname(stateFile), { recursive: true, force: true });
  });
  const finish = async (code, why) => {
    if (exiting) return;
    exiting = true;
    if (why) console.error(why);
    const hardStop = setTimeout(() => process.exit(code), 20_000);
    hardStop.unref();
    await runCleanups();
    process.exit(code);
  };
  process.on('SIGINT', () => finish(130, 'interrupted: stopping servers and cleaning up'));
  process.on('SIGTERM', () => finish(143, 'terminated: stopping servers and cleaning up'));
  process.on('uncaughtException', (error) => finish(1, error.stack ?? String(error)));
  process.on('unhandledRejection', (error) => finish(1, error?.stack ?? String(error)));
  process.on('exit', () => {
    // Normal exit: removing the state file tells the watchdog to leave.
    rmSync(dirname(stateFile), { recursive: true, force: true });
    for (const child of children) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Spawns a child (never through a shell, so `child.pid` is the program itself and its CPU is
 * what /proc shows for that pid). Output goes to `logFile` when given, stays readable on
 * `child.stdout`/`child.stderr` with `capture`, else is dropped.
 * Returns the ChildProcess with `exited` (a promise of the exit code) and `alive()`.
 */
export function startChild(command, args, { logFile, capture = false, env, cwd } = {}) {
  const out = logFile || capture ? 'pipe' : 'ignore';
  const child = spawn(command, args, {
    stdio: ['ignore', out, out],
    env: env ?? process.env,
    cwd,
  });
  if (logFile) {
    const sink = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(sink);
    child.stderr.pipe(sink);
  }
  let running = true;
  child.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running = false;
      children.delete(child);
      resolve(code ?? signal);
    });
    child.once('error', (error) => {
      running = false;
      children.delete(child);
      resolve(`spawn error: ${error.message}`);
    });
  });
  child.alive = () => running;
  children.add(child);
  if (child.pid) {
    state.pids.push({ pid: child.pid, start: startTime(child.pid) });
    saveState();
    child.once('exit', () => {
      state.pids = state.pids.filter((p) => p.pid !== child.pid);
      saveState();
    });
  }
  return child;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the child has exited. */
export async function stopChild(child, graceMs = 5_000) {
  if (!child.alive()) return child.exited;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (child.alive()) child.kill('SIGKILL');
  }, graceMs);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}

/**
 * Runs a command to completion and collects its stdout/stderr, killing it after `timeoutMs`.
 * Resolves with `{ code, stdout, stderr, timedOut }`.
 */
export function runToEnd(command, args, { timeoutMs, env, cwd } = {}) {
  return new Promise((resolve) => {
    const child = startChild(command, args, { capture: true, env, cwd });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => { stdout += d; });
    child.stderr?.on('data', (d) => { stderr += d; });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      stopChild(child, 2_000);
    }, timeoutMs);
    child.exited.then((code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh scratch folder under the system temp dir, removed at cleanup. */
export function scratchDir(label) {
  const dir = mkdtempSync(join(tmpdir(), `prserv-bench-${label}-`));
  state.dirs.push(dir);
  saveState();
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name is in parentheses and may hold spaces: count fields after the last ')'.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

/**
 * CPU ticks (utime + stime, all threads) of one process, from /proc/<pid>/stat; null when the
 * process is gone.
 */
export function processTicks(pid) {
  try {
    const f = statFields(pid); // f[0] is field 3 (state): utime is field 14, stime 15
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
  }
}

let postgresScope = null;

/**
 * Limits PostgreSQL accounting to one cluster: the postmaster serving `databaseUrl` (found
 * through a backend's parent pid). Call once per run; without it, PostgreSQL CPU is not counted.
 * Resolves with the postmaster pid, or null when PostgreSQL cannot be reached.
 */
export async function configurePostgresAccounting(databaseUrl) {
  let client;
  try {
    client = await pgConnect(databaseUrl);
    const [row] = await client.query('SELECT pg_backend_pid() AS pid');
    // Read while the connection is open: a backend exits as soon as its client leaves.
    const postmaster = Number(statFields(row.pid)[1]);
    postgresScope = { postmaster };
    return postmaster;
  } catch {
    postgresScope = null;
    return null;
  } finally {
    client?.close();
  }
}

/**
 * CPU ticks of PostgreSQL spent for one database: utime + stime of the postmaster, of its
 * auxiliary processes (checkpointer, WAL writer, background writer, …: shared work such as WAL
 * flushes) and of the client backends connected to `database` (process titles name the
 * database). Backends of other databases (other users of a shared server) are left out; so is
 * the CPU of backends that exited during the window (the pools keep theirs open).
 * Returns `{ ticks, processes }`, or null when accounting is not configured.
 *
 * Finding those processes means reading every process of the machine (a few ms of CPU, taken
 * from the cores being measured), so the list is kept for a second and only their own stat
 * files are read in between; a backend that starts meanwhile is counted from the next search
 * with all its ticks, as it would have been from its first sample.
 */
export function postgresTicks(database) {
  if (!postgresScope) return null;
  const now = performance.now();
  let found = postgresScope.found;
  if (!found || found.database !== database || now - found.at > POSTGRES_SEARCH_INTERVAL_MS) {
    found = { database, at: now, pids: findPostgresProcesses(postgresScope.postmaster, database) };
    postgresScope.found = found;
  }
  let ticks = 0;
  let processes = 0;
  for (const pid of found.pids) {
    const own = processTicks(pid);
    if (own === null) continue; // exited
    ticks += own;
    processes += 1;
  }
  return { ticks, processes };
}

const POSTGRES_SEARCH_INTERVAL_MS = 1000;

function findPostgresProcesses(postmaster, database) {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const pid = Number(name);
      if (pid !== postmaster && Number(statFields(name)[1]) !== postmaster) continue;
      if (pid !== postmaster) {
        const title = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
        const clientBackend = /\(\d+\)|\[local\]/.test(title);
        if (clientBackend && !(database && title.split(' ').includes(database))) continue;
      }
      pids.push(pid);
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

/**
 * A CPU snapshot, in ticks, of the given server pids (each null when gone) and of PostgreSQL's
 * work for `database` (null: auxiliary processes only, a measure of background noise).
 */
export function cpuSnapshot(serverPids, database = null) {
  return {
    servers: serverPids.map((pid) => processTicks(pid)),
    postgres: postgresTicks(database),
  };
}

/**
 * What would distort a measurement: running test runners (vitest, jest, node --test, pytest,
 * bitbake-selftest), builds (tsup, tsc, `run build`) and load generators that are not ours
 * (`client stress` started by another process). Returns one line per process.
 */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function runningTestSuites() {
  const found = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    let cmd;
    try {
      cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    const testRunner = /\bvitest\b|\bjest\b|node(\S*)? .*--test\b|\bpytest\b|bitbake-selftest|\btsup\b|\btsc\b|\brun build\b/.test(cmd);
    let foreignLoad = false;
    if (!testRunner && /\bclient stress\b/.test(cmd)) {
      try {
        foreignLoad = Number(statFields(name)[1]) !== process.pid;
      } catch {
        continue;
      }
    }
    // Paths inside this checkout are recorded relative to it: results are committed.
    if (testRunner || foreignLoad) found.push(`${name}: ${cmd.split(REPO_ROOT).join('').slice(0, 120)}`);
  }
  return found;
}

/**
 * Waits (polling every 5 s, at most `maxWaitMs`) until no test suite, build or foreign load runs,
 * and the machine has stayed so for `settleMs` (their teardown still loads it). Resolves with the
 * ms waited; throws when the bound passes.
 */
export async function waitForQuiet({ maxWaitMs = 30 * 60_000, settleMs = 3_000, log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const started = Date.now();
  let told = false;
  let quietSince = null;
  for (;;) {
    const suites = runningTestSuites();
    if (suites.length === 0) {
      if (!told) return 0; // quiet from the start
      quietSince ??= Date.now();
      if (Date.now() - quietSince >= settleMs) return Date.now() - started;
      await new Promise((resolve) => setTimeout(resolve, 500));
      continue;
    }
    quietSince = null;
    if (Date.now() - started > maxWaitMs) throw new Error(`still not quiet after ${Math.round(maxWaitMs / 60_000)} min:\n  ${suites.join('\n  ')}`);
    if (!told) {
      log(`waiting for a test suite, a build or another load to finish:\n  ${suites.join('\n  ')}`);
      told = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 5_000));
  }
}

/** Runs a script's `main`, then stops everything it started; exit code 1 (with the stack) on failure. */
export function runScript(main) {
  main()
    .then(() => runCleanups())
    .then(() => process.exit(process.exitCode ?? 0))
    .catch(async (error) => {
      console.error(error.stack ?? String(error));
      await runCleanups();
      process.exit(1);
    });
}
