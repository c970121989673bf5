import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { PoolClient, PoolConfig } from 'pg';
import { PrStoreError, toPrStoreError } from '../errors/pr-store-error.js';
import { isSchemaCurrent, migrateToLatest } from '../engine/migrations.js';
import type { CoalescingOptions } from '../engine/coalesce-revision-queries.js';
import {
  type FreezeInput,
  freezePackages,
  listFreezes,
  type PackageFreeze,
  thawPackages,
} from '../engine/package-freezes.js';
import {
  createPrEngine,
  type PackageHistoryQuery,
  type PrEngine,
  type PrEngineOptions,
  type PrPreview,
  type RevisionQuery,
  type UpstreamPrSource,
} from '../engine/pr-engine.js';
import type { PipelinedSessions } from '../engine/pipelined-session.js';
import type { StoredRevision } from '../engine/revision-queries.js';
import { checkKeyLimit } from '../engine/revision-keys.js';
import { REQUEST_PATH_SETTINGS, REQUEST_PATH_STATEMENTS } from '../engine/revision-statements.js';
import type { PrDatabase } from '../engine/schema.js';
import { pipelinedPgSessions } from './pipelined-pg-sessions.js';
import { pipelinedPgliteSessions } from './pipelined-pglite-sessions.js';
import { preparedStatementClient } from './prepared-statement-client.js';
import { PgliteDialect } from './pglite-dialect.js';
import { preparedStatementPglite } from './prepared-statement-pglite.js';
import { checkSessionReadOnly, READ_ONLY_SETTING, readOnlySessionClient } from './read-only-sessions.js';
import { acquireStoreLock, type StoreLock } from './store-lock.js';
import { extractTarGz } from './tar-extract.js';

/** Folder of the embedded store when no database is named. */
export const DEFAULT_EMBEDDED_PATH = './prserv-data';
/** Default size of the PostgreSQL connection pool. */
export const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** Which kind of database a store runs on. */
export type PrStoreKind = 'postgres' | 'embedded';

/** Options of {@link openPrStore}. */
export interface OpenPrStoreOptions {
  /**
   * A `postgres://` or `postgresql://` URL selects PostgreSQL; anything else is the folder of the
   * embedded store (PGlite), created if missing. Default `./prserv-data`.
   */
  readonly database?: string;
  /** Maximum PostgreSQL connections of this store's pool. Default 10. Ignored by the embedded store. */
  readonly poolSize?: number;
  /**
   * Never write; answers are computed as if writing. Default false. Enforced by the database as
   * well as by the engine: every session of the store is read-only (`default_transaction_read_only`),
   * so a write fails with SQLSTATE 25006. With a current schema the store needs only the rights
   * to read; a missing or older schema is created or upgraded first (PostgreSQL: over one
   * short-lived writable connection, failing clearly if the role may not; embedded: before its
   * session turns read-only). No revision is written either way.
   */
  readonly readOnly?: boolean;
  /**
   * Open only a store that is there: an embedded folder holding a store, or a PostgreSQL
   * database holding the prserv schema. Otherwise fail with `STORE_NOT_FOUND` and create
   * nothing, so that a tool that only reads (an export, a verify) reports a mistyped path or URL
   * instead of answering from a new, empty store. An older schema is still upgraded, as at any
   * start of this version. Default false: a missing store is created.
   */
  readonly mustExist?: boolean;
  /** How long to wait for a PostgreSQL connection, in ms. Default 10000. */
  readonly connectTimeoutMs?: number;
  /**
   * Longest a PostgreSQL statement may run, in ms, including waiting for a package lock held by
   * another replica; past it the request fails instead of hanging. Default 30000.
   */
  readonly statementTimeoutMs?: number;
  /**
   * Longest {@link PrStore.close} waits for operations still running, and then for connections
   * still in use, in ms each. Default 10000.
   */
  readonly closeTimeoutMs?: number;
  /**
   * Called with errors of idle pooled PostgreSQL connections (e.g. the server restarted).
   * Such errors never throw; the next request reconnects. Default: ignored.
   */
  readonly onBackgroundError?: (error: Error) => void;
  /** An upstream PR server whose numbering get-pr extends (docs/protocol.md §7). Not closed by the store. */
  readonly upstream?: UpstreamPrSource;
  /**
   * How concurrent requests share round trips (batch size, wait, queue bound); false sends each
   * request on its own. Default: coalescing with the defaults of {@link CoalescingOptions}.
   */
  readonly coalescing?: CoalescingOptions | false;
  /**
   * Send the request-path statements as named prepared statements (PostgreSQL only). Default
   * true. Turn off behind a pooler that cannot keep prepared statements (PgBouncer in
   * transaction mode before 1.21, or without `max_prepared_statements`).
   */
  readonly preparedStatements?: boolean;
  /**
   * Longest `version`, `pkgarch` or `checksum` accepted, in UTF-8 bytes: from 1 to
   * `KEY_BYTES_CEILING` (640). Default `MAX_KEY_BYTES` (512).
   */
  readonly maxKeyBytes?: number;
  /**
   * Builds the engine over the opened database. Default {@link createPrEngine}; a wrapper may
   * add a layer (metrics, tracing) around the engine it returns.
   */
  readonly createEngine?: (db: Kysely<PrDatabase>, options: PrEngineOptions) => PrEngine;
}

