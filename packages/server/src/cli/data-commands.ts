import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, rename, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { createPrClient, isInvokeError, isPrClientError } from '@prserv/client';
import {
  type DataStore,
  type ImportReport,
  type ImportSource,
  type SourceRow,
  DEFAULT_IMPORT_BATCH_SIZE,
  formatRevisions,
  importRevisions,
  isDataToolError,
  isExportFormat,
  isPostgresUrl,
  isPrStoreError,
  migrateStore,
  openDataStore,
  openImportSource,
  streamRevisions,
  verifyStore,
} from '@prserv/core';
import { checkCommandArguments } from './arguments.js';
import { type ConfigFile, loadConfigFile } from './config-file.js';
import { ConfigError, UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { ENV_NAMES, SERVER_DEFAULTS } from './settings.js';

const DATABASE_OPTIONS = { database: { type: 'string' }, config: { type: 'string' } } as const;

const IMPORT_OPTIONS = {
  ...DATABASE_OPTIONS,
  'from-server': { type: 'string' },
  table: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'allow-lower': { type: 'boolean' },
  'batch-size': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const EXPORT_OPTIONS = {
  ...DATABASE_OPTIONS,
  format: { type: 'string' },
  history: { type: 'boolean' },
  version: { type: 'string' },
  pkgarch: { type: 'string' },
  output: { type: 'string' },
} as const;

const VERIFY_OPTIONS = { ...DATABASE_OPTIONS, json: { type: 'boolean' } } as const;

const MIGRATE_OPTIONS = { from: { type: 'string' }, to: { type: 'string' }, 'batch-size': { type: 'string' } } as const;

/** Conflicts and skipped rows printed in a readable report (all are counted; --json lists the same). */
const LISTED = 50;

/** `prserv import FILE… [options]`. Resolves with the exit code. */
export async function runImportCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, IMPORT_OPTIONS, 'import', true);
  const { values, positionals } = parseArgs({ args, options: IMPORT_OPTIONS, strict: true, allowPositionals: true });
  const fromServer = values['from-server'];
  if (positionals.length === 0 && fromServer === undefined) throw new UsageError("nothing to import: name a FILE or --from-server HOST:PORT (see 'prserv import --help')");
  const batchSize = positiveInteger(values['batch-size'], '--batch-size') ?? DEFAULT_IMPORT_BATCH_SIZE;
  const database = await resolveDatabase(values.database, values.config, io);
  if (fromServer !== undefined) checkServerAddress(fromServer);

  return withReportedErrors(io, async () => {
    const sources: ImportSource[] = [];
    try {
      for (const path of positionals) sources.push(await openImportSource(path, { table: values.table }));
      if (fromServer !== undefined) sources.push(await openServerSource(fromServer));
      for (const source of sources) io.stderr.write(`prserv: reading ${source.description}\n`);
      // A dry run into a store that is not there yet creates it empty, as the import would: the
      // usual first step of moving to a new database (README, Migrating from bitbake-prserv).
      const dryRun = values['dry-run'] ?? false;
      const data = await openDataStore({ database });
      const progress = createProgress(io.stderr, sources.reduce<number | undefined>((sum, source) => (sum === undefined || source.size === undefined ? undefined : sum + source.size), 0));
      try {
        const report = await importRevisions(data.db, concatRows(sources), {
          dryRun,
          allowLower: values['allow-lower'] ?? false,
          batchSize,
          reportLimit: LISTED,
          onProgress: progress.update,
          onStaged: progress.staged,
        });
        progress.done();
        printImportReport(io, report, data, dryRun, values.json ?? false);
        return report.refused ? 1 : 0;
      } finally {
        progress.done();
        await data.store.close();
      }
    } finally {
      for (const source of sources) await source.close();
    }
  });
}

