import { openPrStore, type OpenPrStoreOptions, type PrStore } from '@prserv/core';
import { type PrServerOptions, type RunningPrServer, startPrServer } from '@prserv/server';

/** A PR server running in the test's own process on 127.0.0.1, over a store it owns. */
export interface InProcessServer {
  readonly store: PrStore;
  readonly port: number;
  /** `127.0.0.1:PORT`. */
  readonly address: string;
  /** Stops listening (connections are drained); the store stays open. */
  stopListening(): Promise<void>;
  /** Listens again on the same port, as a restarted server would. */
  listenAgain(): Promise<void>;
  /** Stops listening and closes the store. */
  close(): Promise<void>;
}

/** Options of {@link startInProcessServer}: the store's, and the server's besides its engine and address. */
export interface InProcessServerOptions {
  readonly store?: Omit<OpenPrStoreOptions, 'database'>;
  readonly server?: Omit<PrServerOptions, 'engine' | 'host' | 'port'>;
}

/**
 * Opens a store on `database` and serves it on a free loopback port. For the tests of packages
 * that talk to a PR server (the client, the upstream pool) without depending on the server
 * package themselves.
 */
export async function startInProcessServer(database: string, options: InProcessServerOptions = {}): Promise<InProcessServer> {
  const store = await openPrStore({ ...options.store, database });
  const listen = (port: number) => startPrServer({ ...options.server, engine: store, host: '127.0.0.1', port });
  let running: RunningPrServer | undefined;
  try {
    running = await listen(0);
  } catch (error) {
    await store.close();
    throw error;
  }
  const port = running.address.port;
  return {
    store,
    port,
    address: `127.0.0.1:${port}`,
    async stopListening() {
      await running?.close();
      running = undefined;
    },
    async listenAgain() {
      running ??= await listen(port);
    },
    async close() {
      await running?.close();
      running = undefined;
      await store.close();
    },
  };
}
