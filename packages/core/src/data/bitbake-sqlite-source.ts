import { readFile, stat } from 'node:fs/promises';
import { DataToolError, isDataToolError } from './data-tool-error.js';
import type { ImportSource, SourceRow } from './source-row.js';

/** The first 16 bytes of every sqlite 3 database file. */
export const SQLITE_MAGIC = 'SQLite format 3\u0000';

/**
 * The PR tables of BitBake's database, by generation (lib/prserv/db.py): Yocto ≤ 5.0 keeps
 * `PRMAIN_nohist` or `PRMAIN_hist` (value INTEGER, one row per checksum); Yocto ≥ 5.1 keeps
 * `PRMAIN` (value TEXT, part of the primary key, several rows per checksum).
 */
export const BITBAKE_PR_TABLES = ['PRMAIN_nohist', 'PRMAIN_hist', 'PRMAIN'] as const;

/** One of {@link BITBAKE_PR_TABLES}. */
export type BitbakePrTable = (typeof BITBAKE_PR_TABLES)[number];

/** Options of {@link openBitbakeSqliteSource}. */
export interface BitbakeSqliteSourceOptions {
  /** The table to read when the file has rows in more than one. Default: the only table with rows. */
  readonly table?: string;
}

const TABLE_GENERATION: Record<BitbakePrTable, string> = {
  PRMAIN_nohist: 'Yocto ≤ 5.0, no-history mode, integer values',
  PRMAIN_hist: 'Yocto ≤ 5.0, history mode, integer values',
  PRMAIN: 'Yocto ≥ 5.1, text revisions',
};

/**
 * Opens a BitBake PR database (sqlite) for reading with sql.js (WebAssembly: no native build).
 * The file is read into memory whole (sql.js has no file access) and never written. Refuses a database whose server still
 * runs: BitBake ≥ 5.1 keeps it in WAL mode, and the newest allocations sit in the `-wal` file
 * until the server closes it, where a reader of the main file alone would not see them.
 */
