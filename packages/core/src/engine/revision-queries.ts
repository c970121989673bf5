import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { ChainedFacts, ChecksumFacts, UpstreamFacts } from './allocation-rules.js';
import { decideChainedGetPr, decideLegacyImport, type AllocationDecision } from './allocation-rules.js';
import {
  type AllocationRequest,
  type FreezeMatch,
  frozenAnswer,
  frozenError,
  planAllocations,
  type StoredRow,
  type WriteFacts,
} from './batch-allocation.js';
import { inPipelinedTransaction, type PipelinedSessions, type PipelinedStatement } from './pipelined-session.js';
import { increaseRevision } from './revision.js';
import { OwnStores, SeenFactsGate } from './seen-facts.js';
import { type ChecksumKey, checksumId, MAX_REVISION_LENGTH, type PackageKey, packageId, type RevisionRow } from './revision-keys.js';
import {
  EXPORT_ROWS,
  INSERT_ROWS,
  LOCK_AGAINST_IMPORTS,
  LOCK_PACKAGES,
  PACKAGE_HISTORY,
  READ_FACTS,
  READ_FROZEN,
  READ_GREATEST_BETWEEN,
  READ_WRITE_FACTS,
  STORE_IF_UNCHANGED,
} from './revision-statements.js';
import type { PrDatabase, StoredHow } from './schema.js';
import { PrStoreError } from '../errors/pr-store-error.js';
import { notify } from './notify.js';

/** A key whose facts to read: a checksum, or a package alone (`checksum: null`), for one mode. */
export interface FactsKey extends PackageKey {
  readonly checksum: string | null;
  /** Which facts the mode needs (see `ChecksumFacts`). */
  readonly history: boolean;
}

/** Filters of an export; a null filter matches everything. */
export interface ExportFilter {
  readonly version: string | null;
  readonly pkgarch: string | null;
  readonly checksum: string | null;
  /** All rows, or per package only the rows holding its greatest revision. */
  readonly history: boolean;
}

/**
 * The database work of the engine. Reads and allocations take batches, so a coalescing layer
 * (see `coalesceRevisionQueries`) can serve many requests with one round trip; a plain engine
 * passes batches of one. Keys arrive checked.
 */
export interface RevisionQueries {
  /** One snapshot read: the facts of every key, in order. */
  readFacts(keys: readonly FactsKey[]): Promise<ChecksumFacts[]>;
  /**
   * One transaction: takes the packages' locks, reads their facts, decides every request in
   * order (`planAllocations`), stores the new rows, commits. Decisions come back in order.
   */
  allocate(requests: readonly AllocationRequest[]): Promise<AllocationDecision[]>;
  /**
   * A chained get-pr (docs/protocol.md §7.2) under the package's lock, given upstream's answers.
   * `key.client` is recorded with a stored row.
   */
  allocateChained(key: ChecksumKey & { readonly client?: string }, upstream: UpstreamFacts, history: boolean): Promise<AllocationDecision>;
  /** Local facts of a chained server for one mode, reusing `known` facts (of that mode) when given. */
  readChainedFacts(key: ChecksumKey, upstream: UpstreamFacts, history: boolean, known?: ChecksumFacts): Promise<ChainedFacts>;
  /**
   * Stores one row under the package's lock; `keepHigher` applies the legacy import rule;
   * `row.client` is recorded with it. A frozen package refuses it (`PACKAGE_FROZEN`).
   */
  importOne(row: RevisionRow & { readonly client?: string }, keepHigher: boolean): Promise<string>;
  /** Stored rows matching the filter, ordered by package, revision and checksum. */
  exportRows(filter: ExportFilter): Promise<RevisionRow[]>;
  /** One snapshot read: the freeze matching each package, or null, in order. */
  readFrozen(keys: readonly PackageKey[]): Promise<(FreezeMatch | null)[]>;
  /** Every row of a package (of one checksum when given) with its provenance, in revision order. */
  packageHistory(key: PackageKey, checksum: string | null): Promise<StoredRevision[]>;
}

