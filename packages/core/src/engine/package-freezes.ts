import { type Kysely, sql } from 'kysely';
import { PrStoreError, toPrStoreError } from '../errors/pr-store-error.js';
import type { PrDatabase } from './schema.js';

/** A frozen pattern, as {@link listFreezes} reports it. */
export interface PackageFreeze {
  /** Glob over `version`: `*` any run of characters, `?` one, `\` takes the next literally. */
  readonly version: string;
  /** Glob over `pkgarch`; `*` for every architecture. */
  readonly pkgarch: string;
  /** When it was frozen (database clock), ISO 8601 UTC. */
  readonly frozenAt: string;
  /** Who froze it, as the freezing tool said (e.g. `user@host`), or null. */
  readonly frozenBy: string | null;
  readonly reason: string | null;
}

/** Arguments of {@link freezePackages}. */
export interface FreezeInput {
  readonly version: string;
  /** Default `*`: every architecture. */
  readonly pkgarch?: string;
  readonly frozenBy?: string;
  readonly reason?: string;
}

/** Longest glob accepted, in characters. */
const MAX_GLOB_LENGTH = 512;

/**
 * A glob as a LIKE pattern with backslash escapes: `*` → `%`, `?` → `_`, `\x` → `x` literally,
 * and LIKE's own `%`, `_` and `\` taken literally. Throws `INVALID_ARGUMENT` for an empty glob,
 * one ending in a lone backslash, or one holding a line feed or NUL.
 */
export function globToLike(glob: string): string {
  if (glob.length === 0 || glob.length > MAX_GLOB_LENGTH) {
    throw new PrStoreError('INVALID_ARGUMENT', `a pattern must have 1 to ${MAX_GLOB_LENGTH} characters`);
  }
  if (/[\n\u0000]/.test(glob)) throw new PrStoreError('INVALID_ARGUMENT', 'a pattern must not hold a line feed or NUL');
  let like = '';
  for (let index = 0; index < glob.length; index += 1) {
    const char = glob[index]!;
    if (char === '*') like += '%';
    else if (char === '?') like += '_';
    else if (char === '\\') {
      const next = glob[index + 1];
      if (next === undefined) throw new PrStoreError('INVALID_ARGUMENT', `pattern ${JSON.stringify(glob)} ends in a lone backslash`);
      like += /[%_\\]/.test(next) ? `\\${next}` : next;
      index += 1;
    } else if (char === '%' || char === '_') like += `\\${char}`;
    else like += char;
  }
  return like;
}

/**
 * Freezes the packages matching `version` (and `pkgarch`): from the next write on, on every
 * replica, their PRs never move (see `planAllocations`). True when the freeze is new, false when
 * the same patterns were frozen already (left as they were).
 */
export async function freezePackages(db: Kysely<PrDatabase>, input: FreezeInput): Promise<boolean> {
  const pkgarch = input.pkgarch ?? '*';
  const versionLike = globToLike(input.version);
  const pkgarchLike = globToLike(pkgarch);
  try {
    const result = await db
      .insertInto('prserv_freeze')
      .values({
        version_glob: input.version,
        pkgarch_glob: pkgarch,
        version_like: versionLike,
        pkgarch_like: pkgarchLike,
        frozen_by: input.frozenBy ?? null,
        reason: input.reason ?? null,
      })
      .onConflict((conflict) => conflict.constraint('prserv_freeze_pkey').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  } catch (error) {
    throw toPrStoreError(error, 'freeze packages');
  }
}

/** Removes the freeze with exactly these patterns; true when there was one. */
export async function thawPackages(db: Kysely<PrDatabase>, input: { readonly version: string; readonly pkgarch?: string }): Promise<boolean> {
  try {
    const result = await db
      .deleteFrom('prserv_freeze')
      .where('version_glob', '=', input.version)
      .where('pkgarch_glob', '=', input.pkgarch ?? '*')
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  } catch (error) {
    throw toPrStoreError(error, 'thaw packages');
  }
}

/** Every freeze, oldest first. */
export async function listFreezes(db: Kysely<PrDatabase>): Promise<PackageFreeze[]> {
  try {
    const { rows } = await sql<{
      version_glob: string;
      pkgarch_glob: string;
      frozen_at: string;
      frozen_by: string | null;
      reason: string | null;
    }>`SELECT version_glob, pkgarch_glob, frozen_by, reason,
        to_char(frozen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS frozen_at
      FROM prserv_freeze ORDER BY frozen_at, version_glob, pkgarch_glob`.execute(db);
    return rows.map((row) => ({
      version: row.version_glob,
      pkgarch: row.pkgarch_glob,
      frozenAt: row.frozen_at,
      frozenBy: row.frozen_by,
      reason: row.reason,
    }));
  } catch (error) {
    throw toPrStoreError(error, 'list frozen packages');
  }
}