/** An open PR store: the engine plus the database it owns. */
export interface PrStore extends PrEngine {
  readonly kind: PrStoreKind;
  /** The PostgreSQL URL without its password, or the embedded store's absolute folder. */
  readonly location: string;
  /**
   * Resolves when the store can serve: its database answers, its schema is the one this version
   * expects (another replica may have upgraded it since), and a request-path lookup succeeds.
   * Rejects with the reason.
   */
  checkReady(): Promise<void>;
  /** The PostgreSQL pool's connections (all, idle) and the requests waiting for one; undefined for the embedded store. */
  poolFigures(): PoolFigures | undefined;
  /** What get-pr would answer, whether it would store, and the package's freeze; never stores. */
  previewPr(query: RevisionQuery): Promise<PrPreview>;
  /** The package's stored rows with their provenance, in revision order. */
  packageHistory(query: PackageHistoryQuery): Promise<StoredRevision[]>;
  /**
   * Freezes the packages matching the globs (`prserv freeze`): stored in the database, so every
   * replica enforces it from its next write. False when those patterns were frozen already.
   */
  freeze(input: FreezeInput): Promise<boolean>;
  /** Removes the freeze with exactly these patterns (`prserv thaw`); false when there was none. */
  thaw(input: { readonly version: string; readonly pkgarch?: string }): Promise<boolean>;
  /** Every freeze, oldest first. */
  listFreezes(): Promise<PackageFreeze[]>;
  /**
   * Refuses new operations (`STORE_CLOSED`), lets those already accepted finish (up to
   * `closeTimeoutMs`), closes the database and releases the embedded store's lock.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What {@link PrStore.poolFigures} reports. */
export interface PoolFigures {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

/** True when `database` names a PostgreSQL server rather than an embedded store folder. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(database);
}

/**
 * Opens a PR store: connects, creates or upgrades the schema, and returns the engine.
 *
 * ```ts
 * const store = await openPrStore({ database: 'postgres://prserv@db/prserv' });
 * const pr = await store.getPr({ version: '1.0-r0', pkgarch: 'core2-64', checksum: 'ab12…' });
 * await store.close();
 * ```
 */
export async function openPrStore(options: OpenPrStoreOptions = {}): Promise<PrStore> {
  const database = options.database ?? DEFAULT_EMBEDDED_PATH;
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isInteger(poolSize) || poolSize < 1) {
    throw new PrStoreError('INVALID_ARGUMENT', `poolSize must be a positive integer, got ${String(poolSize)}`);
  }
  // Refused before anything is opened: a bad limit must not leave a new store folder behind.
  if (options.maxKeyBytes !== undefined) checkKeyLimit(options.maxKeyBytes);
  const readOnly = options.readOnly ?? false;
  const mustExist = options.mustExist ?? false;
  const opened = isPostgresUrl(database)
    ? await openPostgres(database, poolSize, options)
    : await openEmbedded(database, readOnly, mustExist);
  try {
    if (mustExist && opened.kind === 'postgres' && !(await holdsPrservSchema(opened.db))) {
      throw new PrStoreError('STORE_NOT_FOUND', `no prserv store in the PostgreSQL database ${opened.location} (it has no prserv_revision table)`);
    }
    await opened.migrate();
    await opened.afterMigration?.();
  } catch (error) {
    await opened.close();
    throw error;
  }
  const createEngine = options.createEngine ?? createPrEngine;
  const engine = createEngine(opened.db, {
    readOnly,
    upstream: options.upstream,
    coalescing: options.coalescing,
    ...(options.maxKeyBytes === undefined ? {} : { maxKeyBytes: options.maxKeyBytes }),
    // One PGlite connection whose transactions are exclusive: it serialises writers by itself.
    singleSession: opened.kind === 'embedded',
    ...(opened.pipelinedSessions ? { pipelinedSessions: opened.pipelinedSessions } : {}),
  });
  return new OpenedPrStore(opened, engine, options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
}

interface OpenedDatabase {
  readonly kind: PrStoreKind;
  readonly location: string;
  readonly db: Kysely<PrDatabase>;
  /** Creates or upgrades the schema. */
  migrate(): Promise<void>;
  /** Work that needs the current schema, e.g. preparing statements. */
  afterMigration?(): Promise<void>;
  poolFigures?(): PoolFigures;
  /** Sessions that pipeline statements (unless read-only). */
  readonly pipelinedSessions?: PipelinedSessions;
  close(): Promise<void>;
}

async function openPostgres(url: string, poolSize: number, options: OpenPrStoreOptions): Promise<OpenedDatabase> {
  // Loaded on demand so that users of the embedded store (or of the codec alone) never load pg.
  const { default: pg } = await importDriver(() => import('pg'), 'pg', 'a PostgreSQL database');
  const statementTimeout = options.statementTimeoutMs ?? 30_000;
  const readOnly = options.readOnly ?? false;
  const connection = {
    connectionString: url,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: 'prserv',
    // A half-open connection or a stuck peer must fail a request, never hang it.
    keepAlive: true,
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 5_000,
    idle_in_transaction_session_timeout: statementTimeout * 2,
  } satisfies PoolConfig;
  const client = options.preparedStatements === false ? pg.Client : preparedStatementClient(pg, REQUEST_PATH_STATEMENTS);
  const pool = new pg.Pool({
    ...connection,
    Client: readOnly ? readOnlySessionClient(client) : client,
    max: poolSize,
    // Once per connection, before the pool hands it to anyone: Kysely and the pipelined
    // sessions share the pool. A failure fails that checkout, and the connection is closed.
    onConnect: (session: PoolClient) => session.query(REQUEST_PATH_SETTINGS),
  } as PoolConfig);
  const report = (error: Error) => options.onBackgroundError?.(error);
  // Idle connections report through the pool; a connection in use emits 'error' on itself, and
  // neither pg nor Kysely listens there: unheard, a dropped connection would crash the process.
  // The query in flight fails on its own and its transaction reports the error.
  pool.on('error', report);
  pool.on('connect', (client) => client.on('error', report));
  const db = new Kysely<PrDatabase>({
    dialect: new PostgresDialect({ pool }),
  });
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  const close = async () => {
    // pool.end() waits for every checked-out connection; a stuck one must not block shutdown.
    const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), closeTimeoutMs).unref());
    if ((await Promise.race([db.destroy(), timedOut])) === 'timeout') {
      report(new Error(`closing the PostgreSQL pool took over ${closeTimeoutMs} ms; connections left to the OS`));
    }
  };
  // Without the request path's time limits: a replica waits for another's migration as long as it
  // runs, and an index on a large table takes as long as it takes (migrateToLatest lifts the
  // server-side limits inside its transaction).
  const openSchemaConnection = () => {
    const schemaPool = new pg.Pool({ ...connection, statement_timeout: undefined, query_timeout: undefined, max: 1 });
    schemaPool.on('error', report);
    return new Kysely<PrDatabase>({ dialect: new PostgresDialect({ pool: schemaPool }) });
  };
  const migrate = () => migrateOverSchemaConnection(db, openSchemaConnection, readOnly);
  const afterMigration = readOnly ? () => checkSessionReadOnly(db) : undefined;
  const poolFigures = () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
  // A read-only store never allocates; its sessions stay as they are.
  const pipelinedSessions = readOnly ? undefined : pipelinedPgSessions(pool, options.preparedStatements === false ? new Map() : REQUEST_PATH_STATEMENTS);
  return { kind: 'postgres', location: redactUrl(url), db, migrate, afterMigration, poolFigures, pipelinedSessions, close };
}

