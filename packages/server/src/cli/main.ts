import { runClientCommand } from './client-command.js';
import { loadConfigFile } from './config-file.js';
import { isArgumentsError, isConfigError, isUsageError, UsageError } from './errors.js';
import { CLIENT_HELP, MAIN_HELP, SERVER_HELP } from './help-text.js';
import type { CliIo } from './io.js';
import { runServerCommand } from './server-command.js';

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
      return await runServerCommand(rest, io);
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
    if (isConfigError(error) || isUsageError(error) || isArgumentsError(error)) {
      io.stderr.write(`prserv: ${(error as Error).message}\n`);
      return 2;
    }
    io.stderr.write(`prserv: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

declare const __PRSERV_VERSION__: string | undefined;
const PRSERV_VERSION = typeof __PRSERV_VERSION__ === 'string' ? __PRSERV_VERSION__ : '0.0.0-dev';
