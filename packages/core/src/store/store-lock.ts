import { randomBytes } from 'node:crypto';
import { link, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { PrStoreError } from '../errors/pr-store-error.js';

/** A held lock file; `release()` removes it if it is still ours. */
export interface StoreLock {
  readonly path: string;
  release(): Promise<void>;
}

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/**
 * Takes an exclusive lock file for an embedded store folder. PGlite has no cross-process
 * locking and two processes on one folder corrupt it, so a second opener must be refused.
 * A lock left by a dead process (same host, pid gone) is taken over.
 */
export async function acquireStoreLock(path: string): Promise<StoreLock> {
  const mine: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  // The token makes each lock file unique, so release never removes a successor's lock.
  const text = `${JSON.stringify({ ...mine, token: randomBytes(8).toString('hex') })}\n`;
  const key = resolve(path);
  for (let attempt = 0; attempt < 5; attempt += 1) {
    let created: boolean;
    try {
      created = await createWhole(path, text);
    } catch (error) {
      throw new PrStoreError('STORE_LOCKED', `cannot create the lock file ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (created) {
      heldByThisProcess.add(key);
      return {
        path,
        release: async () => {
          heldByThisProcess.delete(key);
          await releaseIfOurs(path, text);
        },
      };
    }
    const existing = await readFile(path, 'utf8').catch(() => undefined);
    if (existing === undefined) continue; // released meanwhile: try again
    const owner = parseOwner(existing);
    // Our own pid in the file is only ours if this process holds it: in a container the server is
    // often pid 1 again after a crash, and that earlier life's lock is stale.
    if (heldByThisProcess.has(key)) {
      throw new PrStoreError(
        'STORE_LOCKED',
        `the embedded store is already open in this process (pid ${process.pid}, lock file ${path}); close it first`,
      );
    }
    if (owner && owner.host !== mine.host) {
      throw new PrStoreError(
        'STORE_LOCKED',
        `the embedded store is locked by pid ${owner.pid} on host ${owner.host} (lock file ${path}); remove the file only if that process is gone`,
      );
    }
    if (owner && owner.pid !== process.pid && isAlive(owner.pid)) {
      throw new PrStoreError(
        'STORE_LOCKED',
        `the embedded store is in use by another prserv process (pid ${owner.pid}, lock file ${path})`,
      );
    }
    // Stale: its holder is dead (or the file is unreadable garbage). Remove it only if it is
    // still the same stale file, so two processes taking over at once do not remove each other's.
    const again = await readFile(path, 'utf8').catch(() => undefined);
    if (again === existing) await unlink(path).catch(() => undefined);
  }
  throw new PrStoreError('STORE_LOCKED', `could not take the lock file ${path}: another process keeps taking it`);
}

/** Error codes of a file system that makes no hard links (some network and FUSE file systems). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Creates the lock file with its content, or answers false when one exists. The content is
 * written to a file of this opener's own first and linked into place: a lock file is never seen
 * empty, so no opener takes a lock that is being written for one cut short by a crash.
 */
async function createWhole(path: string, text: string): Promise<boolean> {
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(draft, text, { flag: 'wx', mode: 0o644 });
  try {
    await link(draft, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!NO_HARD_LINKS.has(code ?? '')) throw error;
  } finally {
    await unlink(draft).catch(() => undefined);
  }
  // Without hard links: created and written in two steps, as well as such a file system allows.
  return writeFile(path, text, { flag: 'wx', mode: 0o644 }).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false;
      throw error;
    },
  );
}

/** Lock files this process holds now (resolved paths). */
const heldByThisProcess = new Set<string>();

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string') {
      return { pid: value.pid, host: value.host, since: String(value.since ?? '') };
    }
  } catch {
    // not ours, or truncated by a crash: treated as stale
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function releaseIfOurs(path: string, text: string): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === text) await unlink(path).catch(() => undefined);
}
