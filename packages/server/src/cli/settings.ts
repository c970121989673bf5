import { DEFAULT_COALESCER_BOUNDS, DEFAULT_EMBEDDED_PATH, DEFAULT_POOL_SIZE, isPostgresUrl, KEY_BYTES_CEILING, MAX_KEY_BYTES, MAX_TIMER_MS } from '@prserv/core';
import { parseServerAddress } from '@prserv/client';
import { DEFAULT_MAX_CLIENTS, DEFAULT_MAX_UNREAD_BYTES, DEFAULT_PORT, DEFAULT_REQUEST_TIMEOUT_MS, parseNetworks } from '../daemon/pr-server.js';
import { LOG_LEVELS, type LogLevel } from '../daemon/logger.js';
import type { ConfigFile } from './config-file.js';
import { ConfigError } from './errors.js';

// The timer limit is the daemon's; settings and the client command check against it.

/** Everything `prserv server` runs with, after flags, environment, config file and defaults. */
export interface ServerSettings {
  readonly database: string;
  readonly host: string;
  readonly port: number;
  readonly maxConnections: number;
  readonly readOnly: boolean;
  /** No-history mode for legacy requests (BitBake's default). */
  readonly nohist: boolean;
  readonly logLevel: LogLevel;
  /** `HOST:PORT` of an upstream PR server whose numbering get-pr extends, or null. */
  readonly upstream: string | null;
  /** True when a sqlite-era `--sync-mode` / `PRSERV_SYNC_MODE` was given (ignored). */
  readonly syncModeGiven: boolean;
  /** Most requests one database round trip serves. */
  readonly batchSize: number;
  /** How long a batch may wait for more requests, in ms (0: it leaves when a round trip is free). */
  readonly batchWaitMs: number;
  /** Most client connections open at once. */
  readonly maxClients: number;
  /** Networks clients may connect from, or null for any. */
  readonly allow: readonly string[] | null;
  /** Networks whose clients may store revisions (others are served read-only), or null for all. */
  readonly allowWrite: readonly string[] | null;
  /** Time a client has to send a whole hello or request, or to read answers held for it, in ms. */
  readonly requestTimeoutMs: number;
  /** A connection with nothing in flight is closed after this long, in ms; 0: never. */
  readonly idleTimeoutMs: number;
  /** Answer bytes buffered for a client that has not read them before the server waits for it. */
  readonly maxUnreadBytes: number;
  /** Where `/metrics`, `/healthz` and `/readyz` are served, or null for nowhere. */
  readonly http: { readonly host: string; readonly port: number } | null;
  /** `json` lines, `pretty` for people, or `auto`: pretty when stdout is a terminal. */
  readonly logFormat: LogFormat;
  /** Longest version, pkgarch or checksum accepted, in UTF-8 bytes. */
  readonly maxKeyBytes: number;
  /** Named prepared statements on PostgreSQL (off behind a pooler that cannot keep them). */
  readonly preparedStatements: boolean;
}

/** How log lines are written. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Where `prserv client` connects. */
export interface ClientSettings {
  readonly serverAddr: string;
}

/** Defaults of `prserv server`, also shown by `--help`. */
export const SERVER_DEFAULTS = {
  database: DEFAULT_EMBEDDED_PATH,
  bind_addr: `localhost:${DEFAULT_PORT}`,
  max_connections: DEFAULT_POOL_SIZE,
  read_only: false,
  nohist: true,
  log_level: 'info' as LogLevel,
  batch_size: DEFAULT_COALESCER_BOUNDS.maxBatchSize,
  batch_wait_ms: DEFAULT_COALESCER_BOUNDS.maxWaitMs,
  max_clients: DEFAULT_MAX_CLIENTS,
  request_timeout: DEFAULT_REQUEST_TIMEOUT_MS / 1000,
  idle_timeout: 0,
  max_unread_bytes: DEFAULT_MAX_UNREAD_BYTES,
  log_format: 'auto' as LogFormat,
  max_key_bytes: MAX_KEY_BYTES,
  prepared_statements: true,
} as const;

