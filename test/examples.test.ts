import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, type TestDatabase } from './support/databases.js';
import { type ServerProcess, startServerProcess } from './support/cli-process.js';

const run = promisify(execFile);
const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

describe('examples', () => {
  let database: TestDatabase;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createPostgresDatabase('examples');
    server = await startServerProcess({ database: database.url });
  });

  afterAll(async () => {
    await server?.stop();
    await database?.drop();
  });

  it('allocates in-process: a returning checksum moves above the newer one', async () => {
    const { stdout } = await run(process.execPath, [example('in-process-allocation.mjs'), database.url]);
    expect(stdout).toContain('3f2a…first-build -> PR 0');
    expect(stdout).toContain('9b1c…second-build -> PR 1');
    expect(stdout).toContain('3f2a…first-build -> PR 2');
    expect(stdout).toContain('greatest PR of 1.0-r0: 2 (postgres store');
  });

  it('allocates in-process on the embedded store by default, in ./prserv-data', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'prserv-example-embedded-'));
    try {
      const env = { ...process.env };
      delete env.PRSERV_DATABASE;
      const { stdout } = await run(process.execPath, [example('in-process-allocation.mjs')], { cwd: folder, env });
      expect(stdout).toContain('3f2a…first-build -> PR 0');
      expect(stdout).toContain('9b1c…second-build -> PR 1');
      expect(stdout).toContain('3f2a…first-build -> PR 2');
      expect(stdout).toContain(`greatest PR of 1.0-r0: 2 (embedded store at ${join(folder, 'prserv-data')}`);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('checks a manifest against a running server without allocating', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'prserv-manifest-'));
    try {
      const manifest = join(folder, 'manifest.json');
      await writeFile(
        manifest,
        JSON.stringify([
          { version: '1.0-r0', pkgarch: 'core2-64', checksum: '3f2a…first-build' },
          { version: '9.9-r0', pkgarch: 'core2-64', checksum: 'unknown' },
        ]),
      );
      const env = { ...process.env, PRSERV_SERVER_ADDR: server.address };
      const result = await run(process.execPath, [example('ci-check-revisions.mjs'), manifest], { env }).catch(
        (error: { code: number; stdout: string }) => error,
      );
      expect(result).toMatchObject({ code: 3 });
      expect(result.stdout).toContain('1.0-r0\tcore2-64\t2');
      expect(result.stdout).toContain('9.9-r0\tcore2-64\tNEW');
      expect(result.stdout).toContain('1 package(s) would get a new PR');
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('asks many PRs at once over the JSON-RPC envelope and reads the server stats', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'prserv-pipelined-'));
    try {
      const list = join(folder, 'packages.json');
      const packages = Array.from({ length: 50 }, (_, index) => ({ version: 'pipe-1.0', pkgarch: 'core2-64', checksum: `c${index}` }));
      await writeFile(list, JSON.stringify(packages));
      const env = { ...process.env, PRSERV_SERVER_ADDR: server.address };
      const { stdout } = await run(process.execPath, [example('pipelined-get-pr.mjs'), list], { env });
      const lines = stdout.trim().split('\n');
      // New checksums of one package asked together get 50 distinct PRs.
      expect(new Set(lines.slice(0, 50).map((line) => line.split('\t')[2])).size).toBe(50);
      expect(lines[50]).toMatch(/^the server has answered \d+ get-pr since its stats began \(p99 [\d.]+ ms\)$/);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
