import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
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
export async function createEmbeddedFolder(label: string): Promise<TestDatabase> {
  const root = await mkdtemp(join(tmpdir(), `prserv-${label.replace(/[^a-z0-9]+/gi, '-')}-`));
  return { url: join(root, 'store'), drop: () => rm(root, { recursive: true, force: true }) };
}

/** The two stores every engine and end-to-end suite runs on. */
export const STORE_KINDS = [
  { kind: 'postgres', create: createPostgresDatabase },
  { kind: 'embedded', create: createEmbeddedFolder },
] as const;

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