/** `prserv export [options]`. */
export async function runExportCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, EXPORT_OPTIONS, 'export', false);
  const { values } = parseArgs({ args, options: EXPORT_OPTIONS, strict: true, allowPositionals: false });
  const format = values.format ?? 'json';
  if (!isExportFormat(format)) throw new UsageError(`--format must be json, inc or csv, got ${JSON.stringify(format)}`);
  const database = await resolveDatabase(values.database, values.config, io);
  const history = values.history ?? false;
  return withReportedErrors(io, async () => {
    const data = await openDataStore({ database, readOnly: true, mustExist: true });
    try {
      const rows = streamRevisions(data.db, { history, version: values.version, pkgarch: values.pkgarch });
      const chunks = formatRevisions(rows, format, { history, version: values.version ?? null, pkgarch: values.pkgarch ?? null });
      if (values.output === undefined) {
        try {
          await writeAll(chunks, io.stdout);
        } catch (error) {
          // The reader went away (`prserv export | head`): stop quietly, as other tools do.
          if ((error as { code?: unknown }).code === 'EPIPE') return 0;
          throw error;
        }
      } else {
        await writeOutputFile(values.output, chunks);
      }
      return 0;
    } finally {
      await data.store.close();
    }
  });
}

/**
 * Writes an export to `--output`. A regular file, new or not, is written beside and renamed into
 * place (keeping the old file's permissions), so a failed export never leaves half a file under
 * the name. Anything else is written in place, as a shell redirection would: a device such as
 * /dev/null or a FIFO would be replaced by the rename, and a symbolic link is followed.
 */
async function writeOutputFile(output: string, chunks: AsyncIterable<string>): Promise<void> {
  const existing = await lstat(output).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (existing !== undefined && !existing.isFile()) {
    const file = createWriteStream(output);
    try {
      await writeAll(chunks, file);
      file.end();
      await once(file, 'finish');
    } finally {
      file.destroy();
    }
    return;
  }
  const partial = `${output}.partial`;
  const file = createWriteStream(partial);
  try {
    await writeAll(chunks, file);
    file.end();
    await once(file, 'finish');
    // Set after writing: a mode given at creation would pass through the umask.
    if (existing !== undefined) await chmod(partial, existing.mode & 0o7777);
    await rename(partial, output);
  } catch (error) {
    file.destroy();
    await rm(partial, { force: true });
    throw error;
  }
}

/** `prserv verify [options]`. */
export async function runVerifyCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, VERIFY_OPTIONS, 'verify', false);
  const { values } = parseArgs({ args, options: VERIFY_OPTIONS, strict: true, allowPositionals: false });
  const database = await resolveDatabase(values.database, values.config, io);
  return withReportedErrors(io, async () => {
    const data = await openDataStore({ database, readOnly: true, mustExist: true });
    try {
      const report = await verifyStore(data.db);
      if (values.json) {
        io.stdout.write(`${JSON.stringify({ database: data.store.location, ...report })}\n`);
      } else {
        io.stdout.write(`${data.store.location}: ${report.rows} rows, ${report.packages} packages, ${report.checksums} checksums; schema ${report.migrations.at(-1) ?? 'none'}\n`);
        for (const finding of report.findings) io.stdout.write(`${finding.severity} (${finding.check}): ${finding.message}\n`);
        io.stdout.write(report.ok ? 'verify: ok\n' : `verify: ${report.findings.filter((finding) => finding.severity === 'error').length} error(s)\n`);
      }
      return report.ok ? 0 : 1;
    } finally {
      await data.store.close();
    }
  });
}

/** `prserv migrate --from SOURCE --to TARGET`. */
export async function runMigrateCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, MIGRATE_OPTIONS, 'migrate', false);
  const { values } = parseArgs({ args, options: MIGRATE_OPTIONS, strict: true, allowPositionals: false });
  if (values.from === undefined || values.to === undefined) throw new UsageError("migrate needs --from SOURCE and --to TARGET (see 'prserv migrate --help')");
  checkDatabase(values.from, '--from');
  checkDatabase(values.to, '--to');
  useBaselineWasmCompilerFor(values.from);
  useBaselineWasmCompilerFor(values.to);
  if (values.from === values.to) throw new UsageError('--from and --to name the same store');
  const batchSize = positiveInteger(values['batch-size'], '--batch-size') ?? DEFAULT_IMPORT_BATCH_SIZE;
  return withReportedErrors(io, async () => {
    const source = await openDataStore({ database: values.from, readOnly: true, mustExist: true });
    try {
      const target = await openDataStore({ database: values.to });
      try {
        const progress = createProgress(io.stderr, undefined);
        const report = await migrateStore(source.db, target.db, { batchSize, onProgress: progress.update, onStaged: progress.staged }).finally(progress.done);
        io.stdout.write(
          `migrate: ${report.rowsCopied} rows copied from ${source.store.location} to ${target.store.location}; ` +
            `checked: ${report.target.rows} rows and ${report.target.packages} package maxima match\n`,
        );
        return 0;
      } finally {
        await target.store.close();
      }
    } finally {
      await source.store.close();
    }
  });
}