/**
 * Brings the schema of a PostgreSQL store up to date over one short-lived connection of its own
 * (`openSchemaConnection`), without the request path's time limits, when reading it over the
 * store's sessions shows it is not current.
 *
 * A read-only store's sessions could not make it: they are read-only. When the schema is current
 * nothing more is needed, so a role that may only read (or a hot standby) serves read-only.
 * Otherwise the schema connection makes it as a writable server would: a read-only server on a
 * new database answers from an empty table, and a writer started later finds the schema it
 * expects. BitBake does the same (lib/prserv/db.py,
 * `PRTable` creates its table even when read-only, so that a read-only server reaching a shared
 * database first does not race the writer). That connection runs the migrations only (the schema
 * and Kysely's record of them), never a revision.
 */
async function migrateOverSchemaConnection(
  db: Kysely<PrDatabase>,
  openSchemaConnection: () => Kysely<PrDatabase>,
  readOnly: boolean,
): Promise<void> {
  // Read over the store's own sessions: every start but the first after an upgrade ends here,
  // without a connection more.
  try {
    if (await isSchemaCurrent(db)) return;
  } catch (error) {
    throw toPrStoreError(error, readOnly ? 'read the prserv schema' : 'create or upgrade the prserv schema');
  }
  const schemaDb = openSchemaConnection();
  try {
    await migrateToLatest(schemaDb);
  } catch (error) {
    const sqlState = (error as { cause?: { code?: unknown } }).cause?.code;
    if (!readOnly || (sqlState !== INSUFFICIENT_PRIVILEGE && sqlState !== READ_ONLY_SQL_TRANSACTION)) throw error;
    throw new PrStoreError(
      'DATABASE_ERROR',
      'the prserv schema of this database is missing or out of date, and this read-only store may not create it ' +
        '(the database role may only read, or the database is read-only): start a writable prserv on the database ' +
        'once, or open this one with a role that may create tables',
      { cause: (error as Error).cause ?? error },
    );
  } finally {
    await schemaDb.destroy();
  }
}

