import { compareRevisions, increaseRevision } from './revision.js';

/** The first revision a package gets. */
export const INITIAL_REVISION = '0';

/**
 * What the database holds for one checksum of one package, read in one snapshot. A read made
 * for one mode may leave out what that mode never looks at: a history read fills
 * `checksumFirst` (and `packageMax` only when the checksum is unknown), a no-history read
 * fills `checksumLast` and `packageMax`.
 */
export interface ChecksumFacts {
  /** Greatest revision of the package, null when the package is unknown (or not read). */
  readonly packageMax: string | null;
  /** Smallest revision stored for the checksum, null when the checksum is unknown. */
  readonly checksumFirst: string | null;
  /** Greatest revision stored for the checksum, null when the checksum is unknown. */
  readonly checksumLast: string | null;
}

/** An answer, and whether it is a row the database does not hold yet. */
export interface AllocationDecision {
  readonly value: string;
  readonly isNew: boolean;
}

/**
 * get-pr (docs/protocol.md §6.1). History mode: a known checksum keeps its first revision. No-history
 * mode: a known checksum keeps its last revision only while that is still the package's
 * greatest; otherwise it moves above it, so PRs never go down.
 */
export function decideGetPr(facts: ChecksumFacts, history: boolean): AllocationDecision {
  const { packageMax, checksumFirst, checksumLast } = facts;
  if (history && checksumFirst !== null) return { value: checksumFirst, isNew: false };
  if (packageMax === null) return { value: INITIAL_REVISION, isNew: true };
  if (!history && checksumLast !== null && compareRevisions(checksumLast, packageMax) === 0) {
    return { value: checksumLast, isNew: false };
  }
  return { value: increaseRevision(packageMax), isNew: true };
}

/** test-pr: the revision get-pr would keep for a known checksum, or null. */
export function decideTestPr(facts: ChecksumFacts, history: boolean): string | null {
  return history ? facts.checksumFirst : facts.checksumLast;
}

/**
 * Legacy import-one (BitBake before 2.10, integer values): a checksum that already holds a
 * greater revision keeps it, and that greater revision is the answer. A checksum whose last
 * revision is the imported value already holds that row: nothing new.
 */
export function decideLegacyImport(checksumLast: string | null, value: string): AllocationDecision {
  if (checksumLast !== null && compareRevisions(checksumLast, value) >= 0) return { value: checksumLast, isNew: false };
  return { value, isNew: true };
}

/** What an upstream PR server said about the package and checksum (docs/protocol.md §7.1). */
export interface UpstreamFacts {
  /** Upstream's greatest revision of the package (its max-package-pr), null when unknown there. */
  readonly packageMax: string | null;
  /** Upstream's revision for the checksum (its no-history test-pr), null when unknown there. */
  readonly checksumValue: string | null;
}

/** Local facts of a server that has an upstream. */
export interface ChainedFacts extends ChecksumFacts {
  /**
   * Greatest local revision extending the upstream maximum `u` (`u.3`, `u.3.1`, …), null when
   * there is none or upstream does not know the package.
   */
  readonly subMax: string | null;
}

/**
 * get-pr on a server chained to an upstream (docs/protocol.md §7.2): local builds extend the upstream's
 * numbering (`u.0`, `u.1`, …) and never collide with it.
 */
export function decideChainedGetPr(local: ChainedFacts, upstream: UpstreamFacts, history: boolean): AllocationDecision {
  const known = history ? local.checksumFirst : local.checksumLast;
  const upstreamMax = upstream.packageMax;
  if (known !== null) {
    if (history) return { value: known, isNew: false };
    let value = known;
    if (local.packageMax !== null && compareRevisions(value, local.packageMax) < 0) value = increaseRevision(local.packageMax);
    // Unknown upstream (null maximum): no upstream bound. BitBake's server crashes here.
    if (upstreamMax !== null && compareRevisions(value, upstreamMax) < 0) {
      value = upstream.checksumValue === null ? `${upstreamMax}.0` : upstreamMax;
    }
    return { value, isNew: compareRevisions(value, known) !== 0 };
  }
  if (upstreamMax === null) return decideGetPr(local, history);
  if (upstream.checksumValue !== null) return { value: upstream.checksumValue, isNew: true };
  return { value: local.subMax === null ? `${upstreamMax}.0` : increaseRevision(local.subMax), isNew: true };
}
