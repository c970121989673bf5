// Builds BitBake PR databases the way each generation of BitBake's lib/prserv/db.py lays them
// out, so that the importer is tested against the real schemas, not against its own idea of them.
import { readFile, writeFile } from 'node:fs/promises';
import initSqlJs from 'sql.js';

/** `PRTable.__init__` of Yocto 4.0 and 5.0: one table per mode, one integer value per checksum. */
export function legacyTableSql(table: 'PRMAIN_nohist' | 'PRMAIN_hist'): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (version TEXT NOT NULL, pkgarch TEXT NOT NULL,  checksum TEXT NOT NULL, value INTEGER, PRIMARY KEY (version, pkgarch, checksum));`;
}

/** `PRTable.__init__` of Yocto 5.1 to 6.0: one table, text revisions, the value part of the key. */
export const MODERN_TABLE_SQL =
  'CREATE TABLE IF NOT EXISTS PRMAIN (version TEXT NOT NULL, pkgarch TEXT NOT NULL,  checksum TEXT NOT NULL, value TEXT, PRIMARY KEY (version, pkgarch, checksum, value));';

/** A row as BitBake stores it: integers in the legacy tables, text in the modern one. */
export type FixtureRow = readonly [version: string, pkgarch: string, checksum: string, value: number | string | null];

/** Tables of one fixture file and their rows. */
export type FixtureTables = Partial<Record<'PRMAIN_nohist' | 'PRMAIN_hist' | 'PRMAIN', readonly FixtureRow[]>>;

/**
 * Writes a sqlite file holding `tables`. `wal: true` marks the file as BitBake ≥ 5.1 leaves it
 * (`PRAGMA journal_mode = WAL` sets header bytes 18 and 19 to 2).
 */
export async function writeBitbakeDatabase(path: string, tables: FixtureTables, options: { wal?: boolean } = {}): Promise<void> {
  const SQL = await initSqlJs();
  const db = new SQL.Database();
  try {
    for (const [table, rows] of Object.entries(tables)) {
      db.run(table === 'PRMAIN' ? MODERN_TABLE_SQL : legacyTableSql(table as 'PRMAIN_nohist' | 'PRMAIN_hist'));
      const insert = db.prepare(`INSERT INTO ${table} VALUES (?, ?, ?, ?)`);
      for (const row of rows ?? []) insert.run([...row]);
      insert.free();
    }
    const image = db.export();
    if (options.wal) {
      image[18] = 2;
      image[19] = 2;
    }
    await writeFile(path, image);
  } finally {
    db.close();
  }
}

/**
 * Damages the file as a bad disk block would, where only reading the rows finds it: the cells of
 * the last table leaf page (b-tree page type 13, after the schema on page 1) are overwritten,
 * and its header is kept, so sqlite still counts the table's rows from the page headers
 * (https://www.sqlite.org/fileformat2.html#b_tree_pages).
 */
export async function damageLastTablePage(path: string): Promise<void> {
  const image = await readFile(path);
  const pageSize = image.readUInt16BE(16) === 1 ? 65_536 : image.readUInt16BE(16);
  let page = image.length / pageSize;
  while (page > 1 && image[(page - 1) * pageSize] !== 13) page -= 1;
  if (page === 1) throw new Error(`${path} has no table leaf page after page 1`);
  const start = (page - 1) * pageSize;
  // Bytes 5 and 6 of the page header: where the cell content area begins.
  const cells = image.readUInt16BE(start + 5) || 65_536;
  image.fill(0xff, start + cells, start + pageSize);
  await writeFile(path, image);
}

/**
 * How a Yocto 5.0 server in no-history mode leaves package `version`: c0..c3 asked in turn, then c0
 * again (INSERT OR REPLACE moves it to 4); and a second package whose twelve checksums run past 9.
 */
export function legacyNohistRows(version: string): FixtureRow[] {
  return [
    [version, 'core2-64', 'c0', 4],
    [version, 'core2-64', 'c1', 1],
    [version, 'core2-64', 'c2', 2],
    [version, 'core2-64', 'c3', 3],
    ...Array.from({ length: 12 }, (_, index): FixtureRow => [`${version}-b`, 'core2-64', `k${index}`, index]),
  ];
}

/** A Yocto 5.0 server in history mode: every checksum keeps its first value. */
export function legacyHistRows(version: string): FixtureRow[] {
  return Array.from({ length: 11 }, (_, index): FixtureRow => [version, 'qemux86_64', `h${index}`, index]);
}

/**
 * A Yocto 6.0 server, no-history mode: c0…c10 get 0…10, then c0 comes back and gets a new row
 * "11" (text values; BitBake 6.0's own `max(value)` in SQL would pick "9" here).
 */
export function modernRows(version: string): FixtureRow[] {
  return [
    ...Array.from({ length: 11 }, (_, index): FixtureRow => [version, 'armv8a', `m${index}`, String(index)]),
    [version, 'armv8a', 'm0', '11'],
    // A package served through an upstream: local sub-revisions of upstream's "2".
    [`${version}-up`, 'armv8a', 'u0', '2'],
    [`${version}-up`, 'armv8a', 'u1', '2.0'],
    [`${version}-up`, 'armv8a', 'u2', '2.1'],
  ];
}

/**
 * `count` checksums of 64 characters in one no-history package, valued from `first` up: 400 fill
 * about ten 4 KiB table pages.
 */
export function manyLegacyRows(version: string, count: number, first = 0): FixtureRow[] {
  return Array.from({ length: count }, (_, index): FixtureRow => [version, 'core2-64', index.toString(16).padStart(64, '0'), first + index]);
}