/** A stored row of a package and how it came to be stored. Fields are null where unknown. */
export interface StoredRevision {
  readonly checksum: string;
  readonly value: string;
  /** When it was stored (database clock), ISO 8601 UTC; null for rows stored before prserv recorded it. */
  readonly storedAt: string | null;
  /** The client's address; null when unknown or stored in-process. */
  readonly storedBy: string | null;
  /** How it was stored; null when unknown. */
  readonly storedHow: StoredHow | null;
  /** The package's greatest revision just before; null for its first row, or when unknown. */
  readonly previousMax: string | null;
}

type Queryable = Kysely<PrDatabase> | Transaction<PrDatabase>;

interface FactsRow {
  readonly ord: number;
  readonly checksum_value: string | null;
  readonly package_max: string | null;
}

/** Options of {@link createRevisionQueries}. */
export interface RevisionQueriesOptions {
  /**
   * True when one session serves the database and runs its transactions one at a time (the
   * embedded store: one process, one PGlite connection, exclusive transactions). Writers are
   * then serialised by the database already and package locks are skipped. Default false.
   */
  readonly singleSession?: boolean;
  /**
   * Sessions that send statements without waiting for earlier answers. When given, an allocation
   * batch whose requests bring their lookups' facts (`seen`) takes one round trip while those
   * facts hold, otherwise two (BEGIN, locks and read; insert and COMMIT), instead of six (five
   * without locks). Default: none (every statement waits for the one before).
   */
  readonly pipelinedSessions?: PipelinedSessions;
  /**
   * Called with the way each pipelined allocation batch went (for metrics). Default: nothing.
   * See {@link WriteBatchPath}.
   */
  readonly onWriteBatch?: (path: WriteBatchPath) => void;
}

/**
 * How a pipelined allocation batch was stored: `first-try`, in one round trip from the facts its
 * lookups read; `overtaken`, that try stored nothing (another writer, an import or a freeze had
 * moved its packages) and the batch was decided again under the locks; `general`, decided under
 * the locks without a first try (its lookups brought no facts, or the tries are paused after
 * several overtaken batches in a row). Many `overtaken` and `general` batches mean replicas
 * keep writing the same packages.
 */
export type WriteBatchPath = 'first-try' | 'overtaken' | 'general';

/** The engine's SQL over a Kysely instance whose schema is current. */
export function createRevisionQueries(db: Kysely<PrDatabase>, options: RevisionQueriesOptions = {}): RevisionQueries {
  const lockPackages = options.singleSession ? async () => {} : lockPackagesInDatabase;
  const { pipelinedSessions } = options;
  const optimism: Optimism = { ownStores: new OwnStores(), gate: new SeenFactsGate() };
  // A single session serialises writers by itself (see `singleSession`): no lock statements.
  const lockStatements = (packages: readonly PackageKey[]): PipelinedStatement[] =>
    options.singleSession ? [] : [[LOCK_AGAINST_IMPORTS, []], [LOCK_PACKAGES, lockParameters(packages)]];
  return {
    readFacts: (keys) => readFacts(db, keys),

    allocate: pipelinedSessions
      ? (requests) => allocatePipelined(pipelinedSessions, requests, lockStatements(requests), optimism, options.onWriteBatch)
      : (requests) =>
          writeTransaction(db).execute(async (trx) => {
            await lockPackages(trx, requests);
            // Read after the locks, in the transaction: the facts and freezes every replica committed.
            const plan = planAllocations(requests, await readWriteFacts(trx, requests));
            await insertRows(trx, plan.rows);
            return plan.decisions;
          }),

    allocateChained: (key, upstream, history) =>
      writeTransaction(db).execute(async (trx) => {
        await lockPackages(trx, [key]);
        const [facts] = await readWriteFacts(trx, [{ ...key, history }]);
        const decision = decideChainedGetPr(await readChainedFacts(trx, key, upstream, history, facts), upstream, history);
        if (!decision.isNew) return decision;
        if (facts!.frozenBy) return frozenAnswer(key, facts!.packageMax, facts!.frozenBy);
        // Extending an upstream revision near the limit (u.0) would store what no import reads back.
        if (decision.value.length > MAX_REVISION_LENGTH) {
          throw new PrStoreError(
            'UPSTREAM_UNAVAILABLE',
            `the upstream's revision ${JSON.stringify(upstream.packageMax)} of ${key.version} ${key.pkgarch} cannot be extended: ` +
              `the new revision would be longer than ${MAX_REVISION_LENGTH} characters`,
          );
        }
        const mode = history ? 'get-pr-history' : 'get-pr-nohist';
        const row: StoredRow = {
          version: key.version,
          pkgarch: key.pkgarch,
          checksum: key.checksum,
          value: decision.value,
          // Numbering that depends on upstream's says so; a package upstream does not know is local.
          storedHow: upstream.packageMax === null ? mode : `${mode}-upstream`,
          storedBy: key.client ?? null,
          previousMax: facts!.packageMax,
        };
        await insertRows(trx, [row]);
        return decision;
      }),

    readChainedFacts: (key, upstream, history, known) => readChainedFacts(db, key, upstream, history, known),

    importOne: (row, keepHigher) =>
      writeTransaction(db).execute(async (trx) => {
        await lockPackages(trx, [row]);
        const [facts] = await readWriteFacts(trx, [{ ...row, history: false }]);
        if (facts!.frozenBy) throw frozenError(row, facts!.frozenBy, 'import-one may not store into it');
        if (keepHigher) {
          const decision = decideLegacyImport(facts!.checksumLast, row.value);
          if (!decision.isNew) return decision.value;
        }
        await insertRows(trx, [
          {
            version: row.version,
            pkgarch: row.pkgarch,
            checksum: row.checksum,
            value: row.value,
            storedHow: 'import-one',
            storedBy: row.client ?? null,
            previousMax: facts!.packageMax,
          },
        ]);
        return row.value;
      }),

    exportRows: (filter) => exportRows(db, filter),

    readFrozen: (keys) => readFrozen(db, keys),

    packageHistory: (key, checksum) => packageHistory(db, key, checksum),
  };
}

