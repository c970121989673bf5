import { CompiledQuery, type Kysely, type Transaction } from 'kysely';
import type { ChainedFacts, ChecksumFacts, UpstreamFacts } from './allocation-rules.js';
import { decideChainedGetPr, decideLegacyImport, type AllocationDecision } from './allocation-rules.js';
import { type AllocationRequest, planAllocations } from './batch-allocation.js';
import { increaseRevision } from './revision.js';
import { type ChecksumKey, checksumId, type PackageKey, packageId, type RevisionRow } from './revision-keys.js';
import { EXPORT_ROWS, INSERT_ROWS, LOCK_PACKAGES, READ_FACTS, READ_GREATEST_BETWEEN } from './revision-statements.js';
import type { PrDatabase } from './schema.js';

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
  /** A chained get-pr (docs/protocol.md §7.2) under the package's lock, given upstream's answers. */
  allocateChained(key: ChecksumKey, upstream: UpstreamFacts, history: boolean): Promise<AllocationDecision>;
  /** Local facts of a chained server for one mode, reusing `known` facts (of that mode) when given. */
  readChainedFacts(key: ChecksumKey, upstream: UpstreamFacts, history: boolean, known?: ChecksumFacts): Promise<ChainedFacts>;
  /** Stores one row under the package's lock; `keepHigher` applies the legacy import rule. */
  importOne(row: RevisionRow, keepHigher: boolean): Promise<string>;
  /** Stored rows matching the filter, ordered by package, revision and checksum. */
  exportRows(filter: ExportFilter): Promise<RevisionRow[]>;
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
}

/** The engine's SQL over a Kysely instance whose schema is current. */
export function createRevisionQueries(db: Kysely<PrDatabase>, options: RevisionQueriesOptions = {}): RevisionQueries {
  const lockPackages = options.singleSession ? async () => {} : lockPackagesInDatabase;
  return {
    readFacts: (keys) => readFacts(db, keys),

    allocate: (requests) =>
      db.transaction().execute(async (trx) => {
        await lockPackages(trx, requests);
        const plan = planAllocations(requests, await readFacts(trx, requests));
        await insertRows(trx, plan.rows);
        return plan.decisions;
      }),

    allocateChained: (key, upstream, history) =>
      db.transaction().execute(async (trx) => {
        await lockPackages(trx, [key]);
        const decision = decideChainedGetPr(await readChainedFacts(trx, key, upstream, history), upstream, history);
        if (decision.isNew) await insertRows(trx, [{ ...key, value: decision.value }]);
        return decision;
      }),

    readChainedFacts: (key, upstream, history, known) => readChainedFacts(db, key, upstream, history, known),

    importOne: (row, keepHigher) =>
      db.transaction().execute(async (trx) => {
        await lockPackages(trx, [row]);
        if (keepHigher) {
          const [facts] = await readFacts(trx, [{ ...row, history: false }]);
          const decision = decideLegacyImport(facts!.checksumLast, row.value);
          if (!decision.isNew) return decision.value;
        }
        await insertRows(trx, [row]);
        return row.value;
      }),

    exportRows: (filter) => exportRows(db, filter),
  };
}

async function run<R>(db: Queryable, text: string, parameters: readonly unknown[]): Promise<R[]> {
  const result = await db.executeQuery<R>(CompiledQuery.raw(text, parameters as unknown[]));
  return result.rows as R[];
}

async function readFacts(db: Queryable, keys: readonly FactsKey[]): Promise<ChecksumFacts[]> {
  // Requests for the same key in one batch share one probe.
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
  const rows = await run<FactsRow>(db, READ_FACTS, [versions, pkgarchs, checksums, histories]);
  const facts: ChecksumFacts[] = new Array(versions.length);
  for (const row of rows) {
    const history = histories[row.ord - 1];
    facts[row.ord - 1] = {
      packageMax: row.package_max,
      checksumFirst: history ? row.checksum_value : null,
      checksumLast: history ? null : row.checksum_value,
    };
  }
  return slotOf.map((slot) => facts[slot]!);
}

/**
 * Serialises writers of the given packages across every connection and replica until the
 * transaction ends. Packages whose hashes collide merely take turns.
 */
async function lockPackagesInDatabase(trx: Transaction<PrDatabase>, packages: readonly PackageKey[]): Promise<void> {
  await run(trx, LOCK_PACKAGES, [packages.map((key) => key.version), packages.map((key) => key.pkgarch)]);
}

async function insertRows(trx: Transaction<PrDatabase>, rows: readonly RevisionRow[]): Promise<void> {
  if (rows.length === 0) return;
  await run(trx, INSERT_ROWS, [
    rows.map((row) => row.version),
    rows.map((row) => row.pkgarch),
    rows.map((row) => row.checksum),
    rows.map((row) => row.value),
  ]);
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
