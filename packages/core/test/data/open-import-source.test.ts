import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSourceRow, openImportSource } from '@prserv/core';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'prserv-sources-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rowsOf(text: string, name = 'source'): Promise<unknown[]> {
  const path = join(dir, name);
  await writeFile(path, text);
  const source = await openImportSource(path);
  const rows = [];
  for await (const row of source.rows()) rows.push([row.version, row.pkgarch, row.checksum, row.value]);
  await source.close();
  return rows;
}

describe('bitbake-prserv-tool export files', () => {
  it('reads the rows of a file as openembedded-core writes it, with its column header and lock-down line', async () => {
    const text = [
      '#PR_core_ver = "1.0.0"',
      '',
      '#Table: PRMAIN_nohist',
      '#Columns:',
      '#name      \t type    \t notn    \t dflt    \t pk',
      '#----------\t --------\t --------\t --------\t ----',
      '#   version\t     TEXT\t        1\t     None\t    1',
      '',
      'PRSERV_LOCKDOWN = "1"',
      '',
      'PRAUTO$1.0-r0$core2-64$ab12 = "3"',
      "PRAUTO$AUTOINC+abc-r0$all$cd34 = '0.2'",
      'PRAUTO_1.0-r0_core2-64 = "3"',
      '',
    ].join('\n');
    expect(await rowsOf(text, 'export.inc')).toEqual([
      ['1.0-r0', 'core2-64', 'ab12', '3'],
      ['AUTOINC+abc-r0', 'all', 'cd34', '0.2'],
    ]);
  });

  it('stops at a line it cannot read, naming it', async () => {
    await expect(rowsOf('PRAUTO$1.0$a$b = "1"\nPRAUTO$1.0$a = "2"\n', 'broken.inc')).rejects.toMatchObject({
      code: 'SOURCE_MALFORMED',
      message: expect.stringContaining('broken.inc:2'),
    });
  });
});

describe('JSON exports', () => {
  it('refuses a file cut short, and a format version it does not know', async () => {
    const head = '{"format":"prserv-export","formatVersion":1,"history":true,"version":null,"pkgarch":null,"rows":[\n';
    await expect(rowsOf(`${head}{"version":"1","pkgarch":"a","checksum":"c","value":"0"},\n`, 'cut.json')).rejects.toMatchObject({
      code: 'SOURCE_MALFORMED',
      message: expect.stringContaining('ends before the closing'),
    });
    await expect(rowsOf(head.replace('"formatVersion":1', '"formatVersion":2') + ']}\n', 'v2.json')).rejects.toMatchObject({ code: 'SOURCE_MALFORMED' });
  });

  it('reads a re-formatted (pretty-printed) export whole', async () => {
    const document = { format: 'prserv-export', formatVersion: 1, history: true, version: null, pkgarch: null, rows: [{ version: '1', pkgarch: 'a', checksum: 'c', value: '0.1' }] };
    expect(await rowsOf(JSON.stringify(document, null, 2), 'pretty.json')).toEqual([['1', 'a', 'c', '0.1']]);
  });
});

describe('saved export answers', () => {
  it('reads the datainfo rows of a modern and of a legacy server, with or without metainfo', async () => {
    const modern = {
      metainfo: { tbl_name: 'PRMAIN', core_ver: '2.0.0', col_info: [] },
      datainfo: [
        { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'ab12', value: '0' },
        { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'cd34', value: '0.1' },
      ],
    };
    expect(await rowsOf(JSON.stringify(modern), 'modern.json')).toEqual([
      ['1.0-r0', 'core2-64', 'ab12', '0'],
      ['1.0-r0', 'core2-64', 'cd34', '0.1'],
    ]);
    const legacy = { datainfo: [{ version: '1.0', pkgarch: 'all', checksum: 'ef56', value: 7 }], metainfo: {} };
    expect(await rowsOf(JSON.stringify(legacy, null, 2), 'legacy.json')).toEqual([['1.0', 'all', 'ef56', 7]]);
  });

  it('passes a row that is not an object on to the row checks, naming it', async () => {
    const path = join(dir, 'odd-row.json');
    await writeFile(path, JSON.stringify({ metainfo: {}, datainfo: ['1.0 all ab12 3'] }));
    const source = await openImportSource(path);
    const rows = [];
    for await (const row of source.rows()) rows.push(row);
    expect(rows).toHaveLength(1);
    expect(checkSourceRow(rows[0]!)).toBe('version is missing');
    expect(rows[0]!.where).toBe(`${path} row 1`);
  });

  it('refuses an answer without a datainfo array, or cut short', async () => {
    await expect(rowsOf('{"metainfo": {}, "datainfo": {"version": "1.0"}}', 'no-array.json')).rejects.toMatchObject({
      code: 'SOURCE_MALFORMED',
      message: expect.stringContaining('"datainfo" must be an array of rows'),
    });
    await expect(rowsOf('{"metainfo": [], "datainfo": []}', 'bad-meta.json')).rejects.toMatchObject({ code: 'SOURCE_MALFORMED' });
    await expect(rowsOf('{"metainfo": {}, "datainfo": [{"version": "1.0", ', 'cut-answer.json')).rejects.toMatchObject({
      code: 'SOURCE_MALFORMED',
      message: expect.stringContaining('cut-answer.json:1: not valid JSON'),
    });
  });
});

describe('detection', () => {
  it('refuses a file of no known kind and --table on anything but sqlite', async () => {
    await expect(rowsOf('hello\n', 'notes.txt')).rejects.toMatchObject({ code: 'SOURCE_UNREADABLE' });
    const path = join(dir, 'table.inc');
    await writeFile(path, 'PRAUTO$1$a$b = "1"\n');
    await expect(openImportSource(path, { table: 'PRMAIN' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses a directory as unreadable, naming it', async () => {
    await expect(openImportSource(dir)).rejects.toMatchObject({ name: 'DataToolError', code: 'SOURCE_UNREADABLE', message: expect.stringContaining(`cannot read ${dir}: EISDIR`) });
  });
});

describe('checkSourceRow', () => {
  it('keeps integers and revisions in canonical spelling and says why it skips the rest', () => {
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'c', value: 12 })).toEqual({ version: 'v', pkgarch: 'a', checksum: 'c', value: '12' });
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'c', value: ' 01.002 ' })).toMatchObject({ value: '1.2' });
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'c', value: -1 })).toBe('value "-1" is not a revision such as "3" or "1.2"');
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'c', value: 1.5 })).toBe('value 1.5 is not a whole number');
    expect(checkSourceRow({ version: '', pkgarch: 'a', checksum: 'c', value: 1 })).toBe('version is empty or not text');
    expect(checkSourceRow({ version: 'v', pkgarch: null, checksum: 'c', value: 1 })).toBe('pkgarch is missing');
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'x'.repeat(640), value: 1 })).toMatchObject({ checksum: 'x'.repeat(640) });
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'x'.repeat(641), value: 1 })).toBe('checksum is longer than 640 bytes');
    // Both would be stored as "x\ufffd": two checksums of the source made one.
    expect(checkSourceRow({ version: 'v', pkgarch: 'a', checksum: 'x\ud800', value: 1 })).toBe('checksum is not valid Unicode text (it holds an unpaired surrogate)');
    expect(checkSourceRow({ version: 'v\udc00', pkgarch: 'a', checksum: 'c', value: 1 })).toBe('version is not valid Unicode text (it holds an unpaired surrogate)');
  });
});
