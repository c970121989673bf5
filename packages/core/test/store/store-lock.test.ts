import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrStoreError, openPrStore } from '@prserv/core';
import { type TestDatabase, createEmbeddedFolder } from '@prserv/test-support';
import { acquireStoreLock, type StoreLock } from '../../src/store/store-lock.js';

// Opening PGlite takes seconds and much memory: the suite shares one folder and opens it 4 times.

const pkg = { version: '1.0-r0', pkgarch: 'core2-64' };

async function refusal(database: string): Promise<PrStoreError> {
  const outcome = await openPrStore({ database }).then(
    async (store) => {
      await store.close();
      return undefined;
    },
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(PrStoreError);
  return outcome as PrStoreError;
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

/** A pid that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn('true', { stdio: 'ignore' });
  await once(child, 'exit');
  expect(child.pid).toBeTypeOf('number');
  return child.pid!;
}

describe('embedded store lock', () => {
  let folder: TestDatabase;
  let lockPath: string;

  beforeAll(async () => {
    folder = await createEmbeddedFolder('store-lock', { fresh: true });
    lockPath = join(folder.url, 'prserv.lock');
  });

  afterAll(async () => {
    await folder?.drop();
  });

  it('refuses a second opener while the first is open, naming the holder, and opens again after close', async () => {
    const first = await openPrStore({ database: folder.url });
    try {
      const error = await refusal(folder.url);
      expect(error.code).toBe('STORE_LOCKED');
      expect(error.message).toContain(`pid ${process.pid}`);
      // The refused opener left the holder's lock and store alone.
      expect(JSON.parse(await readFile(lockPath, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
      expect(await first.getPr({ ...pkg, checksum: 'a' })).toBe('0');
    } finally {
      await first.close();
    }
    expect(await exists(lockPath)).toBe(false);

    const again = await openPrStore({ database: folder.url });
    try {
      expect(await again.testPr({ ...pkg, checksum: 'a' })).toBe('0');
      expect(await exists(lockPath)).toBe(true);
    } finally {
      await again.close();
    }
    expect(await exists(lockPath)).toBe(false);
  });

  it('takes over a lock left by a process that has exited', async () => {
    const pid = await deadPid();
    await mkdir(folder.url, { recursive: true });
    await writeFile(lockPath, `${JSON.stringify({ pid, host: hostname(), since: '2024-01-01T00:00:00.000Z' })}\n`);

    const store = await openPrStore({ database: folder.url });
    try {
      expect(JSON.parse(await readFile(lockPath, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
      expect(await store.getPr({ ...pkg, checksum: 'b' })).toBe('1');
    } finally {
      await store.close();
    }
    expect(await exists(lockPath)).toBe(false);
  });

  it('takes over a lock naming this very pid from an earlier life, as after a container restart', async () => {
    await writeFile(lockPath, `${JSON.stringify({ pid: process.pid, host: hostname(), since: '2024-01-01T00:00:00.000Z' })}\n`);
    const store = await openPrStore({ database: folder.url });
    try {
      expect(await store.getPr({ ...pkg, checksum: 'b' })).toBe('1');
      // While this process holds it, a second open here is still refused.
      await expect(openPrStore({ database: folder.url })).rejects.toMatchObject({ code: 'STORE_LOCKED' });
    } finally {
      await store.close();
    }
    expect(await exists(lockPath)).toBe(false);
  });

  it('takes over a lock file that is not a lock (a crash cut it short)', async () => {
    await writeFile(lockPath, '{"pid": 12');
    const store = await openPrStore({ database: folder.url });
    try {
      expect(JSON.parse(await readFile(lockPath, 'utf8'))).toMatchObject({ pid: process.pid });
    } finally {
      await store.close();
    }
    expect(await exists(lockPath)).toBe(false);
  });

  it('refuses a store locked by another live process, naming its pid', async () => {
    let child: ChildProcess | undefined;
    try {
      child = spawn('sleep', ['30'], { stdio: 'ignore' });
      await once(child, 'spawn');
      const text = `${JSON.stringify({ pid: child.pid, host: hostname(), since: new Date().toISOString() })}\n`;
      await writeFile(lockPath, text);

      const error = await refusal(folder.url);
      expect(error.code).toBe('STORE_LOCKED');
      expect(error.message).toContain(`pid ${child.pid}`);
      expect(error.message).toContain(lockPath);
      expect(await readFile(lockPath, 'utf8')).toBe(text);
    } finally {
      if (child && child.exitCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      await rm(lockPath, { force: true });
    }
  });

  it('refuses a store locked from another host, naming the pid and the host', async () => {
    const text = `${JSON.stringify({ pid: 4242, host: 'build-7.example', since: new Date().toISOString() })}\n`;
    await writeFile(lockPath, text);
    try {
      const error = await refusal(folder.url);
      expect(error.code).toBe('STORE_LOCKED');
      expect(error.message).toContain('pid 4242');
      expect(error.message).toContain('build-7.example');
      expect(await readFile(lockPath, 'utf8')).toBe(text);
    } finally {
      await rm(lockPath, { force: true });
    }
  });
});

describe('acquireStoreLock', () => {
  it('lets exactly one of many openers racing for a free lock take it', async () => {
    const folder = await createEmbeddedFolder('store-lock-race', { fresh: true });
    await mkdir(folder.url, { recursive: true });
    const path = join(folder.url, 'prserv.lock');
    try {
      for (let round = 0; round < 50; round += 1) {
        const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => acquireStoreLock(path)));
        const taken = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        expect(taken, `round ${round}`).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect((outcome.reason as PrStoreError).code).toBe('STORE_LOCKED');
        }
        await (taken[0] as PromiseFulfilledResult<StoreLock>).value.release();
        expect(await exists(path)).toBe(false);
      }
    } finally {
      await folder.drop();
    }
  });
});
