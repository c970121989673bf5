import { DEFAULT_SERVER_ADDR, ENV_NAMES, SERVER_DEFAULTS } from './config.js';

/** The options of `prserv server`, each with its default and environment variable. */
const SERVER_OPTIONS = `  --database URL|PATH    postgres:// or postgresql:// URL: PostgreSQL (durable; safe for many
                         replicas on one database). Anything else: folder of the embedded store
                         (PGlite; one process only; survives kill -9 but not power loss).
                         Default: ${SERVER_DEFAULTS.database}   env: ${ENV_NAMES.database}
  --bind HOST:PORT       address to listen on; [v6]:PORT for IPv6; 0.0.0.0:8585 for all IPv4.
                         Default: ${SERVER_DEFAULTS.bind_addr}   env: ${ENV_NAMES.bind_addr}
  --max-connections N    most PostgreSQL connections this server opens (its pool size).
                         Default: ${SERVER_DEFAULTS.max_connections}   env: ${ENV_NAMES.max_connections}
  --read-only            answer every request but never write (import-one answers null).
                         Default: off   env: ${ENV_NAMES.read_only}=1
  --nohist               legacy clients (BitBake before 2.10, no "history" in requests) are
                         served in no-history mode: PRs never go down.
                         Default: on   env: ${ENV_NAMES.nohist}=1
  --history              legacy clients are served in history mode: a checksum keeps its first PR.
                         Default: off   env: ${ENV_NAMES.nohist}=0
  --upstream HOST:PORT   extend an upstream PR server's numbering (BitBake --upstream): PRs of
                         packages known upstream become u.0, u.1, … above upstream's u; only
                         get-pr consults it. [v6]:PORT for IPv6. Default: none   env: ${ENV_NAMES.upstream}
  --sync-mode MODE       accepted for old bitbake-prserv invocations and ignored (sqlite era).
                         Default: none   env: ${ENV_NAMES.sync_mode}
  --config FILE          YAML or JSON file with a server: section (keys database, bind_addr,
                         max_connections, read_only, nohist, log_level, upstream, sync_mode).
                         Default: none (no config file)
  --log-level LEVEL      trace, debug (one line per request), info, warn, error, fatal, silent.
                         Default: ${SERVER_DEFAULTS.log_level}   env: ${ENV_NAMES.log_level}
`;

/** `prserv --help`. */
export const MAIN_HELP = `prserv — PR (Package Revision) server for BitBake/Yocto, a drop-in for bitbake-prserv

Usage:
  prserv server [options]              run the PR server in the foreground
  prserv client [options] <command>    ask a PR server
  prserv --help | --version

Settings come from flags, then environment variables, then the config file (--config FILE,
YAML or JSON with server: and client: sections), then defaults.

Server options:
${SERVER_OPTIONS}
Client: prserv client [--server HOST:PORT] [--json] <command>; the server address defaults to
${DEFAULT_SERVER_ADDR} (env: ${ENV_NAMES.server_addr}). Run "prserv client --help" for its commands.
`;

/** `prserv server --help`. */
export const SERVER_HELP = `Usage: prserv server [options]

Runs the PR server in the foreground until SIGTERM or SIGINT (Ctrl-C), then finishes the
requests in flight and exits 0. Logs are JSON lines on stdout.

Options:
${SERVER_OPTIONS}  -h, --help             show this help
`;

/** `prserv client --help`. */
export const CLIENT_HELP = `Usage: prserv client [--server HOST:PORT] [--json] <command> [arguments]

Commands:
  get-pr VERSION PKGARCH CHECKSUM [--history]     the PR for a checksum (allocated if new)
  test-pr VERSION PKGARCH CHECKSUM [--history]    the PR held for a checksum, or none
  test-package VERSION PKGARCH                    whether the package is known
  max-package-pr VERSION PKGARCH                  the greatest PR of the package, or none
  import-one VERSION PKGARCH CHECKSUM VALUE       store one row
  export [--version V] [--pkgarch A] [--checksum C] [--colinfo] [--history]
                                                  stored rows (all with --history, else the
                                                  newest per package)
  ping                                            check that the server answers
  is-readonly                                     whether the server is read-only

Options:
  --server HOST:PORT   the PR server. Default: ${DEFAULT_SERVER_ADDR}   env: ${ENV_NAMES.server_addr}
  --config FILE        YAML or JSON file with a client: section (key server_addr)
  --json               print JSON for scripts instead of readable text
  --timeout MS         per-request timeout. Default: 30000
  -h, --help           show this help

Exit codes: 0 success, 1 the server could not be reached or refused the request, 2 bad usage.
`;
