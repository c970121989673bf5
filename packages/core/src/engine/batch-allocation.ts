import { PrStoreError } from '../errors/pr-store-error.js';
import { type AllocationDecision, type ChecksumFacts, decideGetPr } from './allocation-rules.js';
import { type ChecksumKey, checksumId, type PackageKey, packageId, type RevisionRow } from './revision-keys.js';
import type { StoredHow } from './schema.js';

/** One get-pr that may store a row, as the write path of the engine receives it. */
export interface AllocationRequest extends ChecksumKey {
  /** History mode (a checksum keeps its first revision) or no-history. */
  readonly history: boolean;
  /** Address of the client that asked, recorded with a row it stores. Default: none (in-process). */
  readonly client?: string;
  /**
   * The facts the request's own lookup read, when it made one. A batch whose every request has
   * them is planned from them and stored in one round trip if they still hold under the locks
   * (checked by the database); otherwise it is planned again from a read under the locks.
   */
  readonly seen?: ChecksumFacts;
}

/** The facts of one request read on the write path: {@link ChecksumFacts} and the freeze on its package. */
export interface WriteFacts extends ChecksumFacts {
  /** The freeze matching the package (see {@link FreezeMatch}), or null. */
  readonly frozenBy: FreezeMatch | null;
}

/** A freeze, as the patterns `prserv freeze` was given. */
export interface FreezeMatch {
  readonly version: string;
  readonly pkgarch: string;
}

/** A row to store and its provenance. */
export interface StoredRow extends RevisionRow {
  readonly storedHow: StoredHow;
  /** The client's address, or null. */
  readonly storedBy: string | null;
  /** The package's greatest revision before this row, or null (its first). */
  readonly previousMax: string | null;
}

/** The decisions of a batch, in request order, and the rows they store, in allocation order. */
export interface AllocationPlan {
  readonly decisions: AllocationDecision[];
  readonly rows: StoredRow[];
}

/**
 * Decides a batch of get-pr requests as if they arrived one at a time, in order, against the
 * facts read under the batch's package locks (`facts[i]` is the snapshot for `requests[i]`'s
 * checksum). Each decision sees the rows stored by the decisions before it, so values stay
 * gap-free and a checksum asked twice in one batch is allocated once.
 *
 * A frozen package (`frozenBy` set) never moves, as under BitBake's `PRSERV_LOCKDOWN`: a request
 * that would store answers the package's greatest revision and stores nothing; one for a frozen
 * package without any revision throws `PACKAGE_FROZEN` (the coalescer then decides the batch's
 * requests one by one, so only that one fails).
 */
export function planAllocations(requests: readonly AllocationRequest[], facts: readonly (ChecksumFacts | WriteFacts)[]): AllocationPlan {
  if (facts.length !== requests.length) {
    throw new RangeError(`planAllocations needs one facts entry per request (${requests.length}), got ${facts.length}`);
  }
  // Only what this batch stored differs from the snapshot: those entries override it.
  const packageMax = new Map<string, string>();
  const checksumFirst = new Map<string, string>();
  const checksumLast = new Map<string, string>();
  const decisions: AllocationDecision[] = [];
  const rows: StoredRow[] = [];
  for (let index = 0; index < requests.length; index += 1) {
    const request = requests[index]!;
    const snapshot = facts[index]!;
    const pkg = packageId(request);
    const sum = checksumId(request);
    const current: ChecksumFacts = {
      packageMax: packageMax.get(pkg) ?? snapshot.packageMax,
      checksumFirst: checksumFirst.get(sum) ?? snapshot.checksumFirst,
      checksumLast: checksumLast.get(sum) ?? snapshot.checksumLast,
    };
    const decision = decideGetPr(current, request.history);
    const frozen = (snapshot as Partial<WriteFacts>).frozenBy ?? null;
    if (decision.isNew && frozen) {
      decisions.push(frozenAnswer(request, current.packageMax, frozen));
      continue;
    }
    decisions.push(decision);
    if (!decision.isNew) continue;
    // A new value is always above the package's greatest, hence the checksum's last too; it is
    // the checksum's first only when the checksum had no row (each mode's facts show that).
    rows.push({
      version: request.version,
      pkgarch: request.pkgarch,
      checksum: request.checksum,
      value: decision.value,
      storedHow: request.history ? 'get-pr-history' : 'get-pr-nohist',
      storedBy: request.client ?? null,
      previousMax: current.packageMax,
    });
    const hadRow = request.history ? current.checksumFirst !== null : current.checksumLast !== null;
    packageMax.set(pkg, decision.value);
    checksumLast.set(sum, decision.value);
    if (!hadRow) checksumFirst.set(sum, decision.value);
  }
  return { decisions, rows };
}

/**
 * What a get-pr that would store answers on a frozen package: its greatest revision, stored
 * nowhere. Without one there is nothing to answer, and BitBake's lockdown fails the build there
 * too: `PACKAGE_FROZEN`.
 */
export function frozenAnswer(key: PackageKey, packageMax: string | null, frozen: FreezeMatch): AllocationDecision {
  if (packageMax === null) throw frozenError(key, frozen, 'it has no PR yet, and a frozen package never gets a new one');
  return { value: packageMax, isNew: false };
}

/** The `PACKAGE_FROZEN` error for `key`, naming the freeze and what was refused. */
export function frozenError(key: PackageKey, frozen: FreezeMatch, why: string): PrStoreError {
  return new PrStoreError(
    'PACKAGE_FROZEN',
    `package ${key.version} ${key.pkgarch} is frozen (${describeFreeze(frozen)}): ${why}; thaw it with 'prserv thaw' to allow it`,
  );
}

/** A freeze as the command that made it would name it: `"glibc-*"`, or `"glibc-*" --pkgarch "core2-64"`. */
export function describeFreeze(frozen: FreezeMatch): string {
  const version = `freeze ${JSON.stringify(frozen.version)}`;
  return frozen.pkgarch === '*' ? version : `${version} --pkgarch ${JSON.stringify(frozen.pkgarch)}`;
}