/** Default address of `prserv client`. */
export const DEFAULT_SERVER_ADDR = `localhost:${DEFAULT_PORT}`;

/** Environment variable of each setting. */
export const ENV_NAMES = {
  database: 'PRSERV_DATABASE',
  bind_addr: 'PRSERV_BIND_ADDR',
  max_connections: 'PRSERV_MAX_CONNECTIONS',
  read_only: 'PRSERV_READ_ONLY',
  nohist: 'PRSERV_NOHIST',
  sync_mode: 'PRSERV_SYNC_MODE',
  log_level: 'PRSERV_LOG_LEVEL',
  upstream: 'PRSERV_UPSTREAM',
  batch_size: 'PRSERV_BATCH_SIZE',
  batch_wait_ms: 'PRSERV_BATCH_WAIT_MS',
  max_clients: 'PRSERV_MAX_CLIENTS',
  allow: 'PRSERV_ALLOW',
  allow_write: 'PRSERV_ALLOW_WRITE',
  request_timeout: 'PRSERV_REQUEST_TIMEOUT',
  idle_timeout: 'PRSERV_IDLE_TIMEOUT',
  max_unread_bytes: 'PRSERV_MAX_UNREAD_BYTES',
  http: 'PRSERV_HTTP',
  log_format: 'PRSERV_LOG_FORMAT',
  max_key_bytes: 'PRSERV_MAX_KEY_BYTES',
  prepared_statements: 'PRSERV_PREPARED_STATEMENTS',
  server_addr: 'PRSERV_SERVER_ADDR',
} as const;

/** A setting as given by one source, not yet checked. */
type Raw = string | number | boolean | undefined;

/** Server settings as given on the command line. */
export interface ServerFlags {
  database?: string;
  bind?: string;
  maxConnections?: string;
  readOnly?: boolean;
  nohist?: boolean;
  logLevel?: string;
  syncMode?: string;
  upstream?: string;
  batchSize?: string;
  batchWaitMs?: string;
  maxClients?: string;
  allow?: string;
  allowWrite?: string;
  requestTimeout?: string;
  idleTimeout?: string;
  maxUnreadBytes?: string;
  http?: string;
  logFormat?: string;
  maxKeyBytes?: string;
  preparedStatements?: string;
}