/**
 * A transaction that writes: read committed, whatever the database's default, so that a statement
 * run after the locks sees every row their previous holders committed. (Under repeatable read the
 * transaction's snapshot would be taken by the statement that waits for the locks, before the
 * holders commit.)
 */
function writeTransaction(db: Kysely<PrDatabase>) {
  return db.transaction().setIsolationLevel('read committed');
}

async function run<R>(db: Queryable, text: string, parameters: readonly unknown[]): Promise<R[]> {
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, parameters as unknown[]));
  return result.rows as R[];
}

async function readFacts(db: Queryable, keys: readonly FactsKey[]): Promise<ChecksumFacts[]> {
  const batch = dedupe(keys);
  const rows = await run<FactsRow>(db, READ_FACTS, batch.parameters);
  const facts: ChecksumFacts[] = new Array(batch.size);
  for (const row of rows) facts[row.ord - 1] = toFacts(row, batch.histories[row.ord - 1]!);
  return batch.slotOf.map((slot) => facts[slot]!);
}

/**
 * The same transaction as the plain `allocate`, pipelined. A batch whose requests bring the facts
 * their lookups read is planned from them and sent whole: BEGIN, the locks, the insert of the
 * planned rows on condition that those facts still hold (checked by the database under the
 * locks), COMMIT: one round trip. Each statement runs after the one before it has finished, so
 * the check sees every writer that held the locks before. When the facts moved (another replica
 * or an import came first), nothing was stored and the batch takes the general way, two round
 * trips: BEGIN, the locks and a read; then the insert and COMMIT.
 */
