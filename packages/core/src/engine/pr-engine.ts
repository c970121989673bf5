import type { Kysely } from 'kysely';
import { PrStoreError, toPrStoreError } from '../errors/pr-store-error.js';
import {
  type AllocationDecision,
  type ChecksumFacts,
  decideChainedGetPr,
  decideGetPr,
  decideTestPr,
  type UpstreamFacts,
} from './allocation-rules.js';
import { type FreezeMatch, frozenAnswer } from './batch-allocation.js';
import { type CoalescingOptions, coalesceRevisionQueries } from './coalesce-revision-queries.js';
import type { PipelinedSessions } from './pipelined-session.js';
import { normalizeRevision } from './revision.js';
import { createRevisionQueries, type RevisionQueries, type StoredRevision, type WriteBatchPath } from './revision-queries.js';
import {
  type ChecksumKey,
  checkChecksumKey,
  checkKeyLimit,
  checkKeyPart,
  checkPackageKey,
  checkRevisionValue,
  type KEY_BYTES_CEILING,
  MAX_KEY_BYTES,
  MAX_REVISION_LENGTH,
  type PackageKey,
  type RevisionRow,
} from './revision-keys.js';
import type { PrDatabase } from './schema.js';

/** Arguments of {@link PrEngine.getPr} and {@link PrEngine.testPr}. */
export interface RevisionQuery extends ChecksumKey {
  /** History mode (a checksum keeps its first revision). Default false: no-history, as BitBake. */
  readonly history?: boolean;
  /**
   * Address of the client that asked (a server passes its peer's), recorded with a row get-pr
   * stores. Default none: the row's `stored_by` stays empty.
   */
  readonly client?: string;
}

/** What {@link PrEngine.previewPr} reports: get-pr's answer, without storing anything. */
export interface PrPreview {
  /** What get-pr would answer now; null when it would be refused (a frozen package without a revision). */
  readonly value: string | null;
  /** True when get-pr would store a new revision (the package's PR would move). */
  readonly isNew: boolean;
  /** The package's greatest revision now, or null. */
  readonly packageMax: string | null;
  /** The freeze matching the package, or null. A frozen package never moves. */
  readonly frozenBy: FreezeMatch | null;
}

/** Arguments of {@link PrEngine.packageHistory}. */
export interface PackageHistoryQuery extends PackageKey {
  /** Only this checksum's rows. Default: every row of the package. */
  readonly checksum?: string | null;
}

/** Arguments of {@link PrEngine.importOne}. */
export interface ImportOneInput extends ChecksumKey {
  /** The revision to store, e.g. "3" or "1.2". */
  readonly value: string;
  /**
   * Legacy import rule: a checksum already holding a greater revision keeps it and that is the
   * answer. Default false: store the row if absent and answer the value as given.
   */
  readonly keepHigher?: boolean;
  /** Address of the client that asked, recorded with the row. Default none. */
  readonly client?: string;
}

/** Filters of {@link PrEngine.exportRows}; an absent or null filter matches everything. */
export interface ExportQuery {
  readonly version?: string | null;
  readonly pkgarch?: string | null;
  readonly checksum?: string | null;
  /** All rows (true) or, per package, only the rows holding its greatest revision (false, default). */
  readonly history?: boolean;
}

/**
 * The upstream PR server of a chained server (BitBake `--upstream`), as the engine needs it.
 * Revisions may come back in any spelling a server uses; the engine checks them.
 */
export interface UpstreamPrSource {
  /** Names the upstream in errors, e.g. `prserv.example.net:8585`. */
  readonly name: string;
  /** Upstream's greatest revision of the package, or null. */
  maxPackagePr(key: PackageKey): Promise<string | null>;
  /** Upstream's no-history revision for the checksum, or null. */
  testPr(key: ChecksumKey): Promise<string | null>;
}