/**
 * Runs `create` with a `TextDecoder` that keeps a leading U+FEFF. PGlite decodes every text value
 * it returns with a decoder made when the instance is created, and a default decoder strips a
 * leading U+FEFF as a byte-order mark: a key beginning with one would be exported as another key.
 * The decoder is made synchronously inside `create`, so the swap lasts no longer than that call.
 */
function keepingByteOrderMarks<T>(create: () => T): T {
  const Original = globalThis.TextDecoder;
  globalThis.TextDecoder = class extends Original {
    constructor(label?: string, options?: ConstructorParameters<typeof Original>[1]) {
      super(label, { ...options, ignoreBOM: true });
    }
  };
  try {
    return create();
  } finally {
    globalThis.TextDecoder = Original;
  }
}

/** SQLSTATE 42501: the role lacks a privilege (here, to create tables). */
const INSUFFICIENT_PRIVILEGE = '42501';
/** SQLSTATE 25006: a write in a read-only transaction (a hot standby, or a role that defaults to read-only). */
const READ_ONLY_SQL_TRANSACTION = '25006';

/**
 * `mkdir -p`. Node's own recursive mkdir never returns for a path under a folder that refuses
 * new entries with ENOENT (e.g. `/proc/x`): here that parent is seen to exist and the error is
 * thrown.
 */
