import { readFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import type { HistoryEntry, PrClient, PreflightReport, RevisionArgs } from '@prserv/client';
import { isPrStoreError, openPrStore, type PrStore } from '@prserv/core';
import { checkCommandArguments } from './arguments.js';
import { loadConfigFile } from './config-file.js';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { FREEZE_HELP, HISTORY_HELP, THAW_HELP } from './release-help-text.js';
import { resolveServerSettings } from './settings.js';

const DATABASE_OPTIONS = { database: { type: 'string' }, config: { type: 'string' } } as const;
const HISTORY_OPTIONS = { ...DATABASE_OPTIONS, json: { type: 'boolean' } } as const;
const FREEZE_OPTIONS = {
  ...DATABASE_OPTIONS,
  pkgarch: { type: 'string' },
  reason: { type: 'string' },
  list: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;
const THAW_OPTIONS = { ...DATABASE_OPTIONS, pkgarch: { type: 'string' } } as const;

/** Exit code of `prserv client preflight` when some package would get a new PR or be refused. */
export const PREFLIGHT_WOULD_MOVE = 3;

/** `prserv history VERSION PKGARCH [CHECKSUM]`: the package's timeline, from the database. */
export async function runHistoryCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, HISTORY_OPTIONS, 'history', true);
  const { values, positionals } = parseArgs({ args, options: HISTORY_OPTIONS, strict: true, allowPositionals: true });
  if (positionals.length < 2 || positionals.length > 3) {
    throw new UsageError(`history takes VERSION PKGARCH [CHECKSUM], got ${positionals.length} arguments (see 'prserv history --help')`);
  }
  const [version, pkgarch, checksum] = positionals as [string, string, string | undefined];
  return withStore(io, values, true, async (store) => {
    const revisions = await store.packageHistory({ version, pkgarch, checksum });
    io.stdout.write(values.json ? `${JSON.stringify({ version, pkgarch, revisions })}\n` : formatHistory(version, pkgarch, revisions, checksum));
    return 0;
  });
}

/** `prserv freeze PATTERN [--pkgarch GLOB]` and `prserv freeze --list`. */
export async function runFreezeCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, FREEZE_OPTIONS, 'freeze', true);
  const { values, positionals } = parseArgs({ args, options: FREEZE_OPTIONS, strict: true, allowPositionals: true });
  if (values.list) {
    if (positionals.length > 0 || values.pkgarch !== undefined || values.reason !== undefined) {
      throw new UsageError("freeze --list takes no PATTERN, --pkgarch or --reason (see 'prserv freeze --help')");
    }
    return withStore(io, values, true, async (store) => {
      const freezes = await store.listFreezes();
      if (values.json) {
        io.stdout.write(freezes.map((freeze) => `${JSON.stringify(freeze)}\n`).join(''));
      } else if (freezes.length === 0) {
        io.stdout.write('no frozen packages\n');
      } else {
        const lines = [['VERSION', 'PKGARCH', 'FROZEN_AT', 'BY', 'REASON'].join('\t')];
        for (const freeze of freezes) {
          lines.push([freeze.version, freeze.pkgarch, freeze.frozenAt, freeze.frozenBy ?? '-', freeze.reason ?? ''].join('\t'));
        }
        io.stdout.write(`${lines.join('\n')}\n`);
      }
      return 0;
    });
  }
  if (values.json) throw new UsageError("--json belongs to freeze --list (see 'prserv freeze --help')");
  const version = onePattern(positionals, 'freeze');
  const pkgarch = values.pkgarch ?? '*';
  return withStore(io, values, false, async (store) => {
    const added = await store.freeze({ version, pkgarch, frozenBy: whoAmI(), reason: values.reason });
    io.stdout.write(`${added ? 'frozen' : 'already frozen'}: version ${JSON.stringify(version)}, pkgarch ${JSON.stringify(pkgarch)}\n`);
    return 0;
  });
}