/** Options of {@link createPrEngine}. */
export interface PrEngineOptions {
  /** Compute answers but never write (BitBake `--read-only`). Default false. */
  readonly readOnly?: boolean;
  /** Extend this upstream server's numbering in get-pr (docs/protocol.md §7). Default none. */
  readonly upstream?: UpstreamPrSource;
  /**
   * Gather concurrent requests into shared round trips (see {@link CoalescingOptions}); false
   * sends every request on its own. Default: coalescing with its default bounds.
   */
  readonly coalescing?: CoalescingOptions | false;
  /**
   * The database has one session, whose transactions run one at a time (the embedded store):
   * package locks are skipped. Default false. Never set it for PostgreSQL.
   */
  readonly singleSession?: boolean;
  /**
   * Sessions that pipeline statements: an allocation batch then takes one or two round trips
   * instead of six (see `RevisionQueriesOptions`). Default none.
   */
  readonly pipelinedSessions?: PipelinedSessions;
  /**
   * Longest `version`, `pkgarch` or `checksum` accepted, in UTF-8 bytes; longer ones are refused
   * with `INVALID_ARGUMENT`. From 1 to {@link KEY_BYTES_CEILING}. Default {@link MAX_KEY_BYTES} (512).
   */
  readonly maxKeyBytes?: number;
  /** Called each time a get-pr stores a new revision (for metrics). Default: nothing. */
  readonly onAllocated?: () => void;
  /** Called with the way each pipelined allocation batch went (for metrics; see `WriteBatchPath`). Default: nothing. */
  readonly onWriteBatch?: (path: WriteBatchPath) => void;
}

/** The allocation operations of a PR server (docs/protocol.md §6), one database transaction each at most. */
export interface PrEngine {
  /** True when the engine never writes. */
  readonly readOnly: boolean;
  /** The revision for a checksum, allocating (and storing) a new one when the rules say so. */
  getPr(query: RevisionQuery): Promise<string>;
  /** The revision get-pr would keep for a known checksum, or null; never stores. */
  testPr(query: RevisionQuery): Promise<string | null>;
  /** True when any revision is stored for the package. */
  testPackage(key: PackageKey): Promise<boolean>;
  /** The greatest revision of the package, or null. */
  maxPackagePr(key: PackageKey): Promise<string | null>;
  /** Stores one row if absent; null on a read-only engine. */
  importOne(input: ImportOneInput): Promise<string | null>;
  /** Stored rows matching the filters, ordered by package and revision. */
  exportRows(query?: ExportQuery): Promise<RevisionRow[]>;
  /**
   * The same engine on the same database, answering as a read-only one: what a writer would answer,
   * storing nothing. Lets a server serve some clients read-only (`--allow-write`).
   */
  readOnlyView?(): PrEngine;
  /** What get-pr would answer, whether it would store, and the package's freeze; never stores. */
  previewPr?(query: RevisionQuery): Promise<PrPreview>;
  /** The package's stored rows with their provenance (when, how, from where), in revision order. */
  packageHistory?(query: PackageHistoryQuery): Promise<StoredRevision[]>;
}

/**
 * Creates the engine over a Kysely instance whose schema is current (see `migrateToLatest`).
 * The engine owns no pool: closing the database is its creator's business.
 */
export function createPrEngine(db: Kysely<PrDatabase>, options: PrEngineOptions = {}): PrEngine {
  const queries = createRevisionQueries(db, {
    singleSession: options.singleSession ?? false,
    ...(options.pipelinedSessions ? { pipelinedSessions: options.pipelinedSessions } : {}),
    ...(options.onWriteBatch ? { onWriteBatch: options.onWriteBatch } : {}),
  });
  const layered = options.coalescing === false ? queries : coalesceRevisionQueries(queries, options.coalescing);
  return createPrEngineOver(layered, options);
}

/**
 * Creates the engine over any {@link RevisionQueries}, e.g. `createRevisionQueries(db)`
 * wrapped by `coalesceRevisionQueries` or by a layer of your own.
 */
export function createPrEngineOver(
  queries: RevisionQueries,
  options: Omit<PrEngineOptions, 'coalescing' | 'singleSession' | 'pipelinedSessions' | 'onWriteBatch'> = {},
): PrEngine {
  const maxKeyBytes = checkKeyLimit(options.maxKeyBytes ?? MAX_KEY_BYTES);
  return new RevisionEngine(queries, options.readOnly ?? false, options.upstream, maxKeyBytes, options.onAllocated);
}

class RevisionEngine implements PrEngine {
  readonly #queries: RevisionQueries;
  readonly readOnly: boolean;
  readonly #upstream: UpstreamPrSource | undefined;
  readonly #maxKeyBytes: number;
  readonly #onAllocated: (() => void) | undefined;
  #readOnlyView: PrEngine | undefined;

