import { DEFAULT_SERVER_ADDR, ENV_NAMES, SERVER_DEFAULTS } from './settings.js';
import { DATA_COMMANDS_SUMMARY } from './data-help-text.js';
import { CLIENT_PREFLIGHT_HELP, CLIENT_RELEASE_COMMANDS } from './release-help-text.js';
import { STRESS_DEFAULTS } from './stress/stress-settings.js';

/** The options of `prserv server`, each with its default and environment variable. */
const SERVER_OPTIONS = `  --database URL|PATH    postgres:// or postgresql:// URL: PostgreSQL (durable; safe for many
                         replicas on one database). A path: folder of the embedded store
                         (PGlite; one process only; survives kill -9 but not power loss).
                         Any other scheme:// is refused.
                         Default: ${SERVER_DEFAULTS.database}   env: ${ENV_NAMES.database}
  --bind HOST:PORT       address to listen on; [v6]:PORT for IPv6; 0.0.0.0:8585 or :8585 for
                         all IPv4 interfaces (off loopback without --allow, a warning is
                         logged: anyone who can reach the port may allocate).
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
                         get-pr (and preview-pr) consults it. [v6]:PORT for IPv6. Default: none   env: ${ENV_NAMES.upstream}
  --batch-size N         most requests one database round trip serves: concurrent lookups share
                         one statement, concurrent new PRs one transaction (one disk flush;
                         with --upstream, one transaction each).
                         Default: ${SERVER_DEFAULTS.batch_size}   env: ${ENV_NAMES.batch_size}
  --batch-wait MS        how long a batch may wait for more requests before it leaves. 0: it
                         leaves as soon as the previous round trip is back (no added latency).
                         Default: ${SERVER_DEFAULTS.batch_wait_ms}   env: ${ENV_NAMES.batch_wait_ms}
  --max-clients N        most client connections open at once; more are closed at accept (and
                         logged). Default: ${SERVER_DEFAULTS.max_clients}   env: ${ENV_NAMES.max_clients}
  --allow CIDR[,CIDR…]   networks clients may connect from, IPv4 or IPv6 (10.0.0.0/8,fd00::/8;
                         a bare address is one host); others are closed at accept (and logged).
                         Default: any   env: ${ENV_NAMES.allow}
  --allow-write CIDR[,…] networks whose clients may store PRs; clients from elsewhere are served
                         as by --read-only (get-pr answers without storing, import-one null).
                         Default: every client   env: ${ENV_NAMES.allow_write}
  --request-timeout S    seconds a client has to send a whole hello or request once it starts, or
                         to read answers the server holds for it; past it the connection is
                         dropped (and logged). Default: ${SERVER_DEFAULTS.request_timeout}   env: ${ENV_NAMES.request_timeout}
  --idle-timeout S       close connections with nothing in flight that send nothing for S
                         seconds (logged). Off by default: BitBake's builders keep one
                         connection for a whole build, quiet while they compile.
                         Default: ${SERVER_DEFAULTS.idle_timeout} (off)   env: ${ENV_NAMES.idle_timeout}
  --max-unread-bytes N   answer bytes held for a client that does not read them; past it the
                         server stops answering and reading that client until it reads.
                         Default: ${SERVER_DEFAULTS.max_unread_bytes}   env: ${ENV_NAMES.max_unread_bytes}
  --max-key-bytes N      longest version, pkgarch or checksum accepted, in UTF-8 bytes (at most
                         640; BitBake's own server takes any length up to its message limit).
                         Default: ${SERVER_DEFAULTS.max_key_bytes}   env: ${ENV_NAMES.max_key_bytes}
  --prepared-statements on|off
                         send the request-path statements as named prepared statements
                         (PostgreSQL). Turn off behind PgBouncer in transaction mode before 1.21
                         or with max_prepared_statements = 0 (docs/integration.md); costs CPU.
                         Default: on   env: ${ENV_NAMES.prepared_statements}
  --http HOST:PORT       serve /metrics (Prometheus), /healthz and /readyz over HTTP there.
                         Default: off   env: ${ENV_NAMES.http}
  --sync-mode MODE       accepted for old bitbake-prserv invocations and ignored (sqlite era).
                         Default: none   env: ${ENV_NAMES.sync_mode}
  --config FILE          YAML or JSON file with a server: section (keys database, bind_addr,
                         max_connections, read_only, nohist, log_level, upstream, batch_size,
                         batch_wait_ms, max_clients, allow and allow_write (a list or "a,b"),
                         request_timeout, idle_timeout, max_unread_bytes, max_key_bytes,
                         prepared_statements, http, log_format, sync_mode).
                         Default: none (no config file)
  --log-level LEVEL      trace, debug (one line per request), info, warn, error, fatal, silent.
                         Default: ${SERVER_DEFAULTS.log_level}   env: ${ENV_NAMES.log_level}
  --log-format FORMAT    json (one JSON object per line), pretty (readable lines), or auto:
                         pretty when stdout is a terminal, else json.
                         Default: ${SERVER_DEFAULTS.log_format}   env: ${ENV_NAMES.log_format}
`;

