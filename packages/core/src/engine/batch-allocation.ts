import { type AllocationDecision, type ChecksumFacts, decideGetPr } from './allocation-rules.js';
import { type ChecksumKey, checksumId, packageId, type RevisionRow } from './revision-keys.js';

/** One get-pr that may store a row, as the write path of the engine receives it. */
export interface AllocationRequest extends ChecksumKey {
  /** History mode (a checksum keeps its first revision) or no-history. */
  readonly history: boolean;
}

/** The decisions of a batch, in request order, and the rows they store, in allocation order. */
export interface AllocationPlan {
  readonly decisions: AllocationDecision[];
  readonly rows: RevisionRow[];
}

/**
 * Decides a batch of get-pr requests as if they arrived one at a time, in order, against the
 * facts read under the batch's package locks (`facts[i]` is the snapshot for `requests[i]`'s
 * checksum). Each decision sees the rows stored by the decisions before it, so values stay
 * gap-free and a checksum asked twice in one batch is allocated once.
 */
export function planAllocations(requests: readonly AllocationRequest[], facts: readonly ChecksumFacts[]): AllocationPlan {
  if (facts.length !== requests.length) {
    throw new RangeError(`planAllocations needs one facts entry per request (${requests.length}), got ${facts.length}`);
  }
  // Only what this batch stored differs from the snapshot: those entries override it.
  const packageMax = new Map<string, string>();
  const checksumFirst = new Map<string, string>();
  const checksumLast = new Map<string, string>();
  const decisions: AllocationDecision[] = [];
  const rows: RevisionRow[] = [];
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
    decisions.push(decision);
    if (!decision.isNew) continue;
    // A new value is always above the package's greatest, hence the checksum's last too; it is
    // the checksum's first only when the checksum had no row (each mode's facts show that).
    rows.push({ version: request.version, pkgarch: request.pkgarch, checksum: request.checksum, value: decision.value });
    const hadRow = request.history ? current.checksumFirst !== null : current.checksumLast !== null;
    packageMax.set(pkg, decision.value);
    checksumLast.set(sum, decision.value);
    if (!hadRow) checksumFirst.set(sum, decision.value);
  }
  return { decisions, rows };
}
