import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { extractTarGz } from '../../src/store/tar-extract.js';

interface Entry {
  readonly name: string;
  readonly type?: string;
  readonly content?: string;
  /** ustar prefix field, for long names. */
  readonly prefix?: string;
}

/** A gzip'd ustar archive of `entries`, laid out as tar writes it. */
function tarGz(entries: Entry[]): Uint8Array {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? '');
    const header = Buffer.alloc(512);
    header.write(entry.name, 0, 100);
    header.write('0000644\0', 100);
    header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write(entry.type ?? '0', 156);
    header.write('ustar\0', 257);
    if (entry.prefix) header.write(entry.prefix, 345, 155);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const folders: string[] = [];

async function freshFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'prserv-tar-'));
  folders.push(folder);
  return folder;
}

afterEach(async () => {
  await Promise.all(folders.splice(0).map((folder) => rm(folder, { recursive: true, force: true })));
});

describe('extractTarGz', () => {
  it('writes folders and files, with leading slashes and the ustar prefix resolved under the target', async () => {
    const target = await freshFolder();
    await extractTarGz(
      tarGz([
        { name: '/PG_VERSION', content: '17\n' },
        { name: '/base', type: '5' },
        { name: '/base/1/112', content: 'x'.repeat(1500) },
        { name: 'deep.conf', prefix: 'global/long/path', content: 'a = 1\n' },
        { name: '/empty', content: '' },
      ]),
      target,
    );
    expect(await readFile(join(target, 'PG_VERSION'), 'utf8')).toBe('17\n');
    expect(await readFile(join(target, 'base/1/112'), 'utf8')).toBe('x'.repeat(1500));
    expect(await readFile(join(target, 'global/long/path/deep.conf'), 'utf8')).toBe('a = 1\n');
    expect((await stat(join(target, 'empty'))).size).toBe(0);
    expect((await readdir(target)).sort()).toEqual(['PG_VERSION', 'base', 'empty', 'global']);
  });

  it('leaves out the entries it is told to skip', async () => {
    const target = await freshFolder();
    await extractTarGz(tarGz([{ name: '/postmaster.pid', content: '42' }, { name: '/PG_VERSION', content: '17' }]), target, {
      skip: new Set(['postmaster.pid']),
    });
    expect(await readdir(target)).toEqual(['PG_VERSION']);
  });

  it.each(['../outside', '/a/../../outside', 'a/../../outside'])('refuses %s, which would leave the target', async (name) => {
    const target = await freshFolder();
    await expect(extractTarGz(tarGz([{ name, content: 'x' }]), join(target, 'inner'))).rejects.toThrow(/leaves the target folder/);
    expect(await readdir(target)).toEqual([]);
  });

  it.each([
    ['a symbolic link', '2'],
    ['a hard link', '1'],
    ['a device', '3'],
  ])('refuses %s', async (_, type) => {
    const target = await freshFolder();
    await expect(extractTarGz(tarGz([{ name: 'link', type }]), target)).rejects.toThrow(/only files and folders/);
  });

  it('refuses data that is not gzip', async () => {
    const target = await freshFolder();
    await expect(extractTarGz(Buffer.from('not an archive'), target)).rejects.toThrow();
  });
});
