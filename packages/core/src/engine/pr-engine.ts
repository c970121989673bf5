import { type Kysely, type Transaction, sql } from 'kysely';
import { PrStoreError, toPrStoreError } from '../errors/pr-store-error.js';
import {
  type ChainedFacts,
  type ChecksumFacts,
  decideChainedGetPr,
  decideGetPr,
  decideLegacyImport,
  decideTestPr,
  type UpstreamFacts,
} from './allocation-rules.js';
import { increaseRevision, isRevision, normalizeRevision } from './revision.js';
import type { PrDatabase } from './schema.js';

/** Longest `version`, `pkgarch` or `checksum` accepted, in bytes: keeps every key within btree limits. */
export const MAX_KEY_BYTES = 512;

/** Longest revision accepted from a client or an upstream, in characters ("1.2.3"…). */
export const MAX_REVISION_LENGTH = 128;

/** Advisory-lock class (`'PRSV'`); the object id is a hash of the package. */
const PACKAGE_LOCK_CLASS = 0x50525356;

/** A package: BitBake's `(version, pkgarch)`. */
export interface PackageKey {
  readonly version: string;
  readonly pkgarch: string;
}

/** One checksum of a package. */
export interface ChecksumKey extends PackageKey {
  readonly checksum: string;
}

/** Arguments of {@link PrEngine.getPr} and {@link PrEngine.testPr}. */
export interface RevisionQuery extends ChecksumKey {
  /** History mode (a checksum keeps its first revision). Default false: no-history, as BitBake. */
  readonly history?: boolean;
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
}

/** Filters of {@link PrEngine.exportRows}; an absent or null filter matches everything. */
export interface ExportQuery {
  readonly version?: string | null;
  readonly pkgarch?: string | null;
  readonly checksum?: string | null;
  /** All rows (true) or, per package, only the rows holding its greatest revision (false, default). */
  readonly history?: boolean;
}

/** One exported row. */
export interface RevisionRow extends ChecksumKey {
  readonly value: string;
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
  /** Extend this upstream server's numbering in get-pr (contract §5). Default none. */
  readonly upstream?: UpstreamPrSource;
}

/** The allocation operations of a PR server (contract §4), one database transaction each at most. */
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
}

/**
 * Creates the engine over a Kysely instance whose schema is current (see `migrateToLatest`).
 * The engine owns no pool: closing the database is its creator's business.
 */
export function createPrEngine(db: Kysely<PrDatabase>, options: PrEngineOptions = {}): PrEngine {
  return new KyselyPrEngine(db, options.readOnly ?? false, options.upstream);
}

class KyselyPrEngine implements PrEngine {
  readonly #db: Kysely<PrDatabase>;
  readonly readOnly: boolean;
  readonly #upstream: UpstreamPrSource | undefined;

  constructor(db: Kysely<PrDatabase>, readOnly: boolean, upstream: UpstreamPrSource | undefined) {
    this.#db = db;
    this.readOnly = readOnly;
    this.#upstream = upstream;
  }

