import { runClientCommand } from './client-command.js';
import { loadConfigFile } from './config-file.js';
import { isArgumentsError, isConfigError, isUsageError, UsageError } from './errors.js';
import { CLIENT_HELP, MAIN_HELP, SERVER_HELP } from './help-text.js';
import type { CliIo } from './io.js';
import { runExportCommand, runImportCommand, runMigrateCommand, runVerifyCommand } from './data-commands.js';
import { EXPORT_HELP, IMPORT_HELP, MIGRATE_HELP, VERIFY_HELP } from './data-help-text.js';
import { RELEASE_COMMANDS } from './release-commands.js';
import { runServerCommand } from './server-command.js';

/** The `prserv` command. Resolves with the process exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...given] = argv;
  // `pnpm start -- --bind …` hands the `--` on to `server`, which takes no operands. Other
  // commands keep it: there it ends the options (`prserv freeze -- '-rc*'`).
  const rest = command === 'server' && given[0] === '--' ? given.slice(1) : given;
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
    const data = DATA_COMMANDS[command] ?? RELEASE_COMMANDS[command];
    if (data) {
      if (rest.includes('-h') || rest.includes('--help')) {
        io.stdout.write(data.help);
        return 0;
      }
      return await data.run(rest, io);
    }
    throw new UsageError(`unknown command "${command}" (expected server, client, import, export, verify, migrate, history, freeze or thaw)`);
  } catch (error) {
    if (isConfigError(error) || isUsageError(error) || isArgumentsError(error)) {
      io.stderr.write(`prserv: ${(error as Error).message}\n`);
      return 2;
    }
    io.stderr.write(`prserv: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

/** The data tools: import, export, verify, migrate. */
const DATA_COMMANDS: Record<string, { help: string; run: (args: string[], io: CliIo) => Promise<number> } | undefined> = {
  import: { help: IMPORT_HELP, run: runImportCommand },
  export: { help: EXPORT_HELP, run: runExportCommand },
  verify: { help: VERIFY_HELP, run: runVerifyCommand },
  migrate: { help: MIGRATE_HELP, run: runMigrateCommand },
};

declare const __PRSERV_VERSION__: string | undefined;
const PRSERV_VERSION = typeof __PRSERV_VERSION__ === 'string' ? __PRSERV_VERSION__ : '0.0.0-dev';
