import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataToolError, openBitbakeSqliteSource } from '@prserv/core';
import { damageLastTablePage, manyLegacyRows, writeBitbakeDatabase } from './bitbake-fixtures.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prserv-sqlite-source-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('damaged BitBake databases', () => {
  it('refuses a file cut short with SOURCE_UNREADABLE naming it, not with sql.js own error', async () => {
    const whole = join(dir, 'whole.sqlite3');
    await writeBitbakeDatabase(whole, { PRMAIN_nohist: manyLegacyRows('1.0-r0', 400) });
    // As `head -c 4096`: the header and the schema survive, the table's pages do not.
    const cut = join(dir, 'cut.sqlite3');
    await writeFile(cut, (await readFile(whole)).subarray(0, 4096));
    const refused = openBitbakeSqliteSource(cut);
    await expect(refused).rejects.toBeInstanceOf(DataToolError);
    await expect(refused).rejects.toMatchObject({
      code: 'SOURCE_UNREADABLE',
      message: `${cut} is not a readable sqlite database: database disk image is malformed`,
    });
  });

  it('reads the rows before a damaged page, then fails with SOURCE_UNREADABLE naming the file', async () => {
    const path = join(dir, 'damaged.sqlite3');
    await writeBitbakeDatabase(path, { PRMAIN_nohist: manyLegacyRows('1.0-r0', 400) });
    await damageLastTablePage(path);
    // The row count reads only page headers: the damage is not seen on opening.
    const source = await openBitbakeSqliteSource(path);
    try {
      expect(source.size).toBe(400);
      let read = 0;
      const reading = (async () => {
        for await (const _ of source.rows()) read += 1;
      })();
      await expect(reading).rejects.toBeInstanceOf(DataToolError);
      await expect(reading).rejects.toMatchObject({
        code: 'SOURCE_UNREADABLE',
        message: `${path} is not a readable sqlite database: database disk image is malformed`,
      });
      expect(read).toBeGreaterThan(0);
      expect(read).toBeLessThan(400);
    } finally {
      await source.close();
    }
  });
});