  async getPr(query: RevisionQuery): Promise<string> {
    const key = checkChecksumKey(query);
    const history = query.history ?? false;
    const upstream = this.#upstream;
    if (upstream) return this.#run('allocate a revision', () => this.#getChainedPr(key, history, upstream));
    return this.#run('allocate a revision', async () => {
      // Most requests of a rebuild ask for revisions already stored: one snapshot read answers
      // them without a lock or a write.
      const seen = decideGetPr(await readChecksumFacts(this.#db, key), history);
      if (!seen.isNew || this.readOnly) return seen.value;
      return this.#db.transaction().execute(async (trx) => {
        await lockPackage(trx, key);
        const decision = decideGetPr(await readChecksumFacts(trx, key), history);
        if (decision.isNew) await insertRow(trx, { ...key, value: decision.value });
        return decision.value;
      });
    });
  }

  /**
   * get-pr with an upstream. Upstream is asked before the package lock is taken (its answers
   * do not depend on ours); local facts are read again under the lock, so two concurrent new
   * checksums never get the same `u.N`.
   */
  async #getChainedPr(key: ChecksumKey, history: boolean, upstream: UpstreamPrSource): Promise<string> {
    const seen = await readChecksumFacts(this.#db, key);
    if (history && seen.checksumFirst !== null) return seen.checksumFirst;
    const remote = await askUpstream(upstream, key);
    // Like the local path: an answer already stored needs no lock and no write.
    const first = decideChainedGetPr(await readChainedFacts(this.#db, key, remote, seen), remote, history);
    if (!first.isNew || this.readOnly) return first.value;
    return this.#db.transaction().execute(async (trx) => {
      await lockPackage(trx, key);
      const decision = decideChainedGetPr(await readChainedFacts(trx, key, remote), remote, history);
      if (decision.isNew) await insertRow(trx, { ...key, value: decision.value });
      return decision.value;
    });
  }

  async testPr(query: RevisionQuery): Promise<string | null> {
    const key = checkChecksumKey(query);
    return this.#run('read a revision', async () =>
      decideTestPr(await readChecksumFacts(this.#db, key), query.history ?? false),
    );
  }

  async testPackage(key: PackageKey): Promise<boolean> {
    return (await this.maxPackagePr(key)) !== null;
  }

  async maxPackagePr(key: PackageKey): Promise<string | null> {
    const checked = checkPackageKey(key);
    return this.#run('read a package', async () => {
      const row = await packageMaxQuery(this.#db, checked).executeTakeFirst();
      return row?.value ?? null;
    });
  }

  async importOne(input: ImportOneInput): Promise<string | null> {
    const key = checkChecksumKey(input);
    if (typeof input.value !== 'string' || input.value.length > MAX_REVISION_LENGTH || !isRevision(input.value)) {
      const shown = typeof input.value === 'string' && input.value.length > 40 ? `${input.value.slice(0, 40)}…` : input.value;
      throw new PrStoreError(
        'INVALID_ARGUMENT',
        `value must be a revision such as "3" or "1.2" (at most ${MAX_REVISION_LENGTH} characters), got ${JSON.stringify(shown)}`,
      );
    }
    if (this.readOnly) return null;
    const value = normalizeRevision(input.value);
    return this.#run('import a revision', () =>
      this.#db.transaction().execute(async (trx) => {
        await lockPackage(trx, key);
        if (input.keepHigher) {
          const decision = decideLegacyImport((await readChecksumFacts(trx, key)).checksumLast, value);
          if (!decision.isNew) return decision.value;
        }
        await insertRow(trx, { ...key, value });
        return input.keepHigher ? value : input.value;
      }),
    );
  }

  async exportRows(query: ExportQuery = {}): Promise<RevisionRow[]> {
    return this.#run('export revisions', async () => {
      let select = this.#db
        .selectFrom('prserv_revision as r')
        .select(['r.version', 'r.pkgarch', 'r.checksum', 'r.value'])
        .orderBy('r.version')
        .orderBy('r.pkgarch')
        .orderBy('r.value_key')
        .orderBy('r.checksum');
      if (query.version) select = select.where('r.version', '=', checkKeyPart('version', query.version));
      if (query.pkgarch) select = select.where('r.pkgarch', '=', checkKeyPart('pkgarch', query.pkgarch));
      if (query.checksum) select = select.where('r.checksum', '=', checkKeyPart('checksum', query.checksum));
      if (!query.history) {
        select = select.where(({ eb, selectFrom }) =>
          eb(
            'r.value_key',
            '=',
            selectFrom('prserv_revision as m')
              .select('m.value_key')
              .whereRef('m.version', '=', 'r.version')
              .whereRef('m.pkgarch', '=', 'r.pkgarch')
              .orderBy('m.value_key', 'desc')
              .limit(1),
          ),
        );
      }
      return select.execute();
    });
  }

  async #run<T>(action: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw toPrStoreError(error, action);
    }
  }
}

