import { PrStoreError } from '../errors/pr-store-error.js';
import { isRevision } from './revision.js';

/** Longest `version`, `pkgarch` or `checksum` accepted by default, in bytes. */
export const MAX_KEY_BYTES = 512;

/**
 * The most {@link MAX_KEY_BYTES} may be raised to. A row's primary-key entry holds all three parts
 * and the revision's numeric array (up to ~540 bytes for 128 characters), and a btree entry must
 * fit in a third of a page (2704 bytes): 3 × 640 + 540 leaves room for headers even when nothing
 * compresses.
 */
export const KEY_BYTES_CEILING = 640;

/** Longest revision accepted from a client or an upstream, in characters ("1.2.3"…). */
export const MAX_REVISION_LENGTH = 128;

/** A package: BitBake's `(version, pkgarch)`. */
export interface PackageKey {
  readonly version: string;
  readonly pkgarch: string;
}

/** One checksum of a package. */
export interface ChecksumKey extends PackageKey {
  readonly checksum: string;
}

/** One stored row. */
export interface RevisionRow extends ChecksumKey {
  readonly value: string;
}

/**
 * A checked package key: both parts are non-empty strings of at most `maxBytes` UTF-8 bytes
 * (default {@link MAX_KEY_BYTES}), without NUL.
 */
export function checkPackageKey(key: PackageKey, maxBytes = MAX_KEY_BYTES): PackageKey {
  return { version: checkKeyPart('version', key.version, maxBytes), pkgarch: checkKeyPart('pkgarch', key.pkgarch, maxBytes) };
}

/** A checked checksum key (see {@link checkPackageKey}). */
export function checkChecksumKey(key: ChecksumKey, maxBytes = MAX_KEY_BYTES): ChecksumKey {
  return {
    version: checkKeyPart('version', key.version, maxBytes),
    pkgarch: checkKeyPart('pkgarch', key.pkgarch, maxBytes),
    checksum: checkKeyPart('checksum', key.checksum, maxBytes),
  };
}

/** `maxBytes` if it is a key limit the schema can hold, else a RangeError. */
export function checkKeyLimit(maxBytes: number): number {
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > KEY_BYTES_CEILING) {
    throw new RangeError(`maxKeyBytes must be an integer from 1 to ${KEY_BYTES_CEILING}, got ${String(maxBytes)}`);
  }
  return maxBytes;
}

const encoder = new TextEncoder();

/** `String.prototype.isWellFormed` (ES2024, in every Node.js this package supports). */
export type WellFormedCheck = string & { isWellFormed(): boolean };

/** `value` as a key part, or an `INVALID_ARGUMENT` error naming `name`. */
export function checkKeyPart(name: string, value: unknown, maxBytes = MAX_KEY_BYTES): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must be a non-empty string`);
  }
  // A string of n UTF-16 units is at most 3n UTF-8 bytes (4 per surrogate pair): short ones need no encoding.
  if (value.length > maxBytes / 3 && encoder.encode(value).length > maxBytes) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} is longer than ${maxBytes} bytes`);
  }
  if (value.includes('\u0000')) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must not contain NUL characters`);
  }
  // An unpaired surrogate (JSON allows "\ud800") has no UTF-8 form: stored, it would become U+FFFD
  // and two different keys would become one.
  if (!(value as WellFormedCheck).isWellFormed()) {
    throw new PrStoreError('INVALID_ARGUMENT', `${name} must be valid Unicode text (it holds an unpaired surrogate)`);
  }
  return value;
}

/** `value` as a revision a client may store, or an `INVALID_ARGUMENT` error. */
export function checkRevisionValue(value: unknown): string {
  if (typeof value !== 'string' || value.length > MAX_REVISION_LENGTH || !isRevision(value)) {
    const shown = typeof value === 'string' && value.length > 40 ? `${value.slice(0, 40)}…` : value;
    throw new PrStoreError(
      'INVALID_ARGUMENT',
      `value must be a revision such as "3" or "1.2" (at most ${MAX_REVISION_LENGTH} characters), got ${JSON.stringify(shown)}`,
    );
  }
  return value;
}

/**
 * Identity strings of keys, for maps. NUL never occurs in a checked key part, so distinct keys
 * never share an identity.
 */
export function packageId(key: PackageKey): string {
  return `${key.version}\u0000${key.pkgarch}`;
}

/** See {@link packageId}. */
export function checksumId(key: ChecksumKey): string {
  return `${key.version}\u0000${key.pkgarch}\u0000${key.checksum}`;
}
