import { malformed, readJsonDocument } from './json-document.js';
import type { ImportSource, SourceRow } from './source-row.js';

/**
 * True when the first bytes of a file are the start of the answer of a PR server's `export`
 * call as it comes over the wire: `{"metainfo": {…}, "datainfo": [...]}` (what
 * `prserv client export --json` prints, from prserv or BitBake's own server).
 */
export function looksLikeBitbakeJsonExport(head: string): boolean {
  return /^\s*\{\s*"(metainfo|datainfo)"\s*:/.test(head);
}

/**
 * Opens a saved `export` answer for import. Its `datainfo` rows are what the server sent (every
 * row when asked with history, otherwise each package's greatest); values are text (prserv,
 * BitBake 5.1 and later) or integers (BitBake 5.0 and earlier). `metainfo` describes the
 * server's table and is not needed to read the rows.
 */
export async function openBitbakeJsonExportSource(path: string): Promise<ImportSource> {
  return {
    description: `export answer (JSON) ${path}`,
    rows: () => readExportRows(path),
    close: async () => {},
  };
}

async function* readExportRows(path: string): AsyncGenerator<SourceRow> {
  const document = await readJsonDocument(path, 'cannot be read; export the rows with prserv export --format json instead');
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw malformed(path, 1, 'an export answer must be an object with "metainfo" and "datainfo"');
  }
  const { metainfo, datainfo } = document as { metainfo?: unknown; datainfo?: unknown };
  if (metainfo !== undefined && (typeof metainfo !== 'object' || metainfo === null || Array.isArray(metainfo))) {
    throw malformed(path, 1, '"metainfo" must be an object');
  }
  if (!Array.isArray(datainfo)) throw malformed(path, 1, '"datainfo" must be an array of rows');
  for (const [index, row] of datainfo.entries()) {
    const { version, pkgarch, checksum, value } = (typeof row === 'object' && row !== null ? row : {}) as Record<string, unknown>;
    yield { version, pkgarch, checksum, value, where: `${path} row ${index + 1}` };
  }
}