/** `prserv --help`. */
export const MAIN_HELP = `prserv — PR (Package Revision) server for BitBake/Yocto, a drop-in for bitbake-prserv

Usage:
  prserv server [options]              run the PR server in the foreground
  prserv client [options] <command>    ask a PR server
${DATA_COMMANDS_SUMMARY}  prserv history|freeze|thaw …         release control on the database: a package's timeline
                                       (why it got its PR), frozen packages (see --help of each)
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
requests in flight and exits 0. Logs go to stdout: JSON lines, or readable lines on a
terminal (--log-format).

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
                                                  rows at each package's greatest PR)
  ping                                            check that the server answers
  is-readonly                                     whether the server is read-only
  stats                                           requests answered since the server started (or
                                                  the last reset-stats), with latency, per method
  reset-stats                                     start the server's counts afresh (prints the old)
${CLIENT_RELEASE_COMMANDS}  stress [stress options]                         load the server with get-pr from many connections
                                                  and check every answer (see below)

Options:
  --server HOST:PORT   the PR server. Default: ${DEFAULT_SERVER_ADDR}   env: ${ENV_NAMES.server_addr}
  --config FILE        YAML or JSON file with a client: section (key server_addr)
  --json               print JSON for scripts instead of readable text
  --timeout MS         per-request timeout (not for stress). Default: 30000
  --protocol P         asyncrpc (BitBake's; any PR server) or jsonrpc (prserv's envelope).
                       Default: asyncrpc (preflight: jsonrpc)
  -h, --help           show this help

Exit codes: 0 success, 1 the server could not be reached or refused the request, 2 bad usage.

${CLIENT_PREFLIGHT_HELP}
Stress: prserv client stress [--server HOST:PORT]... [options]
  Opens N connections, each sending get-pr requests one at a time as BitBake does, until the
  request count or the duration cap is reached; then reads back test-pr of every checksum and
  max-package-pr of every package. Reports req/s and latency, and checks every answer:
  well-formed, history-stable, unique-values, gap-free, read-back, monotonic-in-time. A read-only server is
  refused (exit 2); packages holding dotted PRs (a chained server's) are not judged by
  unique-values, gap-free and monotonic-in-time.
  --server HOST:PORT     a server; repeat for replicas sharing one database (connections are
                         spread round-robin). Default: as above   env: ${ENV_NAMES.server_addr}
  --connections N        concurrent connections. Default: ${STRESS_DEFAULTS.connections}
  --requests N           requests in all. Default: ${STRESS_DEFAULTS.requests}
  --duration S           cap on the load's duration, in seconds. Default: ${STRESS_DEFAULTS.durationS}
  --new-ratio R          probability that a request asks a brand-new checksum; the others ask a
                         checksum already asked of the package. Default: ${STRESS_DEFAULTS.newRatio}
  --packages K           packages the requests are spread over uniformly. Default: ${STRESS_DEFAULTS.packages}
  --mode MODE            history ("history": true), nohist ("history": false) or legacy (no
                         history key, integer answers, as BitBake before 2.10). Default: ${STRESS_DEFAULTS.mode}
  --protocol P           asyncrpc (BitBake's) or jsonrpc (prserv's envelope; not with --mode
                         legacy). Default: ${STRESS_DEFAULTS.protocol}
  --package-prefix NAME  package versions are NAME-0 … NAME-(K-1). Default: stress-<random hex>,
                         new packages on every run; a fixed name grows the same packages run
                         after run (runs sharing a name must not overlap in time)
  --pkgarch ARCH         pkgarch of every package. Default: ${STRESS_DEFAULTS.pkgarch}
  --config FILE          YAML or JSON file with a client: section (key server_addr)
  --json                 print one JSON object: ok, servers, mode, connections, packages,
                         newRatio, requests, errors, durationMs, requestsPerSecond,
                         latencyMs {p50, p95, p99, max}, checks [{name, ok, detail}]
  Exit codes: 0 every check holds and no request failed, 1 a check failed, 2 bad usage,
  3 no check failed but requests failed (invoke-error, dropped or refused connection).
`;
