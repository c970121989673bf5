import { parseArgs } from 'node:util';
import { ConfigError, loadConfigFile, resolveServerSettings } from './config.js';
import { runClientCommand, UsageError } from './client-command.js';
import { CLIENT_HELP, MAIN_HELP, SERVER_HELP } from './help-text.js';
import { runServer } from './run-server.js';

/** Streams and environment the CLI works with; the process's own by default. */
export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** The `prserv` command. Resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...given] = argv;
  // `pnpm start -- --bind …` hands the `--` on; nothing here takes positional arguments after it.
  const rest = given[0] === '--' ? given.slice(1) : given;
  try {
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      io.stdout.write(MAIN_HELP);
      return command === undefined ? 2 : 0;
    }
    if (command === '--version' || command === '-V') {
      io.stdout.write(`${PRSERV_VERSION}\n`);
      return 0;
    }
    if (command === 'server') {
      if (rest.includes('-h') || rest.includes('--help')) {
        io.stdout.write(SERVER_HELP);
        return 0;
      }
      return await serverCommand(rest, io);
    }
    if (command === 'client') {
      if (rest.includes('-h') || rest.includes('--help')) {
        io.stdout.write(CLIENT_HELP);
        return 0;
      }
      return await runClientCommand(rest, io, loadConfigFile);
    }
    throw new UsageError(`unknown command "${command}" (expected server or client)`);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof UsageError || isArgsError(error)) {
      io.stderr.write(`prserv: ${(error as Error).message}\n`);
      return 2;
    }
    io.stderr.write(`prserv: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

async function serverCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      database: { type: 'string' },
      bind: { type: 'string' },
      'max-connections': { type: 'string' },
      'batch-size': { type: 'string' },
      'batch-wait': { type: 'string' },
      'read-only': { type: 'boolean' },
      nohist: { type: 'boolean' },
      history: { type: 'boolean' },
      'sync-mode': { type: 'string' },
      config: { type: 'string' },
      'log-level': { type: 'string' },
      upstream: { type: 'string' },
    },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.nohist && values.history) throw new UsageError('--nohist and --history exclude each other');
  const file = values.config ? await loadConfigFile(values.config) : undefined;
  const settings = resolveServerSettings(
    {
      database: values.database,
      bind: values.bind,
      maxConnections: values['max-connections'],
      batchSize: values['batch-size'],
      batchWaitMs: values['batch-wait'],
      readOnly: values['read-only'],
      nohist: values.history ? false : values.nohist,
      logLevel: values['log-level'],
      syncMode: values['sync-mode'],
      upstream: values.upstream,
    },
    io.env,
    file,
  );
  return runServer(settings, io);
}

function isArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

declare const __PRSERV_VERSION__: string | undefined;
const PRSERV_VERSION = typeof __PRSERV_VERSION__ === 'string' ? __PRSERV_VERSION__ : '0.0.0-dev';