/** Resolves server settings: flags > environment > config file > defaults. */
export function resolveServerSettings(
  flags: ServerFlags,
  env: Readonly<Record<string, string | undefined>>,
  file: ConfigFile = { server: {}, client: {} },
): ServerSettings {
  const pick = (flag: Raw, key: keyof typeof ENV_NAMES, fileKey: string): { value: Raw; source: string } => {
    if (flag !== undefined) return { value: flag, source: flagName(key) };
    const fromEnv = env[ENV_NAMES[key]];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: ENV_NAMES[key] };
    if (file.server[fileKey] !== undefined && file.server[fileKey] !== null) {
      return { value: file.server[fileKey] as Raw, source: `server.${fileKey} in the config file` };
    }
    return { value: undefined, source: 'default' };
  };

  const databaseSetting = pick(flags.database, 'database', 'database');
  const database = asString(databaseSetting) ?? SERVER_DEFAULTS.database;
  checkDatabase(database, databaseSetting.source);
  const bindSetting = pick(flags.bind, 'bind_addr', 'bind_addr');
  const { host, port } = parseBind(asString(bindSetting) ?? SERVER_DEFAULTS.bind_addr, bindSetting.source);
  const maxSetting = pick(flags.maxConnections, 'max_connections', 'max_connections');
  const maxConnections = asPositiveInteger(maxSetting) ?? SERVER_DEFAULTS.max_connections;
  const readOnly = asBoolean(pick(flags.readOnly, 'read_only', 'read_only')) ?? SERVER_DEFAULTS.read_only;
  const nohist = asBoolean(pick(flags.nohist, 'nohist', 'nohist')) ?? SERVER_DEFAULTS.nohist;
  const levelSetting = pick(flags.logLevel, 'log_level', 'log_level');
  const level = asString(levelSetting) ?? SERVER_DEFAULTS.log_level;
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ConfigError(`invalid ${levelSetting.source} ${JSON.stringify(level)}: expected one of ${LOG_LEVELS.join(', ')}`);
  }
  const upstreamSetting = pick(flags.upstream, 'upstream', 'upstream');
  const upstream = asString(upstreamSetting) ?? null;
  if (upstream !== null) {
    try {
      parseServerAddress(upstream);
    } catch (error) {
      throw new ConfigError(`invalid ${upstreamSetting.source} ${JSON.stringify(upstream)}: expected HOST:PORT or [IPv6]:PORT`, { cause: error });
    }
  }
  const syncModeGiven = pick(flags.syncMode, 'sync_mode', 'sync_mode').value !== undefined;
  const batchSize = asPositiveInteger(pick(flags.batchSize, 'batch_size', 'batch_size')) ?? SERVER_DEFAULTS.batch_size;
  const batchWaitMs = asMilliseconds(pick(flags.batchWaitMs, 'batch_wait_ms', 'batch_wait_ms')) ?? SERVER_DEFAULTS.batch_wait_ms;
  const maxClients = asPositiveInteger(pick(flags.maxClients, 'max_clients', 'max_clients')) ?? SERVER_DEFAULTS.max_clients;
  const allow = asNetworks(pick(flags.allow, 'allow', 'allow'));
  const allowWrite = asNetworks(pick(flags.allowWrite, 'allow_write', 'allow_write'));
  const requestTimeout = asSeconds(pick(flags.requestTimeout, 'request_timeout', 'request_timeout'), false) ?? SERVER_DEFAULTS.request_timeout;
  const idleTimeout = asSeconds(pick(flags.idleTimeout, 'idle_timeout', 'idle_timeout'), true) ?? SERVER_DEFAULTS.idle_timeout;
  const maxUnreadBytes = asPositiveInteger(pick(flags.maxUnreadBytes, 'max_unread_bytes', 'max_unread_bytes')) ?? SERVER_DEFAULTS.max_unread_bytes;
  const httpSetting = pick(flags.http, 'http', 'http');
  const httpText = asString(httpSetting);
  const http = httpText === undefined || httpText === '' ? null : parseBind(httpText, httpSetting.source);
  const formatSetting = pick(flags.logFormat, 'log_format', 'log_format');
  const logFormat = asString(formatSetting) ?? SERVER_DEFAULTS.log_format;
  if (!(LOG_FORMATS as readonly string[]).includes(logFormat)) {
    throw new ConfigError(`invalid ${formatSetting.source} ${JSON.stringify(logFormat)}: expected one of ${LOG_FORMATS.join(', ')}`);
  }
  const keySetting = pick(flags.maxKeyBytes, 'max_key_bytes', 'max_key_bytes');
  const maxKeyBytes = asPositiveInteger(keySetting) ?? SERVER_DEFAULTS.max_key_bytes;
  if (maxKeyBytes > KEY_BYTES_CEILING) {
    throw new ConfigError(
      `invalid ${keySetting.source} ${maxKeyBytes}: at most ${KEY_BYTES_CEILING} (a row's key must fit one index entry)`,
    );
  }
  const preparedStatements =
    asBoolean(pick(flags.preparedStatements, 'prepared_statements', 'prepared_statements')) ?? SERVER_DEFAULTS.prepared_statements;
  return {
    database,
    host,
    port,
    maxConnections,
    readOnly,
    nohist,
    logLevel: level as LogLevel,
    upstream,
    syncModeGiven,
    batchSize,
    batchWaitMs,
    maxClients,
    allow,
    allowWrite,
    requestTimeoutMs: secondsToMs(requestTimeout),
    idleTimeoutMs: secondsToMs(idleTimeout),
    maxUnreadBytes,
    http,
    logFormat: logFormat as LogFormat,
    maxKeyBytes,
    preparedStatements,
  };
}

/**
 * A database is a PostgreSQL URL or a folder of the embedded store. Any other `scheme://` is a
 * mistake (pg://, postgress://, file://…) that would otherwise quietly become a folder named after it.
 */