/**
 * The database of a data command: --database, then PRSERV_DATABASE, then server.database of the
 * config file, then the server's default, so that `prserv import` lands where `prserv server`
 * serves from.
 */
async function resolveDatabase(flag: string | undefined, configPath: string | undefined, io: CliIo): Promise<string> {
  const file: ConfigFile | undefined = configPath === undefined ? undefined : await loadConfigFile(configPath);
  const fromEnv = io.env[ENV_NAMES.database] || undefined;
  const fromFile = file?.server.database;
  if (fromFile !== undefined && fromFile !== null && typeof fromFile !== 'string') {
    throw new ConfigError(`invalid server.database in the config file: expected a string, got ${JSON.stringify(fromFile)}`);
  }
  const [database, source] =
    flag !== undefined
      ? [flag, '--database']
      : fromEnv !== undefined
        ? [fromEnv, ENV_NAMES.database]
        : typeof fromFile === 'string'
          ? [fromFile, 'server.database in the config file']
          : [SERVER_DEFAULTS.database, 'default'];
  checkDatabase(database, source);
  useBaselineWasmCompilerFor(database);
  return database;
}

/**
 * For the embedded store, compiles PGlite's WebAssembly with V8's baseline compiler only, as
 * `prserv server` does: a command that opens the store once starts seconds sooner, and the bulk
 * work happens in SQL, where the optimising tier gains little.
 */
function useBaselineWasmCompilerFor(database: string): void {
  if (!isPostgresUrl(database)) setFlagsFromString('--liftoff-only');
}

function checkDatabase(database: string, source: string): void {
  if (database.trim() === '') throw new ConfigError(`invalid ${source}: must not be empty`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1];
  if (scheme !== undefined && !isPostgresUrl(database)) {
    throw new ConfigError(`invalid ${source}: "${scheme}://" is not a database URL prserv knows; give postgres://… or postgresql://…, or a folder path for the embedded store`);
  }
}

function checkServerAddress(address: string): void {
  if (!/^(\[[^\]]+\]|[^:\s]+):\d+$/.test(address)) throw new ConfigError(`invalid --from-server ${JSON.stringify(address)}: expected HOST:PORT or [IPv6]:PORT`);
}

function positiveInteger(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const number = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < 1) throw new ConfigError(`invalid ${name} ${JSON.stringify(text)}: expected a positive integer`);
  return number;
}