async function allocatePipelined(
  sessions: PipelinedSessions,
  requests: readonly AllocationRequest[],
  locks: readonly PipelinedStatement[],
  optimism: Optimism,
  onWriteBatch?: (path: WriteBatchPath) => void,
): Promise<AllocationDecision[]> {
  const seen = optimism.gate.shouldTry() ? optimism.ownStores.seenFacts(requests) : undefined;
  const plan = seen && planAllocations(requests, seen);
  let path: WriteBatchPath = 'general';
  // Only a stored row proves the facts held: a plan that stores nothing takes the general way.
  if (plan && plan.rows.length > 0) {
    const stored = await inPipelinedTransaction(sessions, async (transaction) => {
      const answers = await transaction.commitWith([...locks, [STORE_IF_UNCHANGED, storeIfUnchangedParameters(requests, seen, plan.rows)]]);
      return (answers[answers.length - 1] as { stored: number }[])[0]!.stored;
    });
    // All or nothing: every row stored, or none (the facts had moved). Anything else cannot
    // happen under the locks; were it to, the general way below re-reads what is stored.
    const held = stored === plan.rows.length;
    optimism.gate.record(held);
    if (held) {
      optimism.ownStores.note(plan.rows);
      notify(onWriteBatch, 'first-try');
      return plan.decisions;
    }
    path = 'overtaken';
  }
  const decided = await inPipelinedTransaction(sessions, async (transaction) => {
    const keys = dedupe(requests);
    const answers = await transaction.send([...locks, [READ_WRITE_FACTS, keys.parameters]]);
    const rows = answers[answers.length - 1] as WriteFactsRow[];
    const plan = planAllocations(requests, toWriteFacts(keys, rows));
    await transaction.commitWith(plan.rows.length === 0 ? [] : [[INSERT_ROWS, insertParameters(plan.rows)]]);
    return plan;
  });
  optimism.ownStores.note(decided.rows);
  notify(onWriteBatch, path);
  return decided.decisions;
}

/** What an engine keeps to plan batches from their lookups' facts (see {@link allocatePipelined}). */
interface Optimism {
  readonly ownStores: OwnStores;
  readonly gate: SeenFactsGate;
}

function storeIfUnchangedParameters(
  requests: readonly AllocationRequest[],
  seen: readonly ChecksumFacts[],
  rows: readonly StoredRow[],
): unknown[] {
  return [
    requests.map((request) => request.version),
    requests.map((request) => request.pkgarch),
    requests.map((request) => request.checksum),
    requests.map((request) => request.history),
    requests.map((request, index) => (request.history ? seen[index]!.checksumFirst : seen[index]!.checksumLast)),
    seen.map((facts) => facts.packageMax),
    ...insertParameters(rows),
  ];
}

type WriteFactsRow = FactsRow & { readonly frozen_by: string | null };

/** {@link readFacts} plus each package's freeze: the write path's one read, under its locks. */
async function readWriteFacts(db: Queryable, keys: readonly FactsKey[]): Promise<WriteFacts[]> {
  const batch = dedupe(keys);
  return toWriteFacts(batch, await run<WriteFactsRow>(db, READ_WRITE_FACTS, batch.parameters));
}

function toWriteFacts(batch: ReturnType<typeof dedupe>, rows: readonly WriteFactsRow[]): WriteFacts[] {
  const facts: WriteFacts[] = new Array(batch.size);
  for (const row of rows) {
    const history = batch.histories[row.ord - 1]!;
    facts[row.ord - 1] = {
      packageMax: row.package_max,
      checksumFirst: history ? row.checksum_value : null,
      checksumLast: history ? null : row.checksum_value,
      frozenBy: row.frozen_by === null ? null : toFreezeMatch(row.frozen_by),
    };
  }
  return batch.slotOf.map((slot) => facts[slot]!);
}

/** The distinct keys of a batch as statement parameters: requests for the same key share one probe. */
function dedupe(keys: readonly FactsKey[]) {
  const slots = new Map<string, number>();
  const slotOf: number[] = [];
  const versions: string[] = [];
  const pkgarchs: string[] = [];
  const checksums: (string | null)[] = [];
  const histories: boolean[] = [];
  for (const key of keys) {
    const id = `${key.history ? 'h' : 'n'}${key.checksum === null ? packageId(key) : checksumId(key as ChecksumKey)}`;
    let slot = slots.get(id);
    if (slot === undefined) {
      slot = versions.length;
      slots.set(id, slot);
      versions.push(key.version);
      pkgarchs.push(key.pkgarch);
      checksums.push(key.checksum);
      histories.push(key.history);
    }
    slotOf.push(slot);
  }
  return { size: versions.length, slotOf, histories, parameters: [versions, pkgarchs, checksums, histories] };
}

function toFacts(row: FactsRow, history: boolean): ChecksumFacts {
  return {
    packageMax: row.package_max,
    checksumFirst: history ? row.checksum_value : null,
    checksumLast: history ? null : row.checksum_value,
  };
}

