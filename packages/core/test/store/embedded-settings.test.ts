import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore } from '@prserv/core';
import { createEmbeddedFolder, type TestDatabase } from '@prserv/test-support';

describe('the embedded store’s PostgreSQL settings', () => {
  let folder: TestDatabase;

  beforeAll(async () => {
    folder = await createEmbeddedFolder('embedded-settings');
  });
  afterAll(async () => {
    await folder?.drop();
  });

  it('runs with 8 MB of shared buffers, written into the store so every start uses them', async () => {
    const store = await openPrStore({ database: folder.url });
    expect(await store.getPr({ version: 'settings-1.0', pkgarch: 'core2-64', checksum: 'c0' })).toBe('0');
    await store.close();
    // Opened bare, without the store's options: what the data directory itself says.
    const pglite = await PGlite.create(join(folder.url, 'pgdata'));
    try {
      const { rows } = await pglite.query<{ shared_buffers: string }>('SHOW shared_buffers');
      expect(rows[0]?.shared_buffers).toBe('8MB');
    } finally {
      await pglite.close();
    }
  });
});
