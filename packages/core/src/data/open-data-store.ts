import type { Kysely } from 'kysely';
import { createPrEngine } from '../engine/pr-engine.js';
import type { PrDatabase } from '../engine/schema.js';
import { openPrStore, type OpenPrStoreOptions, type PrStore } from '../store/open-pr-store.js';

/** Default statement timeout of a data-tool store, in ms: bulk statements are not build requests. */
export const DATA_STORE_STATEMENT_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/** A store opened for the data tools: the store (to close) and its database. */
export interface DataStore {
  readonly store: PrStore;
  readonly db: Kysely<PrDatabase>;
}

/**
 * Opens a store as {@link openPrStore} does (same `database` conventions, schema created or
 * upgraded, the embedded store's lock taken) and hands out its database for bulk work. Close it
 * with `store.close()`.
 */
export async function openDataStore(options: OpenPrStoreOptions = {}): Promise<DataStore> {
  let db: Kysely<PrDatabase> | undefined;
  const store = await openPrStore({
    statementTimeoutMs: DATA_STORE_STATEMENT_TIMEOUT_MS,
    poolSize: 2,
    coalescing: false,
    ...options,
    createEngine: (opened, engineOptions) => {
      db = opened;
      return (options.createEngine ?? createPrEngine)(opened, engineOptions);
    },
  });
  return { store, db: db! };
}
