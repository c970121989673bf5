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
export { describeFreeze, planAllocations } from './engine/batch-allocation.js';
export type { AllocationPlan, AllocationRequest, FreezeMatch, StoredRow, WriteFacts } from './engine/batch-allocation.js';
export { freezePackages, globToLike, listFreezes, thawPackages } from './engine/package-freezes.js';
export type { FreezeInput, PackageFreeze } from './engine/package-freezes.js';
export { createPrEngine, createPrEngineOver } from './engine/pr-engine.js';
export type {
  ExportQuery,
  ImportOneInput,
  PackageHistoryQuery,
  PrEngine,
  PrEngineOptions,
  PrPreview,
  RevisionQuery,
  UpstreamPrSource,
} from './engine/pr-engine.js';
export { createRevisionQueries } from './engine/revision-queries.js';
export type { ExportFilter, FactsKey, RevisionQueries, RevisionQueriesOptions, StoredRevision, WriteBatchPath } from './engine/revision-queries.js';
export { inPipelinedTransaction } from './engine/pipelined-session.js';
export type { PipelinedSession, PipelinedSessions, PipelinedTransaction, PipelinedStatement } from './engine/pipelined-session.js';
export { pipelinedPgSessions } from './store/pipelined-pg-sessions.js';
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
export { STORED_HOW_VALUES } from './engine/schema.js';
export type { FreezeTable, PrDatabase, RevisionTable, StoredHow } from './engine/schema.js';

// Stores
export { DEFAULT_EMBEDDED_PATH, DEFAULT_POOL_SIZE, isPostgresUrl, openPrStore } from './store/open-pr-store.js';
export type { OpenPrStoreOptions, PoolFigures, PrStore, PrStoreKind } from './store/open-pr-store.js';

// Data tools: import from BitBake's PR databases and export files, export, verify, migrate
export { openImportSource } from './data/open-import-source.js';
export type { OpenImportSourceOptions } from './data/open-import-source.js';
export { BITBAKE_PR_TABLES, openBitbakeSqliteSource } from './data/bitbake-sqlite-source.js';
export type { BitbakePrTable, BitbakeSqliteSourceOptions } from './data/bitbake-sqlite-source.js';
export { openPrautoIncSource } from './data/prauto-inc-source.js';
export { openBitbakeJsonExportSource } from './data/bitbake-json-export-source.js';
export { JSON_EXPORT_FORMAT, JSON_EXPORT_FORMAT_VERSION, openJsonExportSource } from './data/json-export-format.js';
export type { JsonExportHeader } from './data/json-export-format.js';
export type { ImportSource, SourceRow } from './data/source-row.js';
export { DEFAULT_IMPORT_BATCH_SIZE, DEFAULT_REPORT_LIMIT, checkSourceRow, importRevisions, importWithin } from './data/import-revisions.js';
export type { ImportConflict, ImportConflictKind, ImportReport, ImportRevisionsOptions, SkippedRow } from './data/import-revisions.js';
export { DEFAULT_EXPORT_PAGE_SIZE, streamRevisions } from './data/export-revisions.js';
export type { StreamRevisionsOptions } from './data/export-revisions.js';
export { EXPORT_FORMATS, formatRevisions, isExportFormat } from './data/export-formats.js';
export type { ExportFormat } from './data/export-formats.js';
export { verifyStore } from './data/verify-store.js';
export type { VerifyFinding, VerifyReport, VerifyStoreOptions } from './data/verify-store.js';
export { fingerprintStore, migrateStore } from './data/migrate-store.js';
export type { MigrateReport, MigrateStoreOptions, StoreFingerprint } from './data/migrate-store.js';
export { DATA_STORE_STATEMENT_TIMEOUT_MS, openDataStore } from './data/open-data-store.js';
export type { DataStore } from './data/open-data-store.js';
export { DATA_TOOL_ERROR_CODES, DataToolError, isDataToolError } from './data/data-tool-error.js';
export type { DataToolErrorCode } from './data/data-tool-error.js';

// Errors
export { PR_STORE_ERROR_CODES, PrStoreError, isPrStoreError } from './errors/pr-store-error.js';
export type { PrStoreErrorCode } from './errors/pr-store-error.js';

// asyncrpc codec (also the entry `@prserv/core/protocol`, which loads no database code)
export * from './protocol/index.js';
