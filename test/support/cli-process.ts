import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI (`pnpm build` makes it); end-to-end tests run it as users do. */
export const CLI_PATH = fileURLToPath(new URL('../../packages/server/dist/cli.js', import.meta.url));

/** A `prserv server` child process that has logged its startup line. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly address: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process ends. */
  readonly exited: Promise<number | null>;
}

/** Options of {@link startServerProcess}. */
export interface StartOptions {
  readonly database: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** Listen address; default 127.0.0.1:0 (a free port). */
  readonly bind?: string;
}

const PACKAGES_DIR = fileURLToPath(new URL('../../packages/', import.meta.url));
/** The built files the CLI runs: its own bundle and the packages it imports. */
const BUILT_ENTRIES = { core: 'dist/index.js', client: 'dist/index.js', server: 'dist/cli.js' } as const;

function newestSourceTime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSourceTime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

let checkedBuild = false;

/**
 * End-to-end tests run the built CLI; a `dist` older than its `src` would test yesterday's
 * code and pass. Refuse instead (`pnpm test` builds first).
 */
function assertBuilt(): void {
  if (checkedBuild) return;
  for (const [name, entry] of Object.entries(BUILT_ENTRIES)) {
    const built = join(PACKAGES_DIR, name, entry);
    if (!existsSync(built)) throw new Error(`${built} is missing: run "pnpm build" before the end-to-end tests`);
    if (newestSourceTime(join(PACKAGES_DIR, name, 'src')) > statSync(built).mtimeMs) {
      throw new Error(`packages/${name}/${entry} is older than packages/${name}/src: run "pnpm build" before the end-to-end tests`);
    }
  }
  checkedBuild = true;
}

/** Starts `prserv server --bind 127.0.0.1:0` and waits for its "prserv listening" line. */
export async function startServerProcess(options: StartOptions): Promise<ServerProcess> {
  assertBuilt();
  const child = spawn(
    process.execPath,
    [CLI_PATH, 'server', '--database', options.database, '--bind', options.bind ?? '127.0.0.1:0', ...(options.args ?? [])],
    { env: { ...cleanEnv(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'prserv listening') resolve(Number(String(entry.bind).split(':').pop()));
        } catch {
          logs.push({ text: line });
        }
      }
    });
    void exited.then((code) => reject(new Error(`prserv server exited with ${code} before listening: ${stderr}`)));
    setTimeout(() => reject(new Error(`prserv server did not start in time: ${stderr}`)), options.timeoutMs ?? 60_000).unref();
  });
  let port: number;
  try {
    port = await listening;
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    child,
    port,
    address: `127.0.0.1:${port}`,
    logs,
    stderr: () => stderr,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Result of one CLI run. */
export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `prserv <args>` to completion. */
export function runCliProcess(
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
  options: { readonly cwd?: string } = {},
): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...cleanEnv(), ...env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The test runner's environment without PRSERV_* settings, so tests set exactly what they mean. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('PRSERV_')) env[key] = value;
  }
  return env;
}
