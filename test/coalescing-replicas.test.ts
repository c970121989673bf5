import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPrStore, type PrStore } from '@prserv/core';
import { type RunningPrServer, runStress, startPrServer } from '@prserv/server';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';

const REPLICAS = 3;

// Three engines, each with its own pool and its own coalescer, on one database: batches of
// different replicas interleave and must still give answers some one-at-a-time order would.
describe('coalescing replicas on one PostgreSQL database', () => {
  let database: TestDatabase;
  let stores: PrStore[] = [];
  let servers: RunningPrServer[] = [];

  beforeAll(async () => {
    database = await createPostgresDatabase('coalescing_replicas');
    stores = await Promise.all(Array.from({ length: REPLICAS }, () => openPrStore({ database: database.url, poolSize: 4 })));
    servers = await Promise.all(stores.map((engine) => startPrServer({ engine, host: '127.0.0.1', port: 0 })));
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await Promise.all(stores.map((store) => store.close()));
    await database?.drop();
  });

  it.each(['history', 'nohist'] as const)('passes every stress check with 500 mixed %s requests over 3 pools', async (mode) => {
    const report = await runStress({
      servers: servers.map((server) => `127.0.0.1:${server.address.port}`),
      connections: 48,
      requests: 500,
      // Few packages and many new checksums: batches of different replicas contend for the same locks.
      packages: 4,
      newRatio: 0.5,
      mode,
    });
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.errors).toBe(0);
    expect(report.requests).toBe(500);
  });
});
