/**
 * PR revisions: dot-separated non-negative integers ("0", "7", "0.3", "1.1.0"), as produced by
 * BitBake's PR servers. Components are compared as integers of any size (never as strings), so
 * they are kept as `bigint`.
 */

const REVISION_PATTERN = /^\d+(?:\.\d+)*$/;

/** A parsed revision: its integer components, most significant first. */
export type RevisionComponents = readonly bigint[];

/** True when `text` is a well-formed revision. */
export function isRevision(text: string): boolean {
  return REVISION_PATTERN.test(text);
}

/**
 * Parses `text` into its components. Leading zeros are accepted ("07" is 7).
 * @throws RangeError when `text` is not a revision.
 */
export function parseRevision(text: string): RevisionComponents {
  if (!isRevision(text)) {
    throw new RangeError(`not a revision: ${JSON.stringify(text)} (expected digits separated by dots, e.g. "3" or "1.2")`);
  }
  return text.split('.').map((part) => BigInt(part));
}

/**
 * Formats components in canonical form (no leading zeros).
 * @throws RangeError when there are no components or one is negative.
 */
export function formatRevision(components: RevisionComponents): string {
  if (components.length === 0) throw new RangeError('a revision has at least one component');
  // "-1" or "1.-2" would not parse back: refuse to spell a non-revision.
  if (components.some((part) => part < 0n)) {
    throw new RangeError(`revision components must be non-negative, got [${components.join(', ')}]`);
  }
  return components.map((part) => part.toString()).join('.');
}

/** The canonical spelling of a revision: "007.01" becomes "7.1". */
export function normalizeRevision(text: string): string {
  return formatRevision(parseRevision(text));
}

/** Adds one to the last component: "9" → "10", "1.9" → "1.10", "0.3.1" → "0.3.2". */
export function increaseRevision(text: string): string {
  const parts = [...parseRevision(text)];
  parts[parts.length - 1]! += 1n;
  return formatRevision(parts);
}

/**
 * Total order on revisions: component by component as integers; when one is a prefix of the
 * other the longer is greater ("0" < "0.0" < "0.3" < "1", "1.2" < "1.10").
 * Returns a negative number, zero or a positive number.
 */
export function compareRevisions(left: string, right: string): number {
  const a = parseRevision(left);
  const b = parseRevision(right);
  const shared = Math.min(a.length, b.length);
  for (let index = 0; index < shared; index += 1) {
    const x = a[index]!;
    const y = b[index]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** The greater of two revisions, either of which may be absent. */
export function maxRevision(left: string | null, right: string | null): string | null {
  if (left === null) return right;
  if (right === null) return left;
  return compareRevisions(left, right) >= 0 ? left : right;
}

/** True when `text` extends `prefix` by at least one component ("0.3.1" starts with "0.3"). */
export function isRevisionUnder(text: string, prefix: string): boolean {
  const a = parseRevision(text);
  const b = parseRevision(prefix);
  return a.length > b.length && b.every((part, index) => a[index] === part);
}
