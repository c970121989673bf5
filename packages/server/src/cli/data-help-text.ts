import { ENV_NAMES, SERVER_DEFAULTS } from './settings.js';

/** `--database` and `--config` as the data commands take them (as `prserv server` does). */
const DATABASE_OPTIONS = `  --database URL|PATH    postgres:// or postgresql:// URL, or the folder of an embedded store
                         (whose server must be stopped: one process at a time).
                         Default: ${SERVER_DEFAULTS.database}   env: ${ENV_NAMES.database}
  --config FILE          YAML or JSON file whose server.database names the database`;

/** The lines to add to `prserv --help` for the data commands. */
export const DATA_COMMANDS_SUMMARY = `  prserv import FILE… [options]       import BitBake PR databases, export files, prserv JSON
  prserv export [options]              write the stored PRs as json, inc or csv
  prserv verify [options]              check the invariants of a store
  prserv migrate --from DB --to DB     copy a whole store into an empty one, then check it
`;

/** `prserv import --help`. */
export const IMPORT_HELP = `Usage: prserv import FILE… [options]
       prserv import --from-server HOST:PORT [options]

Imports PR history into the store, all sources in one transaction. Each FILE is recognised by
its content:
  - a BitBake PR database (sqlite) of any generation: PRMAIN_nohist / PRMAIN_hist (Yocto ≤ 5.0,
    integer values) or PRMAIN (Yocto ≥ 5.1, text revisions). Read, never written. A file with a
    non-empty -wal beside it belongs to a running BitBake server: stop it first, or use
    --from-server. A file with rows in more than one table needs --table;
  - a bitbake-prserv-tool export file (PRAUTO$version$pkgarch$checksum = "value" lines);
  - a JSON export of prserv (prserv export --format json);
  - a server's export answer saved as JSON (prserv client export --history --json).

Max-guard: an import may not put a revision below what the store has (a checksum's first
revision, another checksum's revision, or a new checksum at or under the package's greatest).
Such rows are listed and nothing is written, unless --allow-lower.

Options:
  --from-server HOST:PORT  also import every row of a running PR server (BitBake's or prserv)
                         through its export request; no need to stop it or find its file
  --table NAME           the table of a BitBake database to read (PRMAIN_nohist, PRMAIN_hist,
                         PRMAIN), for a file with rows in several
  --dry-run              report what would change (new rows, packages, conflicts); write no PR
                         (a store that is not there yet is created empty, as by the import)
  --allow-lower          write rows the max-guard stops too
  --batch-size N         rows per statement while staging. Default: 5000
  --json                 print the report as one JSON object
${DATABASE_OPTIONS}
  -h, --help             show this help

A progress line is drawn on stderr when it is a terminal. The last line is a summary.
Exit codes: 0 imported (or, with --dry-run, would import), 1 the max-guard stopped the import
or a source or the store failed, 2 bad usage.
`;

/** `prserv export --help`. */
export const EXPORT_HELP = `Usage: prserv export [options]

Writes the stored PRs, streaming (a million rows take bounded memory), in one snapshot.

Options:
  --format json|inc|csv  json: prserv's own format (one row per line; prserv import reads it).
                         inc: what bitbake-prserv-tool import reads (PRAUTO$… lines, and each
                         package's PRAUTO_version_pkgarch maximum). csv: version,pkgarch,
                         checksum,value with a header line. Default: json
  --history              every stored row; without it, only the rows at each package's greatest
                         PR (as BitBake's export). Default: off
  --version V            only this version
  --pkgarch A            only this pkgarch
  --output FILE          write to FILE (a regular file is replaced once complete; a device, FIFO
                         or the target of a symbolic link is written in place). Default: standard output
${DATABASE_OPTIONS}
  -h, --help             show this help

Exit codes: 0 written, 1 no store there (none is created), the store failed, or a row cannot be
spelled in the format, 2 bad usage.
`;

/** `prserv verify --help`. */
export const VERIFY_HELP = `Usage: prserv verify [options]

Checks a store: the schema is the one this release made; every revision is well-formed and
canonical; no revision of a package is held by two checksums (except in packages served through
an upstream, where a chained server copies upstream revisions: reported as a note); every key
fits the default key limit of requests (a note otherwise). Reads only: where there is no store,
it says so (exit code 1) and creates none.

Options:
  --json                 print the report as one JSON object
${DATABASE_OPTIONS}
  -h, --help             show this help

Exit codes: 0 no error found, 1 errors found or the store failed, 2 bad usage.
`;

/** `prserv migrate --help`. */
export const MIGRATE_HELP = `Usage: prserv migrate --from SOURCE --to TARGET

Copies every row of a store into an empty one (embedded → PostgreSQL, PostgreSQL →
PostgreSQL, …) in one transaction on the target, then checks that both hold the same rows and
the same greatest PR per package. Stop the servers of an embedded source first; servers on a
PostgreSQL source may keep running, but rows they add during the copy make the check fail.

Options:
  --from URL|PATH        the store to copy: postgres:// URL or embedded store folder (must exist)
  --to URL|PATH          the store to fill (created if missing; must hold no rows)
  --batch-size N         rows per statement. Default: 5000
  -h, --help             show this help

Exit codes: 0 copied and checked, 1 the target is not empty, a store failed or the check
failed, 2 bad usage.
`;
