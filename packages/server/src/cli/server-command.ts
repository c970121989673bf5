import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { createPrEngine, isPostgresUrl, openPrStore, type PrStore } from '@prserv/core';
import { errorChain } from '../daemon/error-policy.js';
import { type EngineEvent, type RunningHttpEndpoints, startHttpEndpoints } from '../daemon/http-endpoints.js';
import { createJsonLogger, createPrettyLogger, type ServerLogger } from '../daemon/logger.js';
import { type RunningPrServer, startPrServer } from '../daemon/pr-server.js';
import { createUpstreamPool, type UpstreamPool } from '../daemon/upstream-pool.js';
import { checkCommandArguments } from './arguments.js';
import { loadConfigFile } from './config-file.js';
import { UsageError } from './errors.js';
import type { CliIo } from './io.js';
import { resolveServerSettings, type ServerSettings } from './settings.js';

/** Options of `prserv server`. */
const SERVER_OPTIONS = {
  database: { type: 'string' },
  bind: { type: 'string' },
  'max-connections': { type: 'string' },
  'batch-size': { type: 'string' },
  'batch-wait': { type: 'string' },
  'read-only': { type: 'boolean' },
  nohist: { type: 'boolean' },
  history: { type: 'boolean' },
  'sync-mode': { type: 'string' },
  config: { type: 'string' },
  'log-level': { type: 'string' },
  upstream: { type: 'string' },
  'max-clients': { type: 'string' },
  allow: { type: 'string' },
  'allow-write': { type: 'string' },
  'request-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-unread-bytes': { type: 'string' },
  http: { type: 'string' },
  'log-format': { type: 'string' },
  'max-key-bytes': { type: 'string' },
  'prepared-statements': { type: 'string' },
} as const;

/** `prserv server [options]`: resolves the settings, then runs the server until a signal. */
export async function runServerCommand(args: string[], io: CliIo): Promise<number> {
  checkCommandArguments(args, SERVER_OPTIONS, 'server', false);
  const { values } = parseArgs({ args, options: SERVER_OPTIONS, strict: true, allowPositionals: false });
  if (values.nohist && values.history) throw new UsageError('--nohist and --history exclude each other');
  const file = values.config ? await loadConfigFile(values.config) : undefined;
  const settings = resolveServerSettings(
    {
      database: values.database,
      bind: values.bind,
      maxConnections: values['max-connections'],
      batchSize: values['batch-size'],
      batchWaitMs: values['batch-wait'],
      readOnly: values['read-only'],
      nohist: values.history ? false : values.nohist,
      logLevel: values['log-level'],
      syncMode: values['sync-mode'],
      upstream: values.upstream,
      maxClients: values['max-clients'],
      allow: values.allow,
      allowWrite: values['allow-write'],
      requestTimeout: values['request-timeout'],
      idleTimeout: values['idle-timeout'],
      maxUnreadBytes: values['max-unread-bytes'],
      http: values.http,
      logFormat: values['log-format'],
      maxKeyBytes: values['max-key-bytes'],
      preparedStatements: values['prepared-statements'],
    },
    io.env,
    file,
  );
  return runServer(settings, io);
}


/**
 * Runs `prserv server` in the foreground: opens the store, listens, and on SIGTERM or SIGINT
 * drains and exits. Resolves with the exit code.
 */
async function runServer(settings: ServerSettings, io: { stderr: NodeJS.WritableStream }): Promise<number> {
  const pretty = settings.logFormat === 'pretty' || (settings.logFormat === 'auto' && process.stdout.isTTY === true);
  const logger: ServerLogger = pretty ? await createPrettyLogger(settings.logLevel) : createJsonLogger(settings.logLevel);
  const starting = stopOnSignalWhileStarting(logger);
  try {
    return await serve(settings, io, logger, starting);
  } finally {
    starting.done();
  }
}

/**
 * Until the server drains on a signal (from when it listens), a signal stops the start at once,
 * with exit code 0: nothing is served yet, and opening the store can wait a long time (on another
 * replica's migration). What the start leaves half done is taken up by the next one: a migration
 * rolls back with its connection, and an embedded store half made is made anew.
 */
function stopOnSignalWhileStarting(logger: ServerLogger): { done(): void } {
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'signal while starting: stopped before serving');
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return {
    done() {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
    },
  };
}