export async function openBitbakeSqliteSource(path: string, options: BitbakeSqliteSourceOptions = {}): Promise<ImportSource> {
  await refuseLiveWal(path);
  // A Buffer is a Uint8Array: handed over as it is, the file is in memory twice at most (this
  // buffer and sql.js's copy), and once this function returns, only sql.js's copy remains.
  let image: Uint8Array | undefined;
  try {
    image = await readFile(path);
  } catch (cause) {
    throw new DataToolError('SOURCE_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  // Bytes 18 and 19 of the header are the read and write format versions: 2 means WAL. The WAL is
  // known to be empty here (checked above), so the main file is the whole database; saying
  // "rollback journal" lets the in-memory reader open it without looking for a -wal of its own.
  if (image[18] === 2) image[18] = 1;
  if (image[19] === 2) image[19] = 1;
  const SQL = await loadSqlJs();
  let db: import('sql.js').Database;
  try {
    db = new SQL.Database(image);
  } catch (cause) {
    throw unreadable(path, cause);
  } finally {
    image = undefined;
  }
  try {
    const table = chooseTable(db, path, options.table);
    return {
      description: table.rows === null
        ? `BitBake sqlite ${path}: no PR table`
        : `BitBake sqlite ${path}, table ${table.name} (${TABLE_GENERATION[table.name as BitbakePrTable] ?? 'named by --table'}, ${table.rows} rows)`,
      size: table.rows ?? 0,
      rows: () => readRows(db, path, table.rows === null ? null : table.name),
      close: async () => db.close(),
    };
  } catch (error) {
    db.close();
    throw isDataToolError(error) ? error : unreadable(path, error);
  }
}

/**
 * What sql.js throws for a damaged file ("database disk image is malformed", "file is not a
 * database"), as the source's error. sql.js opens an image without reading past its header, so
 * the damage shows only when a page is read: listing the tables, counting, or reading the rows.
 */
function unreadable(path: string, cause: unknown): DataToolError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new DataToolError('SOURCE_UNREADABLE', `${path} is not a readable sqlite database: ${reason}`, { cause });
}

async function refuseLiveWal(path: string): Promise<void> {
  const wal = `${path}-wal`;
  const size = await stat(wal).then((info) => info.size, () => 0);
  if (size > 0) {
    throw new DataToolError(
      'SOURCE_IN_USE',
      `${wal} holds ${size} bytes of changes not yet written to ${path}: a BitBake PR server still has the database open. ` +
        'Stop it (bitbake-prserv --stop, or end the build that started it) and try again, or import from the running server with --from-server HOST:PORT',
    );
  }
}

interface ChosenTable {
  readonly name: string;
  /** Its row count, or null when the file holds no PR table at all. */
  readonly rows: number | null;
}

function chooseTable(db: import('sql.js').Database, path: string, named: string | undefined): ChosenTable {
  const existing = new Set(
    (db.exec("SELECT name FROM sqlite_master WHERE type = 'table'")[0]?.values ?? []).map((row) => String(row[0])),
  );
  const count = (name: string) => Number(db.exec(`SELECT count(*) FROM ${quoteIdentifier(name)}`)[0]!.values[0]![0]);
  if (named !== undefined) {
    if (!existing.has(named)) {
      throw new DataToolError('INVALID_ARGUMENT', `${path} has no table ${JSON.stringify(named)} (it has: ${[...existing].join(', ') || 'none'})`);
    }
    checkColumns(db, path, named);
    return { name: named, rows: count(named) };
  }
  const tables = BITBAKE_PR_TABLES.filter((name) => existing.has(name)).map((name) => ({ name, rows: count(name) }));
  if (tables.length === 0) {
    throw new DataToolError(
      'SOURCE_UNREADABLE',
      `${path} is a sqlite database without a BitBake PR table (${BITBAKE_PR_TABLES.join(', ')}); its tables: ${[...existing].join(', ') || 'none'}`,
    );
  }
  const filled = tables.filter((table) => table.rows > 0);
  if (filled.length > 1) {
    // A 5.0 server run in both modes over time, or a 5.0 file a 5.1+ server opened and restarted
    // at 0 in PRMAIN: which history is the real one is the user's call, not ours.
    throw new DataToolError(
      'SOURCE_AMBIGUOUS',
      `${path} holds rows in ${filled.length} PR tables: ${filled.map((table) => `${table.name} (${table.rows} rows)`).join(', ')}. ` +
        'Name the one to import with --table NAME (import the file once per table to take several)',
    );
  }
  const chosen = filled[0] ?? tables[0]!;
  checkColumns(db, path, chosen.name);
  return chosen;
}

function checkColumns(db: import('sql.js').Database, path: string, table: string): void {
  const columns = new Set((db.exec(`PRAGMA table_info(${quoteIdentifier(table)})`)[0]?.values ?? []).map((row) => String(row[1])));
  const missing = ['version', 'pkgarch', 'checksum', 'value'].filter((name) => !columns.has(name));
  if (missing.length > 0) {
    throw new DataToolError('SOURCE_UNREADABLE', `table ${table} of ${path} lacks the column(s) ${missing.join(', ')}: not a BitBake PR table`);
  }
}

async function* readRows(db: import('sql.js').Database, path: string, table: string | null): AsyncGenerator<SourceRow> {
  if (table === null) return;
  let statement: import('sql.js').Statement;
  try {
    statement = db.prepare(`SELECT version, pkgarch, checksum, value FROM ${quoteIdentifier(table)}`);
  } catch (cause) {
    throw unreadable(path, cause);
  }
  try {
    let index = 0;
    for (;;) {
      // A damaged page of the table is met here, mid-import: a row count reads only page
      // headers, so the table was counted without complaint when the file was opened.
      let values: import('sql.js').SqlValue[];
      try {
        if (!statement.step()) break;
        values = statement.get();
      } catch (cause) {
        throw unreadable(path, cause);
      }
      index += 1;
      const [version, pkgarch, checksum, value] = values;
      yield { version, pkgarch, checksum, value, where: `${table} row ${index}` };
    }
  } finally {
    statement.free();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

type SqlJsStatic = import('sql.js').SqlJsStatic;
let sqlJs: Promise<SqlJsStatic> | undefined;

/** Loads sql.js on first use: importing `@prserv/core` must not load a 1 MB WebAssembly module. */
function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= (async () => {
    let init: (config?: object) => Promise<SqlJsStatic>;
    try {
      init = (await import('sql.js')).default as unknown as typeof init;
    } catch (cause) {
      sqlJs = undefined;
      const code = (cause as { code?: unknown } | null)?.code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw cause;
      throw new DataToolError(
        'DRIVER_MISSING',
        'reading BitBake sqlite databases needs the npm package "sql.js": install it next to @prserv/core (npm install sql.js)',
        { cause },
      );
    }
    return init();
  })();
  return sqlJs;
}
