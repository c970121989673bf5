import type { ChecksumFacts } from './allocation-rules.js';
import type { AllocationRequest } from './batch-allocation.js';
import { type PackageKey, packageId } from './revision-keys.js';
import { compareRevisions, maxRevision } from './revision.js';

/** Packages {@link OwnStores} remembers before it starts afresh. */
const MAX_REMEMBERED_PACKAGES = 10_000;

/**
 * The greatest revision this engine stored in each package lately. A lookup that ran while a
 * batch of ours was storing into its package may have missed that batch's rows; the package
 * maximum it saw is then raised to ours before the batch is planned from it. This is only a
 * guess at what the database holds: the database checks it under the package locks and a batch
 * planned from a wrong guess stores nothing (see `STORE_IF_UNCHANGED`). Forgetting costs a round
 * trip, never an answer, so the memory is simply dropped when it grows large.
 */
export class OwnStores {
  readonly #greatest = new Map<string, string>();

  /** Notes rows this engine has committed. */
  note(rows: readonly (PackageKey & { readonly value: string })[]): void {
    if (this.#greatest.size + rows.length > MAX_REMEMBERED_PACKAGES) this.#greatest.clear();
    for (const row of rows) {
      const id = packageId(row);
      const known = this.#greatest.get(id);
      if (known === undefined || compareRevisions(row.value, known) > 0) this.#greatest.set(id, row.value);
    }
  }

  /**
   * The facts every request's lookup saw, each package maximum raised to what this engine stored
   * since; undefined when a request brings none.
   */
  seenFacts(requests: readonly AllocationRequest[]): ChecksumFacts[] | undefined {
    const facts: ChecksumFacts[] = [];
    for (const request of requests) {
      const seen = request.seen;
      if (seen === undefined) return undefined;
      const ours = this.#greatest.get(packageId(request));
      const packageMax = ours === undefined ? seen.packageMax : maxRevision(seen.packageMax, ours);
      facts.push(packageMax === seen.packageMax ? seen : { ...seen, packageMax });
    }
    return facts;
  }
}

/** After how many batches in a row whose facts had moved the one-round-trip way is paused. */
const MISSES_BEFORE_PAUSE = 3;
/** How many batches a pause lasts. */
const PAUSED_BATCHES = 32;

/**
 * Whether to try planning a batch from the facts its lookups saw. Where other writers keep moving
 * the same packages (replicas sharing one hot package), those facts are usually stale, and each
 * try costs a round trip that stores nothing: after a few misses in a row the tries pause for a
 * while, then resume.
 */
export class SeenFactsGate {
  #misses = 0;
  #paused = 0;

  /** True when the next batch should try its lookups' facts. */
  shouldTry(): boolean {
    if (this.#paused === 0) return true;
    this.#paused -= 1;
    return false;
  }

  /** Records whether a try stored its batch. */
  record(held: boolean): void {
    if (held) {
      this.#misses = 0;
      return;
    }
    this.#misses += 1;
    if (this.#misses >= MISSES_BEFORE_PAUSE) {
      this.#misses = 0;
      this.#paused = PAUSED_BATCHES;
    }
  }
}