  constructor(
    queries: RevisionQueries,
    readOnly: boolean,
    upstream: UpstreamPrSource | undefined,
    maxKeyBytes: number,
    onAllocated: (() => void) | undefined,
  ) {
    this.#queries = queries;
    this.readOnly = readOnly;
    this.#upstream = upstream;
    this.#maxKeyBytes = maxKeyBytes;
    this.#onAllocated = onAllocated;
  }

  readOnlyView(): PrEngine {
    if (this.readOnly) return this;
    this.#readOnlyView ??= new RevisionEngine(this.#queries, true, this.#upstream, this.#maxKeyBytes, undefined);
    return this.#readOnlyView;
  }

  async getPr(query: RevisionQuery): Promise<string> {
    const key = checkChecksumKey(query, this.#maxKeyBytes);
    const history = query.history ?? false;
    try {
      if (this.#upstream) return await this.#getChainedPr(key, history, this.#upstream, query.client);
      const request = { version: key.version, pkgarch: key.pkgarch, checksum: key.checksum, history };
      // Most requests of a rebuild ask for revisions already stored: one snapshot read answers
      // them without a lock or a write (and without reading freezes: a stored answer never moves).
      const [facts] = await this.#queries.readFacts([request]);
      const seen = decideGetPr(facts!, history);
      if (!seen.isNew) return seen.value;
      if (this.readOnly) return await this.#unlessFrozen(key, seen, facts!);
      // A literal of one shape rather than a spread: this runs for every allocation.
      const allocation = { version: key.version, pkgarch: key.pkgarch, checksum: key.checksum, history, client: query.client, seen: facts! };
      const [decision] = await this.#queries.allocate([allocation]);
      if (decision!.isNew) this.#onAllocated?.();
      return decision!.value;
    } catch (error) {
      throw toPrStoreError(error, 'allocate a revision');
    }
  }

  /**
   * get-pr with an upstream. Upstream is asked before the package lock is taken (its answers
   * do not depend on ours); local facts are read again under the lock, so two concurrent new
   * checksums never get the same `u.N`.
   */
  async #getChainedPr(key: ChecksumKey, history: boolean, upstream: UpstreamPrSource, client: string | undefined): Promise<string> {
    const { decision: first, facts } = await this.#decideChained(key, history, upstream);
    if (!first.isNew) return first.value;
    if (this.readOnly) return this.#unlessFrozen(key, first, facts);
    const decision = await this.#queries.allocateChained({ ...key, client }, first.upstream!, history);
    if (decision.isNew) this.#onAllocated?.();
    return decision.value;
  }

  /** A chained get-pr decided on a snapshot (no lock), with the upstream facts it used. */
  async #decideChained(
    key: ChecksumKey,
    history: boolean,
    upstream: UpstreamPrSource,
  ): Promise<{ decision: AllocationDecision & { upstream?: UpstreamFacts }; facts: ChecksumFacts }> {
    const [seen] = await this.#queries.readFacts([{ ...key, history }]);
    if (history && seen!.checksumFirst !== null) return { decision: { value: seen!.checksumFirst, isNew: false }, facts: seen! };
    const remote = await askUpstream(upstream, key);
    // Like the local path: an answer already stored needs no lock and no write.
    const decision = decideChainedGetPr(await this.#queries.readChainedFacts(key, remote, history, seen), remote, history);
    return { decision: { ...decision, upstream: remote }, facts: seen! };
  }

  /**
   * What a writer would answer for a decision that stores, without storing: the decision, or on
   * a frozen package its greatest revision (`PACKAGE_FROZEN` without one). Only for answers that
   * would store, so a lookup never reads freezes.
   */
  async #unlessFrozen(key: PackageKey, decision: AllocationDecision, facts: ChecksumFacts): Promise<string> {
    const [frozen] = await this.#queries.readFrozen([key]);
    return frozen ? frozenAnswer(key, facts.packageMax, frozen).value : decision.value;
  }

