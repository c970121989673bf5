import { describe, expect, it } from 'vitest';
import { isPrStoreError } from '../../src/errors/pr-store-error.js';
import {
  checkChecksumKey,
  checkKeyLimit,
  checkKeyPart,
  checkPackageKey,
  KEY_BYTES_CEILING,
  MAX_KEY_BYTES,
} from '../../src/engine/revision-keys.js';

function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, nothing was thrown');
}

describe('key part limits', () => {
  it('accepts a part of exactly the limit in UTF-8 bytes and refuses one byte more', () => {
    expect(checkKeyPart('checksum', 'a'.repeat(MAX_KEY_BYTES))).toHaveLength(MAX_KEY_BYTES);
    const error = errorOf(() => checkKeyPart('checksum', 'a'.repeat(MAX_KEY_BYTES + 1)));
    expect(isPrStoreError(error) && error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toBe('checksum is longer than 512 bytes');
  });

  it('counts bytes, not characters: 171 three-byte characters are 513 bytes', () => {
    expect(checkKeyPart('version', '€'.repeat(170))).toHaveLength(170);
    expect(errorOf(() => checkKeyPart('version', '€'.repeat(171))).message).toBe('version is longer than 512 bytes');
  });

  it('applies a configured limit to every part of a key', () => {
    const key = { version: 'v'.repeat(20), pkgarch: 'a', checksum: 'c' };
    expect(checkChecksumKey(key, 20)).toEqual(key);
    expect(errorOf(() => checkChecksumKey({ ...key, checksum: 'c'.repeat(21) }, 20)).message).toBe('checksum is longer than 20 bytes');
    expect(errorOf(() => checkPackageKey({ version: 'v', pkgarch: 'a'.repeat(21) }, 20)).message).toBe('pkgarch is longer than 20 bytes');
    expect(checkKeyPart('checksum', 'c'.repeat(KEY_BYTES_CEILING), KEY_BYTES_CEILING)).toHaveLength(KEY_BYTES_CEILING);
  });

  it('takes a limit from 1 to the ceiling the schema can index, and nothing else', () => {
    expect(checkKeyLimit(1)).toBe(1);
    expect(checkKeyLimit(KEY_BYTES_CEILING)).toBe(KEY_BYTES_CEILING);
    for (const bad of [0, KEY_BYTES_CEILING + 1, 1.5, Number.NaN]) {
      expect(errorOf(() => checkKeyLimit(bad))).toBeInstanceOf(RangeError);
    }
  });

  it('refuses an unpaired surrogate, which has no UTF-8 form and would merge two keys', () => {
    for (const bad of ['sur\ud800', 'sur\udfff', '\udc00x']) {
      const error = errorOf(() => checkKeyPart('version', bad));
      expect(isPrStoreError(error) && error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toBe('version must be valid Unicode text (it holds an unpaired surrogate)');
    }
    // A pair is one character outside the BMP, and fine.
    expect(checkKeyPart('version', 'emoji-\ud83d\ude00')).toBe('emoji-😀');
  });
});