/** `prserv thaw PATTERN [--pkgarch GLOB]`. */
export async function runThawCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, THAW_OPTIONS, 'thaw', true);
  const { values, positionals } = parseArgs({ args, options: THAW_OPTIONS, strict: true, allowPositionals: true });
  const version = onePattern(positionals, 'thaw');
  const pkgarch = values.pkgarch ?? '*';
  return withStore(io, values, false, async (store) => {
    const removed = await store.thaw({ version, pkgarch });
    const what = `version ${JSON.stringify(version)}, pkgarch ${JSON.stringify(pkgarch)}`;
    if (removed) {
      io.stdout.write(`thawed: ${what}\n`);
      return 0;
    }
    io.stderr.write(`prserv: no freeze with ${what} (see 'prserv freeze --list')\n`);
    return 1;
  });
}

/**
 * `prserv client preflight FILE`: reads the tuples, previews each, prints the report. Resolves
 * with the exit code. The client is the caller's (and closed by it).
 */
export async function runPreflight(client: PrClient, file: string, history: boolean, json: boolean, io: CliIo): Promise<number> {
  const tuples = await readTuples(file, history);
  const report = await client.preflight(tuples);
  io.stdout.write(json ? `${JSON.stringify(report)}\n` : formatPreflight(report));
  return report.counts.bump > 0 || report.counts.refused > 0 ? PREFLIGHT_WOULD_MOVE : 0;
}

/**
 * The timeline as a table, one PR a line, with a note saying why it was stored: the package's
 * first PR, a new checksum, or a checksum returning after others moved the package on.
 */
export function formatHistory(version: string, pkgarch: string, revisions: readonly HistoryEntry[], checksum?: string): string {
  // With a CHECKSUM the rows are that checksum's only: the last is its greatest, not the package's.
  const subject = checksum === undefined ? `${version} ${pkgarch}` : `${version} ${pkgarch} ${checksum}`;
  const of = checksum === undefined ? '' : ' of this checksum';
  if (revisions.length === 0) return `${subject}: no PRs stored${checksum === undefined ? '' : ' for this checksum'}\n`;
  const greatest = revisions.at(-1)!.value;
  const lines = [
    `${subject}: ${revisions.length} row${revisions.length === 1 ? '' : 's'}, greatest PR${of} ${greatest}`,
    ['PR', 'CHECKSUM', 'STORED_AT', 'HOW', 'FROM', 'PREVIOUS_MAX', 'NOTE'].join('\t'),
  ];
  const earlier = new Map<string, string>();
  for (const row of revisions) {
    const known = row.storedHow !== null;
    const before = earlier.get(row.checksum);
    let note = '';
    if (!known) note = 'stored before prserv recorded provenance';
    else if (row.storedHow === 'import-one' || row.storedHow === 'import-tool') note = 'imported';
    else if (before !== undefined) note = `checksum returned (it had ${before}); PRs never go down`;
    else if (row.previousMax === null) note = 'first PR of the package';
    else note = 'new checksum';
    if (known && row.storedHow!.endsWith('-upstream')) note += '; extends the upstream server’s numbering';
    lines.push(
      [
        row.value,
        row.checksum,
        row.storedAt ?? 'unknown',
        row.storedHow ?? 'unknown',
        row.storedBy ?? (known ? '-' : 'unknown'),
        row.previousMax ?? (known ? '-' : 'unknown'),
        note,
      ].join('\t'),
    );
    earlier.set(row.checksum, row.value);
  }
  return `${lines.join('\n')}\n`;
}

