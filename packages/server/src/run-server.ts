import { openPrStore, type PrStore } from '@prserv/core';
import type { ServerSettings } from './config.js';
import { errorChain } from './error-chain.js';
import { createJsonLogger } from './logger.js';
import { type RunningPrServer, startPrServer } from './pr-server.js';
import { createUpstreamPool, type UpstreamPool } from './upstream-pool.js';

/**
 * Runs `prserv server` in the foreground: opens the store, listens, and on SIGTERM or SIGINT
 * drains and exits. Resolves with the exit code.
 */
export async function runServer(settings: ServerSettings, io: { stderr: NodeJS.WritableStream }): Promise<number> {
  const logger = createJsonLogger(settings.logLevel);
  if (settings.syncModeGiven) {
    logger.warn({}, '--sync-mode / PRSERV_SYNC_MODE is deprecated and ignored: it tuned sqlite, which prserv does not use');
  }
  const upstream: UpstreamPool | undefined = settings.upstream
    ? createUpstreamPool({ address: settings.upstream, logger })
    : undefined;
  let store: PrStore;
  try {
    store = await openPrStore({
      upstream,
      database: settings.database,
      poolSize: settings.maxConnections,
      readOnly: settings.readOnly,
      coalescing: {
        reads: { maxBatchSize: settings.batchSize, maxWaitMs: settings.batchWaitMs },
        writes: { maxBatchSize: settings.batchSize, maxWaitMs: settings.batchWaitMs },
      },
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
    });
  } catch (error) {
    await store.close();
    await upstream?.close();
    io.stderr.write(`prserv: cannot listen on ${settings.host}:${settings.port}: ${describe(error)}\n`);
    return 1;
  }
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
      upstream: upstream?.name ?? null,
      pid: process.pid,
    },
    'prserv listening',
  );

  return new Promise<number>((resolve) => {
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
        await server.close();
        await store.close();
        await upstream?.close();
        logger.info({}, 'stopped');
        resolve(0);
      } catch (error) {
        logger.error({ err: describe(error) }, 'shutdown failed');
        resolve(1);
      }
    };
    process.on('SIGTERM', (signal) => void stop(signal));
    process.on('SIGINT', (signal) => void stop(signal));
  });
}

function describe(error: unknown): string {
  return errorChain(error).join(': ');
}
