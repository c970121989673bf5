import { randomInt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrStoreError, KEY_BYTES_CEILING, openPrStore, type PrStore } from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';

/** `bytes` UTF-8 bytes of random two-byte characters: nothing for PostgreSQL to compress. */
function incompressible(bytes: number): string {
  return Array.from({ length: bytes / 2 }, () => String.fromCodePoint(0x100 + randomInt(0x6ff))).join('');
}

describe.each(STORE_KINDS)('keys at the ceiling of --max-key-bytes on $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let store: PrStore;

  beforeAll(async () => {
    database = await create(`key_limit_${kind}`);
    store = await openPrStore({ database: database.url, maxKeyBytes: KEY_BYTES_CEILING });
  });
  afterAll(async () => {
    await store?.close();
    await database?.drop();
  });

  it('stores and finds rows whose three parts and revision are all as long as allowed', async () => {
    const key = { version: incompressible(KEY_BYTES_CEILING), pkgarch: incompressible(KEY_BYTES_CEILING), checksum: incompressible(KEY_BYTES_CEILING) };
    // The revision whose numeric array is the largest a 128-character revision makes.
    const widest = Array.from({ length: 64 }, () => '1').join('.');
    expect(await store.importOne({ ...key, value: widest })).toBe(widest);
    expect(await store.testPr({ ...key, history: true })).toBe(widest);
    // A new checksum goes above it, however the rules spell the next revision.
    const next = await store.getPr({ ...key, checksum: incompressible(KEY_BYTES_CEILING) });
    expect(next).not.toBe(widest);
    expect(await store.maxPackagePr(key)).toBe(next);
  });

  it('refuses a part one byte over the configured limit', async () => {
    const refused = await store.getPr({ version: 'v', pkgarch: 'a', checksum: 'c'.repeat(KEY_BYTES_CEILING + 1) }).catch((error: unknown) => error);
    expect(isPrStoreError(refused) && refused.code).toBe('INVALID_ARGUMENT');
  });

  it('refuses a limit above the ceiling when the store opens', async () => {
    await expect(openPrStore({ database: database.url, maxKeyBytes: KEY_BYTES_CEILING + 1 })).rejects.toThrow(RangeError);
  });
});