function checkDatabase(database: string, source: string): void {
  if (database.trim() === '') throw new ConfigError(`invalid ${source}: must not be empty`);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(database)?.[1];
  if (scheme !== undefined && !isPostgresUrl(database)) {
    throw new ConfigError(
      `invalid ${source}: "${scheme}://" is not a database URL prserv knows; give postgres://… or postgresql://… for PostgreSQL, or a folder path for the embedded store`,
    );
  }
  if (isPostgresUrl(database)) {
    const mistake = postgresUrlMistake(database);
    // The URL itself is never echoed: it may hold a password.
    if (mistake) throw new ConfigError(`invalid ${source}: ${mistake}`);
  }
}

/**
 * What keeps a PostgreSQL URL from being opened, or undefined. Parsed as `pg` parses it
 * (pg-connection-string: spaces encoded first, an empty host after `user@` allowed), so that
 * nothing `pg` would open is refused; a port must be 1–65535, in the authority or `?port=`.
 */
export function postgresUrlMistake(url: string): string | undefined {
  const port = authorityPort(url);
  // The port is not echoed: with a '/' in an unencoded password, these digits may be the password's.
  if (port !== undefined && !isPort(port)) return 'the port of the PostgreSQL URL is not between 1 and 65535';
  let parsed: URL;
  try {
    const text = / |%[^a-f0-9]|%[a-f0-9][^a-f0-9]/i.test(url) ? encodeURI(url).replace(/%25(\d\d)/g, '%$1') : url;
    try {
      parsed = new URL(text);
    } catch {
      parsed = new URL(text.replace('@/', '@___DUMMY___/'));
    }
  } catch {
    return 'not a valid PostgreSQL URL: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, with [brackets] around an IPv6 host and special characters in the user or password %-encoded';
  }
  if (parsed.port !== '' && !isPort(parsed.port)) return 'the port of the PostgreSQL URL is not between 1 and 65535';
  const queryPort = parsed.searchParams.get('port');
  if (queryPort !== null && !isPort(queryPort)) return `port=${JSON.stringify(queryPort)} of the PostgreSQL URL is not between 1 and 65535`;
  return undefined;
}

/** The digits after the host of `scheme://[userinfo@]host:PORT/…`, whether or not the URL parses. */
function authorityPort(url: string): string | undefined {
  const authority = /^[a-z]+:\/\/([^/?#]*)/i.exec(url)?.[1] ?? '';
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  return /^(?:\[[^\]]*\]|[^:[\]]*):(\d+)$/.exec(hostPort)?.[1];
}

function isPort(text: string): boolean {
  return /^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
}

/** Resolves the client's server address: flag > environment > config file > default. */
export function resolveClientSettings(
  flagServer: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  file: ConfigFile = { server: {}, client: {} },
): ClientSettings {
  const fromFile = file.client.server_addr;
  if (fromFile !== undefined && typeof fromFile !== 'string') {
    throw new ConfigError('invalid client.server_addr in the config file: expected "HOST:PORT"');
  }
  const fromEnv = env[ENV_NAMES.server_addr] || undefined;
  const [serverAddr, source] =
    flagServer !== undefined
      ? [flagServer, '--server']
      : fromEnv !== undefined
        ? [fromEnv, ENV_NAMES.server_addr]
        : fromFile !== undefined
          ? [fromFile, 'client.server_addr in the config file']
          : [DEFAULT_SERVER_ADDR, 'default'];
  // Checked here, with the client's own parser, so that a bad address names the setting it came from.
  try {
    parseServerAddress(serverAddr);
  } catch (error) {
    throw new ConfigError(`invalid ${source} ${JSON.stringify(serverAddr)}: expected HOST:PORT or [IPv6]:PORT`, { cause: error });
  }
  return { serverAddr };
}

/** Parses `HOST:PORT` or `[v6]:PORT` for listening. */
export function parseBind(text: string, source = 'bind address'): { host: string; port: number } {
  try {
    // ":8585" (no host) listens on every IPv4 interface, as BitBake's --host 0.0.0.0.
    return parseServerAddress(text.startsWith(':') ? `0.0.0.0${text}` : text);
  } catch (error) {
    throw new ConfigError(`invalid ${source} ${JSON.stringify(text)}: expected HOST:PORT, e.g. localhost:8585 or 0.0.0.0:8585`, { cause: error });
  }
}

function flagName(key: keyof typeof ENV_NAMES): string {
  return `--${key.replace('_addr', '').replace('_ms', '').replace(/_/g, '-')}`;
}

/** A list of networks: "a,b" text (flag, environment) or a YAML list; null when not given. */
function asNetworks({ value, source }: { value: Raw | unknown[]; source: string }): string[] | null {
  if (value === undefined) return null;
  const networks = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : undefined;
  const cleaned = networks?.map((network) => network.trim()).filter((network) => network !== '');
  if (!cleaned || cleaned.length === 0) throw new ConfigError(`invalid ${source}: expected networks such as 10.0.0.0/8,2001:db8::/32`);
  try {
    parseNetworks(cleaned);
  } catch (error) {
    throw new ConfigError(`invalid ${source}: ${(error as Error).message}`, { cause: error });
  }
  return cleaned;
}

function asString({ value, source }: { value: Raw; source: string }): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ConfigError(`invalid ${source}: expected a string, got ${shown(value)}`);
  return value;
}

