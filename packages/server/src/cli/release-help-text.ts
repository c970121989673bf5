import { DEFAULT_SERVER_ADDR, ENV_NAMES, SERVER_DEFAULTS } from './settings.js';

const DATABASE_OPTIONS = `  --database URL|PATH  the server's database: postgres:// URL or embedded store folder, found
                       as prserv server finds it. Default: ${SERVER_DEFAULTS.database}   env: ${ENV_NAMES.database}
  --config FILE        YAML or JSON file whose server: section names the database`;

/** `prserv history --help`. */
export const HISTORY_HELP = `Usage: prserv history VERSION PKGARCH [CHECKSUM] [--json] [--database URL|PATH]

Prints the package's timeline, read from the database: every PR it holds, in order, with the
checksum, when it was stored (database clock, UTC), how (get-pr-history, get-pr-nohist, their
-upstream forms on a chained server, import-one, import-tool), the client address it came from,
and the package's greatest PR just before. Rows stored before prserv recorded this say unknown.
With CHECKSUM, only that checksum's rows. Over the wire: prserv client history.

Options:
${DATABASE_OPTIONS}
  --json               one JSON object: version, pkgarch, revisions [{checksum, value, storedAt,
                       storedBy, storedHow, previousMax}]
  -h, --help           show this help

Exit codes: 0 printed (also for an unknown package: no rows), 1 the database failed, 2 bad usage.
`;

/** `prserv freeze --help`. */
export const FREEZE_HELP = `Usage: prserv freeze PATTERN [--pkgarch GLOB] [--reason TEXT] [--database URL|PATH]
       prserv freeze --list [--json] [--database URL|PATH]

Freezes every package whose version matches the glob PATTERN (and whose pkgarch matches
--pkgarch): from then on, on every server sharing the database, their PRs never move, as under
BitBake's PRSERV_LOCKDOWN. A get-pr that would store a new PR answers the package's greatest PR
instead and stores nothing; a frozen package with no PR yet is refused (invoke-error naming the
freeze: the build fails, as lockdown does); import-one into it is refused. Answers already stored
are served as before. Globs: * any characters, ? one, \\ takes the next character literally.
Quote them for the shell.

Options:
  --pkgarch GLOB       architectures the freeze covers. Default: * (all)
  --reason TEXT        why, shown by --list
  --list               print every freeze instead
  --json               with --list: JSON lines {version, pkgarch, frozenAt, frozenBy, reason}
${DATABASE_OPTIONS}
  -h, --help           show this help

The store must exist (a server has run on it, or an import made it): a mistyped path or URL
fails instead of getting a new store. The embedded store is one process's: stop its server to
freeze, or use PostgreSQL.
Exit codes: 0 frozen (also when it already was), 1 no store there or the database failed, 2 bad usage.
`;

/** `prserv thaw --help`. */
export const THAW_HELP = `Usage: prserv thaw PATTERN [--pkgarch GLOB] [--database URL|PATH]

Removes the freeze made by 'prserv freeze PATTERN' with the same --pkgarch (exactly those
patterns: thawing does not split a wider freeze). Its packages get new PRs again from the next
get-pr on every server.

Options:
  --pkgarch GLOB       as given to freeze. Default: *
${DATABASE_OPTIONS}
  -h, --help           show this help

Exit codes: 0 thawed, 1 no such freeze, no store there or the database failed, 2 bad usage.
`;

/** The lines of \`prserv client --help\` for the release-control commands. */
export const CLIENT_RELEASE_COMMANDS = `  preflight FILE [--history]                      what get-pr would answer for each tuple of FILE,
                                                  storing nothing: which would get a new PR,
                                                  stay, or are frozen; exit code 3 when any
                                                  would get a new PR or be refused (see below)
  history VERSION PKGARCH [CHECKSUM]              the package's timeline: each PR, when, how
                                                  and from where it was stored
`;

/** The preflight section of \`prserv client --help\`. */
export const CLIENT_PREFLIGHT_HELP = `Preflight: prserv client preflight FILE [--server HOST:PORT] [--history] [--json]
  FILE holds one tuple per line: "VERSION PKGARCH CHECKSUM" separated by blanks, or a JSON
  object {"version", "pkgarch", "checksum", "history"?}; blank lines and # comments are skipped.
  Speaks jsonrpc (pipelined) unless --protocol says otherwise; needs a prserv server
  (default ${DEFAULT_SERVER_ADDR}). Prints a summary and a line per tuple that would bump, is
  frozen or refused; --json prints {counts, entries}.
  Exit codes: 0 nothing would move, 3 some would get a new PR or be refused, 1 the server could
  not be reached or refused, 2 bad usage or an unreadable FILE.
`;
