import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { CompiledQuery, type Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createPrEngine, openPrStore, type PipelinedSessions, type PrDatabase } from '@prserv/core';
import { storeRefusal } from '../store-refusal.js';
import { PRSERV_ADVISORY_LOCK_KEY } from '../../src/engine/schema.js';
import { createEmbeddedFolder, createPostgresDatabase, STORE_KINDS } from '@prserv/test-support';

/** The tables of the database at `url`, by name. */
async function tablesOf(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
    return rows.map((row) => row.tablename);
  } finally {
    await client.end();
  }
}

describe('openPrStore with mustExist', () => {
  it.runIf(STORE_KINDS.some(({ kind }) => kind === 'embedded'))('refuses a folder that holds no store, and creates nothing', async () => {
    const folder = await createEmbeddedFolder('must-exist', { fresh: true });
    try {
      const error = await storeRefusal(openPrStore({ database: folder.url, mustExist: true, readOnly: true }));
      expect(error.code).toBe('STORE_NOT_FOUND');
      expect(error.message).toBe(`no embedded prserv store at ${folder.url} (no pgdata folder there)`);
      expect(existsSync(folder.url)).toBe(false);
    } finally {
      await folder.drop();
    }
  });

  it.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('refuses a PostgreSQL database without the schema, and leaves it without', async () => {
    const database = await createPostgresDatabase('must_exist');
    try {
      for (const readOnly of [false, true]) {
        const error = await storeRefusal(openPrStore({ database: database.url, mustExist: true, readOnly }));
        expect(error.code).toBe('STORE_NOT_FOUND');
        expect(error.message).toMatch(/^no prserv store in the PostgreSQL database postgres:\/\/.* \(it has no prserv_revision table\)$/);
      }
      expect(await tablesOf(database.url)).toEqual([]);
    } finally {
      await database.drop();
    }
  });

  it.each(STORE_KINDS)('opens a store that is there ($kind)', async ({ kind, create }) => {
    const database = await create(`must_exist_present_${kind}`);
    try {
      // Made as a first start makes it, then opened only if there.
      await (await openPrStore({ database: database.url })).close();
      const store = await openPrStore({ database: database.url, mustExist: true, readOnly: true });
      try {
        expect(await store.maxPackagePr({ version: '1.0-r0', pkgarch: 'core2-64' })).toBeNull();
      } finally {
        await store.close();
      }
    } finally {
      await database.drop();
    }
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'embedded'))('openPrStore making an embedded store folder', () => {
  it('makes the missing folders of a path', async () => {
    const root = await createEmbeddedFolder('nested', { fresh: true });
    try {
      const folder = join(root.url, 'farm', 'branch');
      const store = await openPrStore({ database: folder });
      try {
        expect(await store.getPr({ version: '1.0-r0', pkgarch: 'core2-64', checksum: 'c0' })).toBe('0');
      } finally {
        await store.close();
      }
      expect(existsSync(join(folder, 'pgdata'))).toBe(true);
    } finally {
      await root.drop();
    }
  });

  // Node's recursive mkdir never returns there: the open must fail, not spin.
  it.runIf(process.platform === 'linux')('refuses a folder under one that takes no new entries (/proc)', async () => {
    const error = await storeRefusal(openPrStore({ database: '/proc/prserv-store/data' }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/^cannot create the embedded store folder \/proc\/prserv-store\/data: ENOENT/);
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('openPrStore on PostgreSQL sessions', () => {
  it('gives every connection the request path’s settings, for Kysely’s statements and the pipelined ones alike', async () => {
    const database = await createPostgresDatabase('session_settings');
    let captured: { db: Kysely<PrDatabase>; sessions: PipelinedSessions | undefined } | undefined;
    const store = await openPrStore({
      database: database.url,
      poolSize: 3,
      createEngine: (db, options) => {
        captured = { db, sessions: options.pipelinedSessions };
        return createPrEngine(db, options);
      },
    });
    const settings = 'SELECT current_setting($1) AS seqscan, current_setting($2) AS plans, pg_backend_pid() AS pid';
    const parameters = ['enable_seqscan', 'plan_cache_mode'];
    try {
      const { db, sessions } = captured!;
      // Three at once: each on a connection of its own.
      const viaKysely = await Promise.all(
        Array.from({ length: 3 }, () =>
          db.transaction().execute(async (trx) => {
            await sql`SELECT pg_sleep(0.05)`.execute(trx);
            return (await trx.executeQuery(CompiledQuery.raw(settings, parameters))).rows[0];
          }),
        ),
      );
      const viaGroups = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const session = await sessions!();
          try {
            const [, rows] = await session.run([['SELECT pg_sleep(0.05)', []], [settings, parameters]]);
            return rows![0];
          } finally {
            session.release(false);
          }
        }),
      );
      for (const row of [...viaKysely, ...viaGroups]) expect(row).toMatchObject({ seqscan: 'off', plans: 'force_generic_plan' });
      expect(new Set(viaKysely.map((row) => (row as { pid: number }).pid)).size).toBe(3);
    } finally {
      await store.close();
      await database.drop();
    }
  });
});

describe.runIf(STORE_KINDS.some(({ kind }) => kind === 'postgres'))('openPrStore making the schema on PostgreSQL', () => {
  it('waits for another replica’s migration longer than the statement timeout', async () => {
    const database = await createPostgresDatabase('slow_migration');
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      // Another replica holds the migration lock for three statement timeouts.
      await other.query('SELECT pg_advisory_lock($1)', [PRSERV_ADVISORY_LOCK_KEY]);
      const released = new Promise<void>((resolve) => setTimeout(resolve, 1_500)).then(() => other.query('SELECT pg_advisory_unlock_all()'));
      const store = await openPrStore({ database: database.url, statementTimeoutMs: 500 });
      await released;
      try {
        expect(await store.getPr({ version: '1.0', pkgarch: 'a', checksum: 'c' })).toBe('0');
      } finally {
        await store.close();
      }
    } finally {
      await other.end();
      await database.drop();
    }
  });

  it('names the database without its password, in the URL or as a parameter', async () => {
    const database = await createPostgresDatabase('redacted_location');
    try {
      // The server's own password where it asks for one; under trust authentication any is taken.
      const given = new URL(database.url);
      const secret = given.password ? decodeURIComponent(given.password) : 'any-secret';
      const inUrl = new URL(database.url);
      inUrl.password = secret;
      const inQuery = new URL(database.url);
      inQuery.password = '';
      inQuery.searchParams.set('password', secret);
      for (const url of [inUrl, inQuery]) {
        const store = await openPrStore({ database: url.toString() });
        try {
          expect(store.location).not.toContain(`:${secret}@`);
          expect(store.location).not.toContain(`password=${secret}`);
          expect(store.location).toContain('***');
        } finally {
          await store.close();
        }
      }
    } finally {
      await database.drop();
    }
  });
});