function asPositiveInteger(setting: { value: Raw; source: string }): number | undefined {
  return asInteger(setting, 1, 'a positive integer');
}

function asWholeNumber(setting: { value: Raw; source: string }): number | undefined {
  return asInteger(setting, 0, 'a whole number (0 or more)');
}

function asInteger({ value, source }: { value: Raw; source: string }, min: number, expected: string): number | undefined {
  if (value === undefined) return undefined;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number) || number < min) {
    throw new ConfigError(`invalid ${source} ${shown(value)}: expected ${expected}`);
  }
  return number;
}

/**
 * Milliseconds of a timer: a whole number, at most {@link MAX_TIMER_MS}.
 */
function asMilliseconds(setting: { value: Raw; source: string }): number | undefined {
  const ms = asWholeNumber(setting);
  if (ms !== undefined && ms > MAX_TIMER_MS) {
    throw new ConfigError(`invalid ${setting.source} ${shown(setting.value)}: at most ${MAX_TIMER_MS} ms (the longest timer Node keeps, about 24.8 days)`);
  }
  return ms;
}

/** Most seconds a timer setting takes: {@link MAX_TIMER_MS} in seconds. */
const MAX_TIMER_SECONDS = MAX_TIMER_MS / 1000;

function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

/** Seconds, fractions allowed ("0.5"); 0 only where it means "off"; at most {@link MAX_TIMER_SECONDS}. */
function asSeconds({ value, source }: { value: Raw; source: string }, zeroAllowed: boolean): number | undefined {
  if (value === undefined) return undefined;
  const number = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : Number.NaN;
  // Below a millisecond rounds to 0, which means "never" or is refused: not what anyone asked for.
  if (!Number.isFinite(number) || (number === 0 ? !zeroAllowed : number < 0.001)) {
    throw new ConfigError(`invalid ${source} ${shown(value)}: expected seconds, ${zeroAllowed ? '0 (off) or more' : 'more than 0'}`);
  }
  // Checked on the milliseconds the timer gets, so that rounding cannot carry a value past the limit.
  if (secondsToMs(number) > MAX_TIMER_MS) {
    throw new ConfigError(`invalid ${source} ${shown(value)}: at most ${MAX_TIMER_SECONDS} seconds (the longest timer Node keeps, about 24.8 days)`);
  }
  return number;
}

function asBoolean({ value, source }: { value: Raw; source: string }): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  const text = String(value).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new ConfigError(`invalid ${source} ${shown(value)}: expected true or false (1/0, yes/no)`);
}

/** A setting's value as the user wrote it, for a message: JSON, except numbers JSON cannot spell (`.inf` in YAML). */
function shown(value: unknown): string {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : (JSON.stringify(value) ?? String(value));
}