/** Errors of sources, stores and servers are the user's to fix: their message, exit code 1. */
async function withReportedErrors(io: CliIo, work: () => Promise<number>): Promise<number> {
  try {
    return await work();
  } catch (error) {
    if (isDataToolError(error) || isPrStoreError(error)) {
      const cause = (error as Error).cause;
      const detail = isPrStoreError(error) && cause instanceof Error ? `: ${cause.message}` : '';
      io.stderr.write(`prserv: ${(error as Error).message}${detail}\n`);
      return 1;
    }
    if (isInvokeError(error) || isPrClientError(error)) {
      io.stderr.write(`prserv: the PR server failed: ${(error as Error).message}\n`);
      return 1;
    }
    // A file that cannot be written (ENOSPC, EACCES…): the system's message says it all.
    if (error instanceof Error && 'syscall' in error) {
      io.stderr.write(`prserv: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/** Every row of a running PR server, asked with one history export. */
async function openServerSource(address: string): Promise<ImportSource> {
  const client = createPrClient({ address, requestTimeoutMs: 10 * 60_000 });
  try {
    const { rows } = await client.export({ history: true });
    return {
      description: `PR server ${address} (${rows.length} rows)`,
      size: rows.length,
      rows: async function* (): AsyncGenerator<SourceRow> {
        for (const [index, row] of rows.entries()) yield { ...row, where: `${address} row ${index + 1}` };
      },
      close: async () => {},
    };
  } finally {
    await client.close();
  }
}

async function* concatRows(sources: readonly ImportSource[]): AsyncGenerator<SourceRow> {
  for (const source of sources) yield* source.rows();
}

/** Writes every chunk, waiting for the stream to drain; a write error (e.g. EPIPE of `| head`) ends it. */
async function writeAll(chunks: AsyncIterable<string>, out: NodeJS.WritableStream): Promise<void> {
  let failed: Error | undefined;
  const onError = (error: Error) => {
    failed = error;
  };
  out.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (failed) throw failed;
      if (!out.write(chunk)) {
        await Promise.race([once(out as NodeJS.EventEmitter, 'drain'), once(out as NodeJS.EventEmitter, 'error')]).catch(() => {});
      }
    }
    if (failed) throw failed;
  } finally {
    out.off('error', onError);
  }
}

interface Progress {
  readonly update: (rowsRead: number) => void;
  /** Every row is read: the database now checks and writes them, which shows no progress of its own. */
  readonly staged: (rowsRead: number) => void;
  readonly done: () => void;
}

/** A progress line on stderr, redrawn at most five times a second; nothing when stderr is not a terminal. */
function createProgress(stderr: NodeJS.WritableStream, total: number | undefined): Progress {
  if (!(stderr as { isTTY?: boolean }).isTTY) return { update: () => {}, staged: () => {}, done: () => {} };
  let last = 0;
  let drawn = false;
  const started = Date.now();
  const draw = (rows: number) => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${Math.round(rows / seconds).toLocaleString('en')} rows/s`;
    let bar = '';
    if (total !== undefined && total > 0) {
      const share = Math.min(rows / total, 1);
      const width = 30;
      const filled = Math.round(share * width);
      bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(share * 100).toFixed(0).padStart(3)}% `;
    }
    stderr.write(`\r${bar}${rows.toLocaleString('en')} rows read, ${rate}\u001b[K`);
    drawn = true;
  };
  return {
    update: (rows) => {
      const now = Date.now();
      if (now - last < 200) return;
      last = now;
      draw(rows);
    },
    staged: (rows) => {
      stderr.write(`\r${rows.toLocaleString('en')} rows read; checking them against the store and writing…\u001b[K`);
      drawn = true;
    },
    done: () => {
      if (drawn) stderr.write('\r\u001b[K');
      drawn = false;
    },
  };
}

function printImportReport(io: CliIo, report: ImportReport, data: DataStore, dryRun: boolean, json: boolean): void {
  if (json) {
    io.stdout.write(`${JSON.stringify({ database: data.store.location, dryRun, ...report })}\n`);
    return;
  }
  for (const row of report.skipped) io.stdout.write(`skipped ${row.where}: ${row.reason}\n`);
  if (report.rowsSkipped > report.skipped.length) io.stdout.write(`… and ${report.rowsSkipped - report.skipped.length} more skipped rows\n`);
  for (const conflict of report.conflicts) {
    const against =
      conflict.kind === 'frozen'
        ? `the package is frozen by ${conflict.target}: thaw it first`
        : conflict.kind === 'lowers-checksum'
        ? `the store has it from ${conflict.target}`
        : conflict.kind === 'value-taken'
          ? `checksum ${conflict.target} holds ${conflict.value} in the store`
          : conflict.kind === 'value-shared'
            ? `checksum ${conflict.target} gets ${conflict.value} in this import too`
            : `the package's greatest PR in the store is ${conflict.target}`;
    io.stdout.write(`conflict ${conflict.kind}: ${conflict.version} ${conflict.pkgarch} ${conflict.checksum} = ${conflict.value} (${against})\n`);
  }
  if (report.conflictCount > report.conflicts.length) io.stdout.write(`… and ${report.conflictCount - report.conflicts.length} more conflicts\n`);
  const figures =
    `${report.rowsRead} rows read, ${report.rowsNew} new (${report.packagesNew} new packages), ` +
    `${report.rowsPresent} already present, ${report.rowsSkipped} skipped, ${report.conflictCount} conflicts`;
  if (report.refused) {
    io.stdout.write(`import: ${figures}; ${dryRun ? 'would stop' : 'stopped'}: nothing written to ${data.store.location} (--allow-lower writes them anyway)\n`);
  } else if (dryRun) {
    io.stdout.write(`dry run: ${figures}; nothing written to ${data.store.location}\n`);
  } else {
    io.stdout.write(`import: ${figures}; written to ${data.store.location}\n`);
  }
}
