import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';

/** A database made for one suite; `drop()` removes it. */
export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates an empty PostgreSQL database on the test server, named after `label`. */
export async function createPostgresDatabase(label: string): Promise<TestDatabase> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `prserv_${label.replace(/[^a-z0-9]+/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}

/** Creates an empty folder for an embedded store; `drop()` removes it. */
/**
 * Makes a folder for an embedded store; `drop()` removes it. By default it starts as a copy of
 * a store the global setup created once (a new PGlite store costs seconds and a gigabyte of
 * memory to initialise; a copy opens in one or two). `fresh: true` gives a folder that does not
 * exist yet, for tests of store creation itself.
 */
export async function createEmbeddedFolder(label: string, options: { fresh?: boolean } = {}): Promise<TestDatabase> {
  const root = await mkdtemp(join(tmpdir(), `prserv-${label.replace(/[^a-z0-9]+/gi, '-')}-`));
  const folder = join(root, 'store');
  if (!options.fresh) await cp(inject('embeddedTemplate'), folder, { recursive: true });
  return { url: folder, drop: () => rm(root, { recursive: true, force: true }) };
}

const ALL_STORE_KINDS = [
  { kind: 'postgres', create: createPostgresDatabase },
  { kind: 'embedded', create: createEmbeddedFolder },
] as const;

/**
 * The stores every engine and end-to-end suite runs on: both, unless PRSERV_TEST_STORES names
 * some (e.g. `postgres` for a second run against another PostgreSQL server).
 */
export const STORE_KINDS = ALL_STORE_KINDS.filter(
  ({ kind }) => !process.env.PRSERV_TEST_STORES || process.env.PRSERV_TEST_STORES.split(',').includes(kind),
);

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