async function serve(settings: ServerSettings, io: { stderr: NodeJS.WritableStream }, logger: ServerLogger, starting: { done(): void }): Promise<number> {
  if (settings.syncModeGiven) {
    logger.warn({}, '--sync-mode / PRSERV_SYNC_MODE is deprecated and ignored: it tuned sqlite, which prserv does not use');
  }
  // Before the store: a new embedded store takes seconds to create and would be left behind.
  if (settings.http && sharesPort(settings.http, { host: settings.host, port: settings.port })) {
    io.stderr.write(`prserv: --http ${settings.http.host}:${settings.http.port} is the address the server listens on (--bind): give it another port\n`);
    return 2;
  }
  for (const [what, address] of [
    ['listen on', { host: settings.host, port: settings.port }],
    ['serve HTTP on', settings.http],
  ] as const) {
    if (!address) continue;
    try {
      await checkPortFree(address.host, address.port);
    } catch (error) {
      io.stderr.write(`prserv: cannot ${what} ${address.host}:${address.port}: ${describe(error)}\n`);
      return 1;
    }
  }
  const engineListeners: ((event: EngineEvent) => void)[] = [];
  const emit = (event: EngineEvent) => {
    for (const listener of engineListeners) listener(event);
  };
  const upstream: UpstreamPool | undefined = settings.upstream
    ? createUpstreamPool({ address: settings.upstream, logger })
    : undefined;
  if (!isPostgresUrl(settings.database)) useBaselineWasmCompiler();
  let store: PrStore;
  try {
    store = await openPrStore({
      upstream,
      database: settings.database,
      poolSize: settings.maxConnections,
      readOnly: settings.readOnly,
      maxKeyBytes: settings.maxKeyBytes,
      preparedStatements: settings.preparedStatements,
      coalescing: {
        reads: { maxBatchSize: settings.batchSize, maxWaitMs: settings.batchWaitMs },
        writes: { maxBatchSize: settings.batchSize, maxWaitMs: settings.batchWaitMs },
        ...(settings.http ? { onBatch: (kind: 'read' | 'write', size: number) => emit({ kind, size }) } : {}),
      },
      ...(settings.http
        ? {
            createEngine: (db, options) =>
              createPrEngine(db, {
                ...options,
                onAllocated: () => emit({ kind: 'allocated', count: 1 }),
                onWriteBatch: (path) => emit({ kind: 'write-path', path }),
              }),
          }
        : {}),
      onBackgroundError: (error) => logger.warn({ err: error.message }, 'idle database connection failed'),
    });
  } catch (error) {
    await upstream?.close();
    io.stderr.write(`prserv: cannot open the store: ${describe(error)}\n`);
    return 1;
  }
  let server: RunningPrServer;
  try {
    server = await startPrServer({
      engine: store,
      host: settings.host,
      port: settings.port,
      defaultHistory: !settings.nohist,
      logger,
      maxClients: settings.maxClients,
      requestTimeoutMs: settings.requestTimeoutMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      maxUnreadBytes: settings.maxUnreadBytes,
      ...(settings.allow ? { allow: settings.allow } : {}),
      ...(settings.allowWrite ? { allowWrite: settings.allowWrite } : {}),
    });
  } catch (error) {
    await store.close();
    await upstream?.close();
    io.stderr.write(`prserv: cannot listen on ${settings.host}:${settings.port}: ${describe(error)}\n`);
    return 1;
  }
  let http: RunningHttpEndpoints | undefined;
  if (settings.http) {
    try {
      http = await startHttpEndpoints({
        host: settings.http.host,
        port: settings.http.port,
        server,
        engineEvents: { onEngineEvent: (listener) => engineListeners.push(listener) },
        checkReady: () => store.checkReady(),
        pool: () => store.poolFigures(),
        logger,
      });
    } catch (error) {
      await server.close();
      await store.close();
      await upstream?.close();
      io.stderr.write(`prserv: cannot serve HTTP on ${settings.http.host}:${settings.http.port}: ${describe(error)}\n`);
      return 1;
    }
  }
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting without draining');
        resolve(1);
        return;
      }
      stopping = true;
      logger.info({ signal, connections: server.connections }, 'shutting down');
      try {
        http?.markDraining();
        await server.close();
        await http?.close();
        await store.close();
        await upstream?.close();
        logger.info({}, 'stopped');
        resolve(0);
      } catch (error) {
        logger.error({ err: describe(error) }, 'shutdown failed');
        resolve(1);
      }
    };
    starting.done();
    process.on('SIGTERM', (signal) => void stop(signal));
    process.on('SIGINT', (signal) => void stop(signal));
  });
  // Only now that a signal drains the server: whoever waits for this line may stop it at once.
  logger.info(
    {
      store: store.kind,
      database: store.location,
      bind: `${server.address.host}:${server.address.port}`,
      mode: settings.nohist ? 'nohist' : 'history',
      readOnly: settings.readOnly,
      maxConnections: settings.maxConnections,
      batchSize: settings.batchSize,
      batchWaitMs: settings.batchWaitMs,
      maxClients: settings.maxClients,
      allow: settings.allow,
      allowWrite: settings.allowWrite,
      requestTimeoutMs: settings.requestTimeoutMs,
      idleTimeoutMs: settings.idleTimeoutMs,
      maxUnreadBytes: settings.maxUnreadBytes,
      http: http ? `${http.address.host}:${http.address.port}` : null,
      maxKeyBytes: settings.maxKeyBytes,
      preparedStatements: settings.preparedStatements,
      upstream: upstream?.name ?? null,
      pid: process.pid,
    },
    'prserv listening',
  );
  if (!isLoopback(server.address.host) && !settings.allow) {
    logger.warn(
      { bind: `${server.address.host}:${server.address.port}` },
      'listening on a non-loopback address without --allow: every host that can reach this port may allocate PRs',
    );
  }
  return stopped;
}

/**
 * Compiles PGlite's WebAssembly with V8's baseline compiler only. The optimising tier would hold a
 * second copy of the compiled PostgreSQL: without it an idle server takes about 60 MB less memory
 * and starts faster, for 15–25 % fewer requests per second where PGlite works hardest (see
 * bench/README.md); the embedded store is the zero-setup default, PostgreSQL the one for load. Process-wide, so only for the embedded store, the one WebAssembly user here.
 */
function useBaselineWasmCompiler(): void {
  setFlagsFromString('--liftoff-only');
}

/** Fails as listening would (EADDRINUSE, EACCES, EADDRNOTAVAIL) without keeping the port. */
async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => resolve());
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

function isLoopback(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./.test(address);
}

function describe(error: unknown): string {
  return errorChain(error).join(': ');
}

/** True when two listen addresses would take the same port (the same host, or either one every host). */
function sharesPort(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  const everyHost = (host: string) => host === '0.0.0.0' || host === '::' || host === '';
  return a.host === b.host || everyHost(a.host) || everyHost(b.host);
}