async function makeFolder(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await stat(path)).isDirectory()) return;
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path || existsSync(parent)) throw error;
    await makeFolder(parent);
    await makeFolder(path);
  }
}

/** True when the database has the prserv table, in the schema the store's sessions search. */
async function holdsPrservSchema(db: Kysely<PrDatabase>): Promise<boolean> {
  try {
    const { rows } = await sql<{ found: boolean }>`SELECT to_regclass('prserv_revision') IS NOT NULL AS found`.execute(db);
    return rows[0]?.found === true;
  } catch (error) {
    throw toPrStoreError(error, 'look for the prserv schema');
  }
}

async function openEmbedded(folder: string, readOnly: boolean, mustExist: boolean): Promise<OpenedDatabase> {
  const location = resolve(folder);
  // Checked before anything is created: a store is its PostgreSQL data folder.
  if (mustExist && !existsSync(join(location, 'pgdata'))) {
    throw new PrStoreError('STORE_NOT_FOUND', `no embedded prserv store at ${location} (no pgdata folder there)`);
  }
  try {
    await makeFolder(location);
  } catch (cause) {
    throw new PrStoreError('INVALID_ARGUMENT', `cannot create the embedded store folder ${location}: ${(cause as Error).message}`, { cause });
  }
  const lock: StoreLock = await acquireStoreLock(join(location, 'prserv.lock'));
  try {
    const { PGlite } = await importDriver(() => import('@electric-sql/pglite'), '@electric-sql/pglite', 'the embedded store');
    const dataDir = join(location, 'pgdata');
    if (!existsSync(dataDir)) await createFromTemplate(dataDir);
    const pglite = await keepingExitCode(() => keepingByteOrderMarks(() => PGlite.create(dataDir, { postgresqlconf: EMBEDDED_POSTGRESQL_CONF })));
    await pglite.exec(REQUEST_PATH_SETTINGS);
    const prepared = preparedStatementPglite(pglite, REQUEST_PATH_STATEMENTS);
    const db = new Kysely<PrDatabase>({ dialect: new PgliteDialect(prepared.pglite) });
    const close = async () => {
      try {
        await db.destroy();
        if (!pglite.closed) await keepingExitCode(() => pglite.close());
      } finally {
        await lock.release();
      }
    };
    const afterMigration = async () => {
      // One session, migrated by now: from here on every transaction of the store is read-only,
      // so a write fails in PostgreSQL itself (SQLSTATE 25006) whatever the engine does. Preparing
      // statements, SET and closing PGlite write no rows and still work.
      if (readOnly) await pglite.exec(`SET ${READ_ONLY_SETTING} = on`);
      await prepared.prepare();
    };
    // A read-only store never allocates.
    const pipelinedSessions = readOnly ? undefined : pipelinedPgliteSessions(db, prepared);
    return { kind: 'embedded', location, db, migrate: () => migrateToLatest(db), afterMigration, pipelinedSessions, close };
  } catch (cause) {
    await lock.release();
    if (cause instanceof PrStoreError) throw cause;
    throw new PrStoreError('DATABASE_ERROR', `cannot open the embedded store in ${location}: ${thrownText(cause)}`, { cause });
  }
}

/**
 * What PGlite threw, in words. Its file system errors are not `Error`s but Emscripten's
 * `{ name: 'ErrnoError', errno }`, most often a file of the folder this user may not read or write.
 */
