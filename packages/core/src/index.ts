// Allocation engine
export {
  compareRevisions,
  formatRevision,
  increaseRevision,
  isRevision,
  isRevisionUnder,
  maxRevision,
  normalizeRevision,
  parseRevision,
} from './engine/revision.js';
export type { RevisionComponents } from './engine/revision.js';
export {
  INITIAL_REVISION,
  decideChainedGetPr,
  decideGetPr,
  decideLegacyImport,
  decideTestPr,
} from './engine/allocation-rules.js';
export type { AllocationDecision, ChainedFacts, ChecksumFacts, UpstreamFacts } from './engine/allocation-rules.js';
export { KEY_BYTES_CEILING, MAX_KEY_BYTES, MAX_REVISION_LENGTH } from './engine/revision-keys.js';
export type { ChecksumKey, PackageKey, RevisionRow } from './engine/revision-keys.js';
export { planAllocations } from './engine/batch-allocation.js';
export type { AllocationPlan, AllocationRequest } from './engine/batch-allocation.js';
export { createPrEngine, createPrEngineOver } from './engine/pr-engine.js';
export type {
  ExportQuery,
  ImportOneInput,
  PrEngine,
  PrEngineOptions,
  RevisionQuery,
  UpstreamPrSource,
} from './engine/pr-engine.js';
export { createRevisionQueries } from './engine/revision-queries.js';
export type { ExportFilter, FactsKey, RevisionQueries, RevisionQueriesOptions } from './engine/revision-queries.js';
export { coalesceRevisionQueries } from './engine/coalesce-revision-queries.js';
export type { CoalescingOptions } from './engine/coalesce-revision-queries.js';
export { DEFAULT_COALESCER_BOUNDS, createRequestCoalescer } from './engine/request-coalescer.js';
export type {
  BatchOutcome,
  BatchRunner,
  BatchScheduler,
  CoalescerBounds,
  RequestCoalescer,
  RequestCoalescerOptions,
} from './engine/request-coalescer.js';
export { migrateToLatest } from './engine/migrations.js';
export type { PrDatabase, RevisionTable } from './engine/schema.js';

// Stores
export { DEFAULT_EMBEDDED_PATH, DEFAULT_POOL_SIZE, isPostgresUrl, openPrStore } from './store/open-pr-store.js';
export type { OpenPrStoreOptions, PoolFigures, PrStore, PrStoreKind } from './store/open-pr-store.js';

// Errors
export { PR_STORE_ERROR_CODES, PrStoreError, isPrStoreError } from './errors/pr-store-error.js';
export type { PrStoreErrorCode } from './errors/pr-store-error.js';

// asyncrpc codec (also the entry `@prserv/core/protocol`, which loads no database code)
export * from './protocol/index.js';