/** The statements' `version_glob LF pkgarch_glob` (see `frozenBy` in revision-statements.ts). */
function toFreezeMatch(text: string | null): FreezeMatch | null {
  if (text === null) return null;
  const split = text.lastIndexOf('\n');
  return { version: text.slice(0, split), pkgarch: text.slice(split + 1) };
}

async function readFrozen(db: Queryable, keys: readonly PackageKey[]): Promise<(FreezeMatch | null)[]> {
  const rows = await run<{ ord: number; frozen_by: string | null }>(db, READ_FROZEN, [
    keys.map((key) => key.version),
    keys.map((key) => key.pkgarch),
  ]);
  const frozen: (FreezeMatch | null)[] = new Array(keys.length).fill(null);
  for (const row of rows) frozen[row.ord - 1] = toFreezeMatch(row.frozen_by);
  return frozen;
}

interface HistoryRow {
  readonly checksum: string;
  readonly value: string;
  readonly stored_at: string | null;
  readonly stored_by: string | null;
  readonly stored_how: StoredHow | null;
  readonly previous_max: string | null;
}

async function packageHistory(db: Queryable, key: PackageKey, checksum: string | null): Promise<StoredRevision[]> {
  const rows = await run<HistoryRow>(db, PACKAGE_HISTORY, [key.version, key.pkgarch, checksum]);
  return rows.map((row) => ({
    checksum: row.checksum,
    value: row.value,
    storedAt: row.stored_at,
    storedBy: row.stored_by,
    storedHow: row.stored_how,
    previousMax: row.previous_max,
  }));
}

/**
 * Waits for a running bulk import, then serialises writers of the given packages across every
 * connection and replica until the transaction ends. Packages whose hashes collide merely take turns.
 */
async function lockPackagesInDatabase(trx: Transaction<PrDatabase>, packages: readonly PackageKey[]): Promise<void> {
  await run(trx, LOCK_AGAINST_IMPORTS, []);
  await run(trx, LOCK_PACKAGES, lockParameters(packages));
}

function lockParameters(packages: readonly PackageKey[]): unknown[] {
  return [packages.map((key) => key.version), packages.map((key) => key.pkgarch)];
}

async function insertRows(trx: Transaction<PrDatabase>, rows: readonly StoredRow[]): Promise<void> {
  if (rows.length === 0) return;
  await run(trx, INSERT_ROWS, insertParameters(rows));
}

function insertParameters(rows: readonly StoredRow[]): unknown[] {
  return [
    rows.map((row) => row.version),
    rows.map((row) => row.pkgarch),
    rows.map((row) => row.checksum),
    rows.map((row) => row.value),
    rows.map((row) => row.storedBy),
    rows.map((row) => row.storedHow),
    rows.map((row) => row.previousMax),
  ];
}

/** Local facts plus the greatest local extension of upstream's maximum. */
async function readChainedFacts(
  db: Queryable,
  key: ChecksumKey,
  upstream: UpstreamFacts,
  history: boolean,
  known?: ChecksumFacts,
): Promise<ChainedFacts> {
  const facts = known ?? (await readFacts(db, [{ ...key, history }]))[0]!;
  if (upstream.packageMax === null || upstream.checksumValue !== null || facts.checksumLast !== null) {
    return { ...facts, subMax: null };
  }
  // Extensions of u (u.0, u.3.1, …) are exactly the keys strictly between u and increase(u).
  const [row] = await run<{ value: string }>(db, READ_GREATEST_BETWEEN, [
    key.version,
    key.pkgarch,
    upstream.packageMax,
    increaseRevision(upstream.packageMax),
  ]);
  return { ...facts, subMax: row?.value ?? null };
}

async function exportRows(db: Kysely<PrDatabase>, filter: ExportFilter): Promise<RevisionRow[]> {
  return db.transaction().execute(async (trx) => {
    // Reading every row is the one job a sequential scan does best (see REQUEST_PATH_SETTINGS).
    await run(trx, 'SET LOCAL enable_seqscan = on', []);
    return run<RevisionRow>(trx, EXPORT_ROWS, [filter.version, filter.pkgarch, filter.checksum, filter.history]);
  });
}
