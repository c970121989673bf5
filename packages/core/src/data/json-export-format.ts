import type { RevisionRow } from '../engine/revision-keys.js';
import { malformed, parseJson, readJsonDocument } from './json-document.js';
import { readLines } from './line-reader.js';
import type { ImportSource, SourceRow } from './source-row.js';

/** The `format` of prserv's JSON export (docs/data-tools.md). */
export const JSON_EXPORT_FORMAT = 'prserv-export';
/** The version of that format this release writes and reads. */
export const JSON_EXPORT_FORMAT_VERSION = 1;

/** What the header of a JSON export states about its rows. */
export interface JsonExportHeader {
  /** All rows (true) or only each package's greatest (false). */
  readonly history: boolean;
  /** Filters the export was made with; null when none. */
  readonly version: string | null;
  readonly pkgarch: string | null;
}

/**
 * The header line of a JSON export. The file is one JSON object, laid out so that a reader can
 * stream it line by line: this header opening the `rows` array, then one row object per line
 * (each but the last followed by a comma), then the line `]}`.
 */
export function jsonExportHead(header: JsonExportHeader): string {
  const head = { format: JSON_EXPORT_FORMAT, formatVersion: JSON_EXPORT_FORMAT_VERSION, ...header };
  return `${JSON.stringify(head).slice(0, -1)},"rows":[\n`;
}

/** One row line of a JSON export (without the separating comma). */
export function jsonExportRow(row: RevisionRow): string {
  return JSON.stringify({ version: row.version, pkgarch: row.pkgarch, checksum: row.checksum, value: row.value });
}

/** The closing line of a JSON export. */
export const JSON_EXPORT_TAIL = ']}\n';

/** True when the first bytes of a file are the start of prserv's JSON export. */
export function looksLikeJsonExport(head: string): boolean {
  return /^\s*\{\s*"format"\s*:\s*"prserv-export"/.test(head);
}

/** Opens a JSON export of prserv for import; rows are read as a stream, one line at a time. */
export async function openJsonExportSource(path: string): Promise<ImportSource> {
  return {
    description: `prserv JSON export ${path}`,
    rows: () => readJsonRows(path),
    close: async () => {},
  };
}

async function* readJsonRows(path: string): AsyncGenerator<SourceRow> {
  // One iterator for the header and the rows: leaving a for-await loop would close it.
  const lines = readLines(path);
  let number = 0;
  let header: string | undefined;
  try {
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      number += 1;
      if (next.value.trim() !== '') {
        header = next.value.trim();
        break;
      }
    }
    if (header === undefined || !header.endsWith('"rows":[')) {
      await lines.return(undefined);
      yield* readWholeJson(path);
      return;
    }
    checkHeader(parseJson(`${header}]}`, path, number), path);
    let closed = false;
    for (let next = await lines.next(); !next.done; next = await lines.next()) {
      number += 1;
      const line = next.value.trim();
      if (line === '') continue;
      if (closed) throw malformed(path, number, 'text after the closing "]}"');
      if (line === ']}') {
        closed = true;
        continue;
      }
      const row = parseJson(line.endsWith(',') ? line.slice(0, -1) : line, path, number);
      if (typeof row !== 'object' || row === null || Array.isArray(row)) throw malformed(path, number, 'a row must be an object');
      const { version, pkgarch, checksum, value } = row as Record<string, unknown>;
      yield { version, pkgarch, checksum, value, where: `${path}:${number}` };
    }
    if (!closed) throw malformed(path, number, 'the file ends before the closing "]}" (cut short?)');
  } finally {
    await lines.return(undefined);
  }
}

/** An export not laid out one row per line (re-formatted by hand or a tool): read whole. */
async function* readWholeJson(path: string): AsyncGenerator<SourceRow> {
  const document = await readJsonDocument(path, 'must keep one row per line, as prserv export writes it');
  checkHeader(document, path);
  const rows = (document as { rows?: unknown }).rows;
  if (!Array.isArray(rows)) throw malformed(path, 1, '"rows" must be an array');
  for (const [index, row] of rows.entries()) {
    const { version, pkgarch, checksum, value } = (row ?? {}) as Record<string, unknown>;
    yield { version, pkgarch, checksum, value, where: `${path} row ${index + 1}` };
  }
}

function checkHeader(document: unknown, path: string): void {
  const head = document as { format?: unknown; formatVersion?: unknown } | null;
  if (head?.format !== JSON_EXPORT_FORMAT) throw malformed(path, 1, `not a prserv JSON export (no "format": "${JSON_EXPORT_FORMAT}")`);
  if (head.formatVersion !== JSON_EXPORT_FORMAT_VERSION) {
    throw malformed(path, 1, `format version ${JSON.stringify(head.formatVersion)} is not one this release reads (${JSON_EXPORT_FORMAT_VERSION})`);
  }
}