/** The report as a summary line and a line per tuple that would move, is frozen or refused. */
export function formatPreflight(report: PreflightReport): string {
  const { bump, stay, frozen, refused } = report.counts;
  const lines = [
    `preflight: ${report.entries.length} tuples: ${bump} would get a new PR, ${stay} stay, ${frozen} frozen, ${refused} refused`,
  ];
  for (const entry of report.entries) {
    const what = `${entry.version} ${entry.pkgarch} ${entry.checksum}`;
    const freeze = entry.frozen && `frozen by ${JSON.stringify(entry.frozen.version)} (pkgarch ${JSON.stringify(entry.frozen.pkgarch)})`;
    if (entry.verdict === 'bump') lines.push(`bump\t${what}\t${entry.packageMax ?? 'none'} -> ${entry.value}`);
    else if (entry.verdict === 'frozen') lines.push(`frozen\t${what}\t${entry.value}\t${freeze}`);
    else if (entry.verdict === 'refused') lines.push(`refused\t${what}\tno PR yet\t${freeze}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Tuples of a preflight file: blank-separated `VERSION PKGARCH CHECKSUM`, or JSON objects with
 * those keys (and `history`), one a line. A bad line is a usage error naming it.
 */
export async function readTuples(file: string, history: boolean): Promise<RevisionArgs[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  const tuples: RevisionArgs[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${file}:${index + 1}`;
    if (line.startsWith('{')) {
      let value: Record<string, unknown>;
      try {
        value = JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new UsageError(`${where}: not JSON`);
      }
      const { version, pkgarch, checksum } = value;
      if (![version, pkgarch, checksum].every((part) => typeof part === 'string' && part !== '')) {
        throw new UsageError(`${where}: a JSON tuple needs "version", "pkgarch" and "checksum" strings`);
      }
      if (value.history !== undefined && typeof value.history !== 'boolean') throw new UsageError(`${where}: "history" must be true or false`);
      tuples.push({ version: version as string, pkgarch: pkgarch as string, checksum: checksum as string, history: (value.history as boolean | undefined) ?? history });
      continue;
    }
    const parts = line.split(/\s+/);
    if (parts.length !== 3) throw new UsageError(`${where}: expected VERSION PKGARCH CHECKSUM, got ${parts.length} fields`);
    tuples.push({ version: parts[0]!, pkgarch: parts[1]!, checksum: parts[2]!, history });
  }
  return tuples;
}

function onePattern(positionals: string[], command: string): string {
  if (positionals.length !== 1) {
    throw new UsageError(`${command} takes one PATTERN, got ${positionals.length} arguments (see 'prserv ${command} --help')`);
  }
  return positionals[0]!;
}

/** Opens the server's database as `prserv server` finds it, runs `work`, closes it; store errors exit 1. */
async function withStore(
  io: CliIo,
  flags: { database?: string; config?: string },
  readOnly: boolean,
  work: (store: PrStore) => Promise<number>,
): Promise<number> {
  const file = flags.config === undefined ? undefined : await loadConfigFile(flags.config);
  const { database } = resolveServerSettings({ database: flags.database }, io.env, file);
  let store: PrStore;
  try {
    // None of these commands creates a store: a mistyped path or URL would otherwise get a new,
    // empty one, and a freeze there would leave the real store's packages open.
    store = await openPrStore({ database, readOnly, mustExist: true, poolSize: 1, coalescing: false });
  } catch (error) {
    return reportStoreError(io, error);
  }
  try {
    return await work(store);
  } catch (error) {
    return reportStoreError(io, error);
  } finally {
    await store.close();
  }
}

function reportStoreError(io: CliIo, error: unknown): number {
  if (!isPrStoreError(error)) throw error;
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  io.stderr.write(`prserv: ${error.message}${cause}\n`);
  return error.code === 'INVALID_ARGUMENT' ? 2 : 1;
}

/** Who is freezing, for `freeze --list`: `user@host`, as well as the system can tell. */
function whoAmI(): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER;
  }
  return `${user ?? 'unknown'}@${hostname()}`;
}

/** The release-control commands run against the database: history, freeze, thaw. */
export const RELEASE_COMMANDS: Record<string, { help: string; run: (args: string[], io: CliIo) => Promise<number> } | undefined> = {
  history: { help: HISTORY_HELP, run: runHistoryCommand },
  freeze: { help: FREEZE_HELP, run: runFreezeCommand },
  thaw: { help: THAW_HELP, run: runThawCommand },
};
