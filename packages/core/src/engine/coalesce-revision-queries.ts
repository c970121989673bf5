import { isPrStoreError, sqlStateOf, toPrStoreError } from '../errors/pr-store-error.js';
import type { AllocationDecision, ChecksumFacts } from './allocation-rules.js';
import type { AllocationRequest } from './batch-allocation.js';
import {
  type BatchOutcome,
  type BatchScheduler,
  type CoalescerBounds,
  createRequestCoalescer,
} from './request-coalescer.js';
import type { FactsKey, RevisionQueries } from './revision-queries.js';

/** How the engine gathers concurrent requests into shared round trips. */
export interface CoalescingOptions {
  /** Lookups of stored answers (test-pr, max-package-pr, test-package, the read of every get-pr). */
  readonly reads?: CoalescerBounds;
  /** New allocations: one transaction per batch. At most one batch writes at a time by default. */
  readonly writes?: CoalescerBounds;
  /** For tests: replaces `setImmediate`/`setTimeout`. */
  readonly schedule?: BatchScheduler;
  /** Called with each batch's kind and size as it leaves (for metrics). Default: nothing. */
  readonly onBatch?: (kind: 'read' | 'write', size: number) => void;
}

/**
 * Wraps `queries` so that reads and allocations issued while a round trip is in flight share
 * the next one: a read batch is one statement, an allocation batch one transaction (one WAL
 * flush). Correctness stays with the database: a batch takes the same package locks and reads
 * the same facts as single requests would, so replicas coalescing on their own mix safely.
 */
export function coalesceRevisionQueries(queries: RevisionQueries, options: CoalescingOptions = {}): RevisionQueries {
  const { onBatch, schedule } = options;
  const shared = (kind: 'read' | 'write') => ({
    schedule,
    retryAlone: isRequestSpecific,
    onBatch: onBatch && ((size: number) => onBatch(kind, size)),
  });
  const reads = createRequestCoalescer<FactsKey, ChecksumFacts>(async (keys) => everyOk(await queries.readFacts(keys)), {
    ...options.reads,
    ...shared('read'),
  });
  const writes = createRequestCoalescer<AllocationRequest, AllocationDecision>(
    async (requests) => everyOk(await queries.allocate(requests)),
    { ...options.writes, ...shared('write') },
  );
  return {
    ...queries,
    readFacts: (keys) => (keys.length === 1 ? reads.submit(keys[0]!).then((facts) => [facts]) : queries.readFacts(keys)),
    allocate: (requests) =>
      requests.length === 1 ? writes.submit(requests[0]!).then((decision) => [decision]) : queries.allocate(requests),
  };
}

function everyOk<O>(values: readonly O[]): BatchOutcome<O>[] {
  return values.map((value) => ({ ok: true, value }));
}

/** SQLSTATE classes of a statement refused for what a request carried: 22 data exception, 23 integrity constraint violation. */
const REQUEST_SQLSTATE_CLASSES = ['22', '23'];

/**
 * A batch that failed for a reason that may belong to one request (a constraint, a bad value, a
 * frozen package without a revision) is retried one request at a time, so one bad request never
 * fails its neighbours. Other failures fail every request alike, at once: losing the database, and
 * refusals that have nothing to do with any one request, such as a statement timeout (57014, a
 * lock held too long by an import or another replica) or a missing table. Retried one by one,
 * each request would wait as long again while every later batch waited behind them.
 */
function isRequestSpecific(error: unknown): boolean {
  const classified = isPrStoreError(error) ? error : toPrStoreError(error, 'run a batch');
  if (classified.code === 'PACKAGE_FROZEN') return true;
  if (classified.code !== 'DATABASE_ERROR') return false;
  // Without a SQLSTATE the driver refused it before sending (a value it could not bind).
  const sqlState = sqlStateOf(classified);
  return sqlState === undefined || REQUEST_SQLSTATE_CLASSES.some((sqlClass) => sqlState.startsWith(sqlClass));
}