function thrownText(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  const { name, errno, message } = (cause ?? {}) as { name?: unknown; errno?: unknown; message?: unknown };
  if (typeof message === 'string') return message;
  if (typeof errno === 'number') {
    return `${typeof name === 'string' ? name : 'file system error'} ${errno} (may this user read and write every file of the folder?)`;
  }
  return String(cause);
}

/**
 * Runs `work` and puts `process.exitCode` back as it was. PGlite's Emscripten runtime sets it when
 * its initdb or postgres "program" ends (to 0), which would hide a failure the host program has
 * already recorded, or turn its later `process.exitCode ??= 1` into a success.
 */
async function keepingExitCode<T>(work: () => Promise<T>): Promise<T> {
  const exitCode = process.exitCode;
  try {
    return await work();
  } finally {
    process.exitCode = exitCode;
  }
}

/**
 * Settings of the embedded PostgreSQL. Its default 128 MB of shared buffers is memory a store of PR
 * rows never fills (a million rows take under 200 MB on disk, mostly index) and a process never
 * gives back; 8 MB halves an idle server's memory.
 */
const EMBEDDED_POSTGRESQL_CONF = ['shared_buffers = 8MB'];

/**
 * Creates a new store's data directory from the initialised, empty one the build packs next to
 * the bundle, instead of letting PGlite run initdb (seconds, and most of a gigabyte of memory).
 * Unpacked beside it and renamed into place, so a crash midway leaves no half-made store. From
 * the sources there is no template: PGlite runs initdb.
 */
async function createFromTemplate(dataDir: string): Promise<void> {
  let template: Buffer;
  try {
    template = await readFile(new URL('./embedded-template.tar.gz', import.meta.url));
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return;
    throw error;
  }
  const unpacking = `${dataDir}.new`;
  await rm(unpacking, { recursive: true, force: true });
  await mkdir(unpacking, { mode: 0o700 });
  // The pid file of the instance that made the template means nothing here.
  await extractTarGz(template, unpacking, { skip: new Set(['postmaster.pid']) });
  await rename(unpacking, dataDir);
}

/**
 * Loads an optional peer dependency. Each store needs its own driver and neither is installed with
 * `@prserv/core` itself, so a missing one is named, with what to install.
 */
