import { open } from 'node:fs/promises';
import { looksLikeBitbakeJsonExport, openBitbakeJsonExportSource } from './bitbake-json-export-source.js';
import { openBitbakeSqliteSource, SQLITE_MAGIC } from './bitbake-sqlite-source.js';
import { DataToolError } from './data-tool-error.js';
import { looksLikeJsonExport, openJsonExportSource } from './json-export-format.js';
import { looksLikePrautoInc, openPrautoIncSource } from './prauto-inc-source.js';
import type { ImportSource } from './source-row.js';

/** Options of {@link openImportSource}. */
export interface OpenImportSourceOptions {
  /** For a BitBake database with rows in several tables: the one to read. Default: the only one with rows. */
  readonly table?: string;
}

/**
 * Opens a file to import, recognising its kind by its first bytes: a BitBake PR database
 * (sqlite, any generation), a `bitbake-prserv-tool export` file, prserv's JSON export, or a
 * server's `export` answer saved as JSON (`prserv client export --json`).
 */
export async function openImportSource(path: string, options: OpenImportSourceOptions = {}): Promise<ImportSource> {
  const head = await readHead(path);
  if (head.toString('latin1', 0, SQLITE_MAGIC.length) === SQLITE_MAGIC) return openBitbakeSqliteSource(path, options);
  if (options.table !== undefined) {
    throw new DataToolError('INVALID_ARGUMENT', `--table applies to BitBake sqlite databases; ${path} is not one`);
  }
  const text = head.toString('utf8');
  if (looksLikeJsonExport(text)) return openJsonExportSource(path);
  if (looksLikeBitbakeJsonExport(text)) return openBitbakeJsonExportSource(path);
  if (looksLikePrautoInc(text) || /^\s*(#|$)/.test(text)) return openPrautoIncSource(path);
  throw new DataToolError(
    'SOURCE_UNREADABLE',
    `${path} is neither a BitBake PR database (sqlite), a bitbake-prserv-tool export file (PRAUTO$… lines), a prserv JSON export nor a saved export answer ({"metainfo", "datainfo"})`,
  );
}

async function readHead(path: string): Promise<Buffer> {
  let file;
  try {
    file = await open(path, 'r');
  } catch (cause) {
    throw new DataToolError('SOURCE_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    const buffer = Buffer.alloc(4096);
    // A directory opens, and fails only here (EISDIR).
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0).catch((cause: Error) => {
      throw new DataToolError('SOURCE_UNREADABLE', `cannot read ${path}: ${cause.message}`, { cause });
    });
    if (bytesRead === 0) throw new DataToolError('SOURCE_UNREADABLE', `${path} is empty`);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}
