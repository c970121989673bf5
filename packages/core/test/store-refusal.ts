import { expect } from 'vitest';
import { PrStoreError } from '@prserv/core';

/** The `PrStoreError` that `promise` rejects with; fails the test when it settles otherwise. */
export async function storeRefusal(promise: Promise<unknown>): Promise<PrStoreError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PrStoreError);
  return error as PrStoreError;
}
