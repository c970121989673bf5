import { DataToolError } from './data-tool-error.js';
import { readLines } from './line-reader.js';
import type { ImportSource, SourceRow } from './source-row.js';

/**
 * `PRAUTO$version$pkgarch$checksum = "value"`: a row of the file `bitbake-prserv-tool export`
 * writes (openembedded-core meta/lib/oe/prservice.py). The key splits at its last three `$`,
 * and what precedes them must be exactly `PRAUTO`, so no part may hold a `$`.
 */
const ROW_LINE = /^PRAUTO\$([^$]*)\$([^$]*)\$([^$]*?)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*$/;
/** `PRAUTO_version_pkgarch = "value"`: the greatest value of a package, read by lock-down builds only. */
const MAX_LINE = /^PRAUTO_\S*\s*=\s*(?:"[^"]*"|'[^']*')\s*$/;
/** Other assignments such a file may hold (`PRSERV_LOCKDOWN = "1"`), which carry no rows. */
const OTHER_ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_\-.:${}/+~]*\s*(?:\?\?=|\?=|:=|\+=|=\+|\.=|=\.|=)/;

/** True when the first bytes of a file look like a `bitbake-prserv-tool export` file. */
export function looksLikePrautoInc(head: string): boolean {
  return head.split(/\r?\n/).some((line) => line.startsWith('PRAUTO') || line.startsWith('#PR_core_ver') || line.startsWith('PRSERV_LOCKDOWN'));
}

/**
 * Opens a `bitbake-prserv-tool export` file (an `.inc` BitBake reads as configuration) for
 * import. Comments, blank lines, `PRAUTO_…` maxima and other assignments are passed over: the
 * maxima follow from the rows. A line that is none of these stops the import, naming it.
 */
export async function openPrautoIncSource(path: string): Promise<ImportSource> {
  return {
    description: `bitbake-prserv-tool export file ${path}`,
    rows: () => readIncRows(path),
    close: async () => {},
  };
}

async function* readIncRows(path: string): AsyncGenerator<SourceRow> {
  let number = 0;
  for await (const raw of readLines(path)) {
    number += 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const row = ROW_LINE.exec(line);
    if (row) {
      yield { version: row[1], pkgarch: row[2], checksum: row[3], value: row[4] ?? row[5], where: `${path}:${number}` };
      continue;
    }
    if (MAX_LINE.test(line) || (!line.startsWith('PRAUTO$') && OTHER_ASSIGNMENT.test(line))) continue;
    throw new DataToolError('SOURCE_MALFORMED', `${path}:${number}: not a line of a bitbake-prserv-tool export file: ${JSON.stringify(line.slice(0, 120))}`);
  }
}
