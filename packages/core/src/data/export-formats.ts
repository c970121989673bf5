import type { RevisionRow } from '../engine/revision-keys.js';
import { compareRevisions } from '../engine/revision.js';
import { DataToolError } from './data-tool-error.js';
import { JSON_EXPORT_TAIL, type JsonExportHeader, jsonExportHead, jsonExportRow } from './json-export-format.js';

/** Formats of `prserv export`. */
export const EXPORT_FORMATS = ['json', 'inc', 'csv'] as const;

/** One of {@link EXPORT_FORMATS}. */
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** True when `text` names an {@link ExportFormat}. */
export function isExportFormat(text: string): text is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(text);
}

/** Rows per chunk of text: few enough to stay small, enough that writing is not per row. */
const ROWS_PER_CHUNK = 1000;

/**
 * Formats rows as text, in chunks, as they come: memory stays bounded whatever their number.
 * - `json`: prserv's own export (docs/data-tools.md), which `prserv import` reads;
 * - `inc`: what `bitbake-prserv-tool import` reads, `PRAUTO$version$pkgarch$checksum = "value"`
 *   lines, each package followed by its `PRAUTO_version_pkgarch = "max"` line (read by lock-down
 *   builds). The rows must come ordered by package, as {@link streamRevisions} gives them;
 * - `csv`: `version,pkgarch,checksum,value` with a header line (RFC 4180 quoting).
 */
export async function* formatRevisions(rows: AsyncIterable<RevisionRow>, format: ExportFormat, header: JsonExportHeader): AsyncGenerator<string> {
  const lines: string[] = [];
  if (format === 'json') {
    yield jsonExportHead(header);
    let first = true;
    for await (const row of rows) {
      lines.push(first ? jsonExportRow(row) : `,\n${jsonExportRow(row)}`);
      first = false;
      if (lines.length >= ROWS_PER_CHUNK) yield lines.splice(0).join('');
    }
    lines.push(first ? '' : '\n', JSON_EXPORT_TAIL);
    yield lines.join('');
    return;
  }
  if (format === 'csv') {
    lines.push('version,pkgarch,checksum,value\n');
    for await (const row of rows) {
      lines.push(`${csvField(row.version)},${csvField(row.pkgarch)},${csvField(row.checksum)},${row.value}\n`);
      if (lines.length >= ROWS_PER_CHUNK) yield lines.splice(0).join('');
    }
    yield lines.join('');
    return;
  }
  lines.push(
    `# PR values exported by prserv (${header.history ? 'every stored revision' : 'each package\u2019s greatest revision'}).\n`,
    '# Read by: bitbake-prserv-tool import FILE (or prserv import FILE)\n\n',
  );
  let current: { version: string; pkgarch: string; max: string } | null = null;
  for await (const row of rows) {
    checkIncRow(row);
    if (current !== null && (current.version !== row.version || current.pkgarch !== row.pkgarch)) {
      lines.push(incMaxLine(current));
      current = null;
    }
    if (current === null) current = { version: row.version, pkgarch: row.pkgarch, max: row.value };
    else if (compareRevisions(row.value, current.max) > 0) current.max = row.value;
    lines.push(`PRAUTO$${row.version}$${row.pkgarch}$${row.checksum} = "${row.value}"\n`);
    if (lines.length >= ROWS_PER_CHUNK) yield lines.splice(0).join('');
  }
  if (current !== null) lines.push(incMaxLine(current));
  yield lines.join('');
}

function incMaxLine(pkg: { version: string; pkgarch: string; max: string }): string {
  return `PRAUTO_${pkg.version}_${pkg.pkgarch} = "${pkg.max}"\n`;
}

/**
 * Characters BitBake accepts in a variable name, less `$`, `{` and `}`: a `$` would move the
 * split of the key (its importer splits at the last three), braces would be expanded.
 */
const INC_KEY_PART = /^[A-Za-z0-9\-_+./~:]+$/;

/**
 * What BitBake reads as an operation in a variable name: `:append`, `:prepend`, `:remove` apply to
 * the name before them, and since Yocto 3.4 the old spellings with `_` stop the parse
 * (`data_smart.setVar`, "old override syntax").
 */
const INC_OPERATION = /[_:](?:append|prepend|remove)/;

function checkIncRow(row: RevisionRow): void {
  for (const name of ['version', 'pkgarch', 'checksum'] as const) {
    if (!INC_KEY_PART.test(row[name])) {
      throw new DataToolError(
        'FORMAT_UNSUITABLE',
        `the ${name} ${JSON.stringify(row[name])} cannot be written in a bitbake-prserv-tool file (it allows letters, digits and - _ + . / ~ : only); export as json or csv instead`,
      );
    }
  }
  // Both names the row is written under: its own line and its package's maximum line.
  for (const variable of [`PRAUTO$${row.version}$${row.pkgarch}$${row.checksum}`, `PRAUTO_${row.version}_${row.pkgarch}`]) {
    const operation = INC_OPERATION.exec(variable);
    if (operation) {
      throw new DataToolError(
        'FORMAT_UNSUITABLE',
        `the variable ${JSON.stringify(variable)} holds ${JSON.stringify(operation[0])}, which BitBake reads as an operation, not a name; export as json or csv instead`,
      );
    }
  }
}

function csvField(text: string): string {
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}