async function importDriver<T>(load: () => Promise<T>, name: string, purpose: string): Promise<T> {
  try {
    return await load();
  } catch (cause) {
    const code = (cause as { code?: unknown } | null)?.code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw cause;
    throw new PrStoreError('DRIVER_MISSING', `${purpose} needs the npm package "${name}": install it next to @prserv/core (npm install ${name})`, { cause });
  }
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    // libpq and pg also take the password as a parameter (`?password=…`).
    for (const name of [...parsed.searchParams.keys()]) {
      if (name.toLowerCase() === 'password') parsed.searchParams.set(name, '***');
    }
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

/** Runs one operation of an open store, counted until it settles; fails once the store is closing. */
type Tracked = <T>(operation: (engine: PrEngine) => Promise<T>) => Promise<T>;

/** The engine's operations, each run through `run`. */
function whileOpen(run: Tracked): Required<Omit<PrEngine, 'readOnly' | 'readOnlyView'>> {
  return {
    previewPr: (query) => run((engine) => supported(engine, 'previewPr')(query)),
    packageHistory: (query) => run((engine) => supported(engine, 'packageHistory')(query)),
    getPr: (query) => run((engine) => engine.getPr(query)),
    testPr: (query) => run((engine) => engine.testPr(query)),
    testPackage: (key) => run((engine) => engine.testPackage(key)),
    maxPackagePr: (key) => run((engine) => engine.maxPackagePr(key)),
    importOne: (input) => run((engine) => engine.importOne(input)),
    exportRows: (query) => run((engine) => engine.exportRows(query)),
  };
}

/** An optional engine operation, bound, or `INVALID_ARGUMENT` when a custom engine lacks it. */
function supported<K extends 'previewPr' | 'packageHistory'>(engine: PrEngine, name: K): NonNullable<PrEngine[K]> {
  const operation = engine[name];
  if (!operation) throw new PrStoreError('INVALID_ARGUMENT', `this store's engine has no ${name}()`);
  return operation.bind(engine) as NonNullable<PrEngine[K]>;
}

class OpenedPrStore implements PrStore {
  readonly #opened: OpenedDatabase;
  readonly #engine: PrEngine;
  readonly #drainLimitMs: number;
  #closing: Promise<void> | undefined;
  /** Operations accepted and not yet settled; close() lets them finish first. */
  #inFlight = 0;
  #drained: (() => void) | undefined;

  constructor(opened: OpenedDatabase, engine: PrEngine, drainLimitMs: number) {
    this.#opened = opened;
    this.#engine = engine;
    this.#drainLimitMs = drainLimitMs;
  }

  get kind(): PrStoreKind {
    return this.#opened.kind;
  }

  get location(): string {
    return this.#opened.location;
  }

  get readOnly(): boolean {
    return this.#engine.readOnly;
  }

  readonly #track: Tracked = async (operation) => {
    const engine = this.#open();
    this.#inFlight += 1;
    try {
      return await operation(engine);
    } finally {
      this.#inFlight -= 1;
      if (this.#inFlight === 0) this.#drained?.();
    }
  };

  readonly #operations = whileOpen(this.#track);
  getPr = this.#operations.getPr;
  testPr = this.#operations.testPr;
  testPackage = this.#operations.testPackage;
  maxPackagePr = this.#operations.maxPackagePr;
  importOne = this.#operations.importOne;
  exportRows = this.#operations.exportRows;
  previewPr = this.#operations.previewPr;
  packageHistory = this.#operations.packageHistory;

  async freeze(input: FreezeInput): Promise<boolean> {
    return freezePackages(this.#writableDb('freeze packages'), input);
  }

  async thaw(input: { readonly version: string; readonly pkgarch?: string }): Promise<boolean> {
    return thawPackages(this.#writableDb('thaw packages'), input);
  }

  async listFreezes(): Promise<PackageFreeze[]> {
    this.#open();
    return listFreezes(this.#opened.db);
  }

  #writableDb(action: string) {
    this.#open();
    if (this.readOnly) throw new PrStoreError('INVALID_ARGUMENT', `a read-only store cannot ${action}`);
    return this.#opened.db;
  }

  async checkReady(): Promise<void> {
    this.#open();
    let current: boolean;
    try {
      current = await isSchemaCurrent(this.#opened.db);
    } catch (error) {
      throw toPrStoreError(error, 'check the schema');
    }
    if (!current) throw new PrStoreError('DATABASE_ERROR', 'the database schema is not the one this prserv version expects');
    // Through the request path itself (its prepared statements, its pool): a pooler that loses
    // prepared statements fails every request while the schema check above still passes.
    await this.#engine.maxPackagePr({ version: 'prserv-readiness-check', pkgarch: '-' });
  }

  poolFigures(): PoolFigures | undefined {
    return this.#opened.poolFigures?.();
  }

  readOnlyView(): PrEngine {
    const view = this.#engine.readOnlyView?.();
    if (!view) throw new PrStoreError('INVALID_ARGUMENT', 'this store’s engine has no read-only view');
    const readOnly: PrEngine = {
      readOnly: true,
      ...whileOpen((operation) => this.#track(() => operation(view))),
      readOnlyView: () => readOnly,
    };
    return readOnly;
  }

  close(): Promise<void> {
    this.#closing ??= this.#drain().then(() => this.#opened.close());
    return this.#closing;
  }

  /**
   * Waits for the operations already accepted (a get-pr may be between its lookup and its
   * write), at most the close timeout: each ends by then or at its statement timeout.
   */
  async #drain(): Promise<void> {
    if (this.#inFlight === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      timer = setTimeout(resolve, this.#drainLimitMs);
      timer.unref();
    });
    clearTimeout(timer);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #open(): PrEngine {
    if (this.#closing) throw new PrStoreError('STORE_CLOSED', 'the PR store is closed');
    return this.#engine;
  }
}