type Queryable = Kysely<PrDatabase> | Transaction<PrDatabase>;

function packageMaxQuery(db: Queryable, key: PackageKey) {
  return db
    .selectFrom('prserv_revision')
    .select('value')
    .where('version', '=', key.version)
    .where('pkgarch', '=', key.pkgarch)
    .orderBy('value_key', 'desc')
    .limit(1);
}

/** Reads the package maximum and the checksum's first and last revision in one statement (one snapshot). */
async function readChecksumFacts(db: Queryable, key: ChecksumKey): Promise<ChecksumFacts> {
  const checksumValues = (direction: 'asc' | 'desc') =>
    db
      .selectFrom('prserv_revision')
      .select('value')
      .where('version', '=', key.version)
      .where('pkgarch', '=', key.pkgarch)
      .where('checksum', '=', key.checksum)
      .orderBy('value_key', direction)
      .limit(1);
  const row = await db
    .selectNoFrom([
      packageMaxQuery(db, key).as('package_max'),
      checksumValues('asc').as('checksum_first'),
      checksumValues('desc').as('checksum_last'),
    ])
    .executeTakeFirstOrThrow();
  return { packageMax: row.package_max, checksumFirst: row.checksum_first, checksumLast: row.checksum_last };
}

/**
 * Serialises writers of one package across every connection and replica until the transaction
 * ends. Packages whose hashes collide merely take turns.
 */
async function lockPackage(trx: Transaction<PrDatabase>, key: PackageKey): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(${PACKAGE_LOCK_CLASS}::int4, hashtext(${key.version} || chr(10) || ${key.pkgarch}))`.execute(trx);
}

async function insertRow(trx: Transaction<PrDatabase>, row: RevisionRow): Promise<void> {
  await trx
    .insertInto('prserv_revision')
    .values(row)
    .onConflict((conflict) => conflict.constraint('prserv_revision_pkey').doNothing())
    .execute();
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

/** Local facts plus the greatest local extension of upstream's maximum. */
async function readChainedFacts(
  db: Queryable,
  key: ChecksumKey,
  upstream: UpstreamFacts,
  known?: ChecksumFacts,
): Promise<ChainedFacts> {
  const facts = known ?? (await readChecksumFacts(db, key));
  if (upstream.packageMax === null || upstream.checksumValue !== null || facts.checksumLast !== null) {
    return { ...facts, subMax: null };
  }
  // Extensions of u (u.0, u.3.1, …) are exactly the keys strictly between u and increase(u).
  const row = await db
    .selectFrom('prserv_revision')
    .select('value')
    .where('version', '=', key.version)
    .where('pkgarch', '=', key.pkgarch)
    .where('value_key', '>', sql<string[]>`string_to_array(${upstream.packageMax}, '.')::numeric[]`)
    .where('value_key', '<', sql<string[]>`string_to_array(${increaseRevision(upstream.packageMax)}, '.')::numeric[]`)
    .orderBy('value_key', 'desc')
    .limit(1)
    .executeTakeFirst();
  return { ...facts, subMax: row?.value ?? null };
}

function checkPackageKey(key: PackageKey): PackageKey {
  return { version: checkKeyPart('version', key.version), pkgarch: checkKeyPart('pkgarch', key.pkgarch) };
}

function checkChecksumKey(key: ChecksumKey): ChecksumKey {
  return { ...checkPackageKey(key), checksum: checkKeyPart('checksum', key.checksum) };
}

const encoder = new TextEncoder();

function checkKeyPart(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must be a non-empty string`);
  }
  if (value.length > MAX_KEY_BYTES / 4 && encoder.encode(value).length > MAX_KEY_BYTES) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} is longer than ${MAX_KEY_BYTES} bytes`);
  }
  if (value.includes('\u0000')) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must not contain NUL characters`);
  }
  return value;
}