  async previewPr(query: RevisionQuery): Promise<PrPreview> {
    const key = checkChecksumKey(query, this.#maxKeyBytes);
    const history = query.history ?? false;
    try {
      // Three reads that the coalescer can share with other requests: the checksum in its mode,
      // the package's maximum (a history read of a known checksum leaves it out), the freeze.
      const [decision, [pkg], [frozenBy]] = await Promise.all([
        this.#upstream
          ? this.#decideChained(key, history, this.#upstream).then(({ decision }) => decision)
          : this.#queries.readFacts([{ ...key, history }]).then(([facts]) => decideGetPr(facts!, history)),
        this.#queries.readFacts([{ version: key.version, pkgarch: key.pkgarch, checksum: null, history: false }]),
        this.#queries.readFrozen([key]),
      ]);
      const packageMax = pkg!.packageMax;
      if (!decision.isNew || !frozenBy) return { value: decision.value, isNew: decision.isNew, packageMax, frozenBy: frozenBy ?? null };
      return { value: packageMax, isNew: false, packageMax, frozenBy };
    } catch (error) {
      throw toPrStoreError(error, 'preview a revision');
    }
  }

  async packageHistory(query: PackageHistoryQuery): Promise<StoredRevision[]> {
    const key = checkPackageKey(query, this.#maxKeyBytes);
    const checksum = query.checksum ? checkKeyPart('checksum', query.checksum, this.#maxKeyBytes) : null;
    try {
      return await this.#queries.packageHistory(key, checksum);
    } catch (error) {
      throw toPrStoreError(error, 'read a package history');
    }
  }

  async testPr(query: RevisionQuery): Promise<string | null> {
    const key = checkChecksumKey(query, this.#maxKeyBytes);
    const history = query.history ?? false;
    try {
      const [facts] = await this.#queries.readFacts([{ ...key, history }]);
      return decideTestPr(facts!, history);
    } catch (error) {
      throw toPrStoreError(error, 'read a revision');
    }
  }

  async testPackage(key: PackageKey): Promise<boolean> {
    return (await this.maxPackagePr(key)) !== null;
  }

  async maxPackagePr(key: PackageKey): Promise<string | null> {
    const checked = checkPackageKey(key, this.#maxKeyBytes);
    try {
      const [facts] = await this.#queries.readFacts([{ ...checked, checksum: null, history: false }]);
      return facts!.packageMax;
    } catch (error) {
      throw toPrStoreError(error, 'read a package');
    }
  }

  async importOne(input: ImportOneInput): Promise<string | null> {
    const key = checkChecksumKey(input, this.#maxKeyBytes);
    const value = checkRevisionValue(input.value);
    if (this.readOnly) return null;
    try {
      const row = { ...key, value: normalizeRevision(value), client: input.client };
      const stored = await this.#queries.importOne(row, input.keepHigher ?? false);
      return input.keepHigher ? stored : value;
    } catch (error) {
      throw toPrStoreError(error, 'import a revision');
    }
  }

  async exportRows(query: ExportQuery = {}): Promise<RevisionRow[]> {
    const filter = {
      version: query.version ? checkKeyPart('version', query.version, this.#maxKeyBytes) : null,
      pkgarch: query.pkgarch ? checkKeyPart('pkgarch', query.pkgarch, this.#maxKeyBytes) : null,
      checksum: query.checksum ? checkKeyPart('checksum', query.checksum, this.#maxKeyBytes) : null,
      history: query.history ?? false,
    };
    try {
      return await this.#queries.exportRows(filter);
    } catch (error) {
      throw toPrStoreError(error, 'export revisions');
    }
  }
}

/** Asks upstream for its package maximum and its revision of the checksum, both at once. */
async function askUpstream(upstream: UpstreamPrSource, key: ChecksumKey): Promise<UpstreamFacts> {
  try {
    const [packageMax, checksumValue] = await Promise.all([upstream.maxPackagePr(key), upstream.testPr(key)]);
    return { packageMax: upstreamRevision(packageMax), checksumValue: upstreamRevision(checksumValue) };
  } catch (cause) {
    const reason = cause instanceof RangeError ? `answered an invalid revision (${cause.message})` : errorText(cause);
    throw new PrStoreError('UPSTREAM_UNAVAILABLE', `upstream PR server ${upstream.name} failed: ${reason}`, { cause });
  }
}

function upstreamRevision(value: string | null): string | null {
  if (value === null) return null;
  if (value.length > MAX_REVISION_LENGTH) throw new RangeError(`longer than ${MAX_REVISION_LENGTH} characters`);
  return normalizeRevision(value);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
