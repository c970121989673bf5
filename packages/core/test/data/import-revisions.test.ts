import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DataStore,
  DataToolError,
  type ExportFormat,
  formatRevisions,
  importRevisions,
  openDataStore,
  openImportSource,
  streamRevisions,
} from '@prserv/core';
import { STORE_KINDS, type TestDatabase } from '@prserv/test-support';
import { damageLastTablePage, legacyHistRows, legacyNohistRows, manyLegacyRows, modernRows, writeBitbakeDatabase } from './bitbake-fixtures.js';

describe.each(STORE_KINDS)('importing into $kind', ({ kind, create }) => {
  let database: TestDatabase;
  let data: DataStore;
  let dir: string;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    database = await create(`import_${kind}`);
    data = await openDataStore({ database: database.url });
    dir = await mkdtemp(join(tmpdir(), 'prserv-import-'));
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await data?.store.close();
    await database?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const fresh = () => `1.0-r0-${randomUUID().slice(0, 8)}`;
  const importFile = async (path: string, options: Parameters<typeof importRevisions>[2] & { table?: string } = {}, into = data) => {
    const source = await openImportSource(path, { table: options.table });
    try {
      return await importRevisions(into.db, source.rows(), options);
    } finally {
      await source.close();
    }
  };
  const exportText = async (from: DataStore, format: ExportFormat, version?: string) => {
    let text = '';
    for await (const chunk of formatRevisions(streamRevisions(from.db, { history: true, version }), format, { history: true, version: version ?? null, pkgarch: null })) text += chunk;
    return text;
  };

  it('answers as BitBake 5.0 does for its own no-history file (also the only table of a 4.0 file)', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN_nohist: legacyNohistRows(version) });
    const report = await importFile(path);
    expect(report).toMatchObject({ rowsRead: 16, rowsNew: 16, packagesNew: 2, conflictCount: 0, written: true });
    const store = data.store;
    const pkg = { version, pkgarch: 'core2-64' };
    expect(await store.getPr({ ...pkg, checksum: 'c0' })).toBe('4');
    expect(await store.getPr({ ...pkg, checksum: 'c1' })).toBe('5');
    const big = { version: `${version}-b`, pkgarch: 'core2-64' };
    expect(await store.maxPackagePr(big)).toBe('11');
    expect(await store.getPr({ ...big, checksum: 'k11' })).toBe('11');
    expect(await store.getPr({ ...big, checksum: 'k9' })).toBe('12');
    expect(await store.getPr({ ...big, checksum: 'new' })).toBe('13');
  });

  it('answers as BitBake 5.0 does for its history-mode file', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN_hist: legacyHistRows(version) });
    expect(await importFile(path)).toMatchObject({ rowsNew: 11, written: true });
    const pkg = { version, pkgarch: 'qemux86_64', history: true };
    expect(await data.store.getPr({ ...pkg, checksum: 'h3' })).toBe('3');
    expect(await data.store.getPr({ ...pkg, checksum: 'h10' })).toBe('10');
    expect(await data.store.getPr({ ...pkg, checksum: 'new' })).toBe('11');
  });

  it('reads a 6.0 file in WAL mode and compares its text revisions as numbers', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN: modernRows(version) }, { wal: true });
    await writeFile(`${path}-wal`, '');
    expect(await importFile(path)).toMatchObject({ rowsRead: 15, rowsNew: 15, packagesNew: 2, written: true });
    const pkg = { version, pkgarch: 'armv8a' };
    expect(await data.store.maxPackagePr(pkg)).toBe('11');
    expect(await data.store.getPr({ ...pkg, checksum: 'm0' })).toBe('11');
    expect(await data.store.getPr({ ...pkg, checksum: 'm0', history: true })).toBe('0');
    // BitBake 6.0 compares "9" > "11" as text and would hand m9 its old 9 back.
    expect(await data.store.getPr({ ...pkg, checksum: 'm9' })).toBe('12');
    expect(await data.store.getPr({ ...pkg, checksum: 'new' })).toBe('13');
    expect(await data.store.maxPackagePr({ version: `${version}-up`, pkgarch: 'armv8a' })).toBe('2.1');
  });

  it('takes the legacy table of a 5.0 file that a 6.0 server opened (and left an empty PRMAIN in)', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN_nohist: legacyNohistRows(version), PRMAIN: [] });
    expect(await importFile(path)).toMatchObject({ rowsNew: 16, written: true });
    expect(await data.store.maxPackagePr({ version, pkgarch: 'core2-64' })).toBe('4');
  });

  it('refuses a file with rows in both legacy tables, naming them, and takes the one --table names', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN_nohist: legacyNohistRows(version), PRMAIN_hist: legacyHistRows(version) });
    await expect(openImportSource(path)).rejects.toMatchObject({
      code: 'SOURCE_AMBIGUOUS',
      message: expect.stringContaining('PRMAIN_nohist (16 rows), PRMAIN_hist (11 rows)'),
    });
    expect(await importFile(path, { table: 'PRMAIN_hist' })).toMatchObject({ rowsNew: 11, packagesNew: 1 });
  });

  it('refuses a database whose server still runs (a non-empty -wal beside it)', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN: modernRows(version) }, { wal: true });
    await writeFile(`${path}-wal`, Buffer.alloc(4096, 1));
    await expect(openImportSource(path)).rejects.toMatchObject({ code: 'SOURCE_IN_USE' });
  });

  it('skips rows it cannot store and says why', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN: [[version, 'a', 'ok', '007'], [version, 'a', 'null', null], [version, 'a', 'bad', 'r1']] });
    const report = await importFile(path);
    expect(report).toMatchObject({ rowsRead: 3, rowsSkipped: 2, rowsNew: 1 });
    expect(report.skipped.map((row) => row.reason)).toEqual(['value is NULL', 'value "r1" is not a revision such as "3" or "1.2"']);
    expect(await data.store.maxPackagePr({ version, pkgarch: 'a' })).toBe('7');
  });

  it('max-guard: refuses a lowering import and writes nothing; a dry run writes nothing; --allow-lower writes', async () => {
    const version = fresh();
    const first = join(dir, `${version}-1.sqlite3`);
    await writeBitbakeDatabase(first, { PRMAIN_nohist: legacyNohistRows(version) });
    await importFile(first);
    const before = await exportText(data, 'json', version);
    // What a 6.0 server wrote after opening the same site's 5.0 file: every PR restarted at 0.
    const restarted = join(dir, `${version}-2.sqlite3`);
    await writeBitbakeDatabase(restarted, {
      PRMAIN: [
        [version, 'core2-64', 'c0', '0'],
        [version, 'core2-64', 'z', '2'],
        [version, 'core2-64', 'y', '3.5'],
        [version, 'core2-64', 'w', '9'],
      ],
    });
    const refused = await importFile(restarted);
    expect(refused).toMatchObject({ rowsNew: 4, conflictCount: 3, refused: true, written: false });
    expect(refused.conflicts).toEqual([
      { kind: 'lowers-checksum', version, pkgarch: 'core2-64', checksum: 'c0', value: '0', target: '4' },
      { kind: 'value-taken', version, pkgarch: 'core2-64', checksum: 'z', value: '2', target: 'c2' },
      { kind: 'below-max', version, pkgarch: 'core2-64', checksum: 'y', value: '3.5', target: '4' },
    ]);
    expect(await exportText(data, 'json', version)).toBe(before);

    const dry = await importFile(restarted, { dryRun: true, allowLower: true });
    expect(dry).toMatchObject({ rowsNew: 4, conflictCount: 3, refused: false, written: false });
    expect(await exportText(data, 'json', version)).toBe(before);

    expect(await importFile(restarted, { allowLower: true })).toMatchObject({ written: true, rowsNew: 4 });
    expect(await data.store.maxPackagePr({ version, pkgarch: 'core2-64' })).toBe('9');
    // Importing the same file again changes nothing and conflicts with nothing.
    expect(await importFile(restarted)).toMatchObject({ rowsNew: 0, rowsPresent: 4, conflictCount: 0, written: true });
  });

  it('max-guard: refuses rows of one import that give a revision to two checksums, however spelled', async () => {
    const version = fresh();
    const row = (checksum: string, value: unknown) => ({ version, pkgarch: 'core2-64', checksum, value });
    // Two sites that each numbered the package from 0, imported together; "007" is 7.
    const rows = [row('a0', '0'), row('a1', '1'), row('b0', '0'), row('b1', '1'), row('c7', '007'), row('d7', 7), row('e9', '9')];
    const refused = await importRevisions(data.db, rows);
    expect(refused).toMatchObject({ rowsNew: 7, conflictCount: 6, refused: true, written: false });
    expect(refused.conflicts).toEqual([
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'a0', value: '0', target: 'b0' },
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'b0', value: '0', target: 'a0' },
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'a1', value: '1', target: 'b1' },
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'b1', value: '1', target: 'a1' },
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'c7', value: '7', target: 'd7' },
      { kind: 'value-shared', version, pkgarch: 'core2-64', checksum: 'd7', value: '7', target: 'c7' },
    ]);
    expect(await data.store.maxPackagePr({ version, pkgarch: 'core2-64' })).toBeNull();
    // One site's rows alone, and the same checksum under two spellings, are one history.
    expect(await importRevisions(data.db, [row('a0', '0'), row('a1', '1'), row('a1', '01')])).toMatchObject({ rowsNew: 2, conflictCount: 0, written: true });
  });

  it('records the import tool as how rows were stored, and refuses a frozen package even with --allow-lower', async () => {
    const version = fresh();
    const file = join(dir, `${version}-provenance.sqlite3`);
    await writeBitbakeDatabase(file, { PRMAIN: [[version, 'core2-64', 'a', '0'], [version, 'core2-64', 'b', '1']] });
    await data.store.getPr({ version: `${version}-frozen`, pkgarch: 'core2-64', checksum: 'x' });
    expect(await importFile(file)).toMatchObject({ written: true, rowsNew: 2 });
    const history = await data.store.packageHistory({ version, pkgarch: 'core2-64' });
    expect(history.map((row) => [row.checksum, row.value, row.storedHow, row.previousMax, row.storedAt !== null])).toEqual([
      ['a', '0', 'import-tool', null, true],
      ['b', '1', 'import-tool', null, true],
    ]);

    await data.store.freeze({ version: `${version}-fro*` });
    const frozenFile = join(dir, `${version}-frozen.sqlite3`);
    await writeBitbakeDatabase(frozenFile, { PRMAIN: [[`${version}-frozen`, 'core2-64', 'y', '7']] });
    const refused = await importFile(frozenFile, { allowLower: true });
    expect(refused).toMatchObject({ refused: true, written: false, conflictCount: 1 });
    expect(refused.conflicts).toEqual([
      { kind: 'frozen', version: `${version}-frozen`, pkgarch: 'core2-64', checksum: 'y', value: '7', target: `${version}-fro*` },
    ]);
    expect(await data.store.maxPackagePr({ version: `${version}-frozen`, pkgarch: 'core2-64' })).toBe('0');
    await data.store.thaw({ version: `${version}-fro*` });
  });

  it("stops at a source's own error with its code, naming the file, and writes nothing", async () => {
    const version = fresh();
    const base = join(dir, `${version}-base.sqlite3`);
    await writeBitbakeDatabase(base, { PRMAIN: [[version, 'core2-64', 'base', '0']] });
    await importFile(base);
    const before = await exportText(data, 'json', version);

    // Thirty good rows above the store's, so that batches of 10 are staged before the bad part.
    const head = '{"format":"prserv-export","formatVersion":1,"history":true,"version":null,"pkgarch":null,"rows":[\n';
    const jsonRows = Array.from({ length: 30 }, (_, index) => `${JSON.stringify({ version, pkgarch: 'core2-64', checksum: `j${index}`, value: String(index + 1) })},\n`).join('');
    const incRows = Array.from({ length: 30 }, (_, index) => `PRAUTO$${version}$core2-64$i${index} = "${index + 1}"\n`).join('');
    const file = async (name: string, text: string) => {
      const path = join(dir, `${version}-${name}`);
      await writeFile(path, text);
      return path;
    };
    const sqlite = async (name: string) => {
      const path = join(dir, `${version}-${name}`);
      await writeBitbakeDatabase(path, { PRMAIN_nohist: manyLegacyRows(version, 400, 1) });
      return path;
    };
    const cutSqlite = await sqlite('cut.sqlite3');
    // As `head -c 4096 FILE`: the header and the schema survive, the table's pages do not.
    await writeFile(cutSqlite, (await readFile(cutSqlite)).subarray(0, 4096));
    const damagedSqlite = await sqlite('damaged.sqlite3');
    await damageLastTablePage(damagedSqlite);
    const cases: [path: string, code: string, reason: string][] = [
      // `prserv export --format json` output cut in the middle of a line.
      [await file('cut.json', `${head}${jsonRows}{"version":"${version}","pkgarch":"core2-64","chec`), 'SOURCE_MALFORMED', ':32: not valid JSON'],
      [await file('unclosed.json', `${head}${jsonRows}`), 'SOURCE_MALFORMED', 'ends before the closing "]}"'],
      [await file('v2.json', `${head.replace('"formatVersion":1', '"formatVersion":2')}${jsonRows}]}\n`), 'SOURCE_MALFORMED', 'format version 2'],
      [await file('broken.inc', `${incRows}PRAUTO$${version}$core2-64 = "99"\n`), 'SOURCE_MALFORMED', ':31: not a line of a bitbake-prserv-tool export file'],
      [cutSqlite, 'SOURCE_UNREADABLE', 'is not a readable sqlite database: database disk image is malformed'],
      // Found mid-import, after batches of its rows were staged.
      [damagedSqlite, 'SOURCE_UNREADABLE', 'is not a readable sqlite database: database disk image is malformed'],
    ];
    for (const [path, code, reason] of cases) {
      const error: unknown = await importFile(path, { batchSize: 10 }).catch((thrown: unknown) => thrown);
      expect(error, path).toBeInstanceOf(DataToolError);
      expect(error, path).toMatchObject({ code, message: expect.stringContaining(reason) });
      expect((error as Error).message.startsWith(path), (error as Error).message).toBe(true);
    }
    expect(await exportText(data, 'json', version)).toBe(before);
  });

  it('reports a file that goes away after it was opened as unreadable, not as a database failure', async () => {
    const version = fresh();
    const path = join(dir, `${version}-gone.inc`);
    await writeFile(path, `PRAUTO$${version}$core2-64$a = "1"\n`);
    const source = await openImportSource(path);
    await rm(path);
    const error: unknown = await importRevisions(data.db, source.rows()).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(DataToolError);
    expect(error).toMatchObject({ code: 'SOURCE_UNREADABLE', message: expect.stringContaining(`cannot read ${path}: ENOENT`) });
    expect(await data.store.maxPackagePr({ version, pkgarch: 'core2-64' })).toBeNull();
  });

  it('round trip: export → import into a fresh store → identical export, in json and in inc', async () => {
    const version = fresh();
    const path = join(dir, `${version}.sqlite3`);
    await writeBitbakeDatabase(path, { PRMAIN: modernRows(version) });
    await importFile(path);
    // One revision held by two checksums, as a chained server's store holds the upstream's.
    const shared = (checksum: string) => ({ version: `${version}-chained`, pkgarch: 'core2-64', checksum, value: '0' });
    expect(await importRevisions(data.db, [shared('s0'), shared('s1')], { allowLower: true })).toMatchObject({ written: true });
    const target = await create(`roundtrip_${kind}`);
    const copy = await openDataStore({ database: target.url });
    cleanups.push(async () => {
      await copy.store.close();
      await target.drop();
    });
    const json = await exportText(data, 'json');
    const inc = await exportText(data, 'inc');
    await writeFile(join(dir, 'all.json'), json);
    await writeFile(join(dir, 'all.inc'), inc);
    // An import stops at a revision its rows give to two checksums; a restore that keeps them says so.
    const refused = await importFile(join(dir, 'all.json'), {}, copy);
    expect(refused.refused).toBe(true);
    expect(new Set(refused.conflicts.map((conflict) => conflict.kind))).toEqual(new Set(['value-shared']));
    const report = await importFile(join(dir, 'all.json'), { allowLower: true }, copy);
    expect(report.rowsNew).toBe(json.split('\n').length - 3);
    expect(await exportText(copy, 'json')).toBe(json);
    expect(await exportText(copy, 'inc')).toBe(inc);
    // The inc file names every row the json does.
    expect(await importFile(join(dir, 'all.inc'), {}, copy)).toMatchObject({ rowsNew: 0, rowsPresent: report.rowsNew, conflictCount: 0 });
  });
});

describe('export formats', () => {
  it('writes what bitbake-prserv-tool import reads, and what prserv import reads back', async () => {
    const rows = [
      { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'aa', value: '0' },
      { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'bb', value: '10' },
      { version: '1.0-r0', pkgarch: 'core2-64', checksum: 'cc', value: '9' },
      { version: '2.0-r0', pkgarch: 'all', checksum: 'dd', value: '1.2' },
    ];
    const text = async (format: ExportFormat) => {
      let out = '';
      for await (const chunk of formatRevisions(Readable.from(rows), format, { history: true, version: null, pkgarch: null })) out += chunk;
      return out;
    };
    const inc = await text('inc');
    expect(inc.split('\n').filter((line) => line && !line.startsWith('#'))).toEqual([
      'PRAUTO$1.0-r0$core2-64$aa = "0"',
      'PRAUTO$1.0-r0$core2-64$bb = "10"',
      'PRAUTO$1.0-r0$core2-64$cc = "9"',
      'PRAUTO_1.0-r0_core2-64 = "10"',
      'PRAUTO$2.0-r0$all$dd = "1.2"',
      'PRAUTO_2.0-r0_all = "1.2"',
    ]);
    expect(await text('csv')).toBe('version,pkgarch,checksum,value\n1.0-r0,core2-64,aa,0\n1.0-r0,core2-64,bb,10\n1.0-r0,core2-64,cc,9\n2.0-r0,all,dd,1.2\n');
    const dir = await mkdtemp(join(tmpdir(), 'prserv-formats-'));
    try {
      for (const format of ['json', 'inc'] as const) {
        const file = join(dir, `rows.${format}`);
        await pipeline(Readable.from([await text(format)]), createWriteStream(file));
        const source = await openImportSource(file);
        const read = [];
        for await (const row of source.rows()) read.push({ version: row.version, pkgarch: row.pkgarch, checksum: row.checksum, value: row.value });
        expect(read).toEqual(rows);
      }
      // An empty export is still a valid document.
      const empty = join(dir, 'empty.json');
      let out = '';
      for await (const chunk of formatRevisions(Readable.from([]), 'json', { history: false, version: null, pkgarch: null })) out += chunk;
      expect(JSON.parse(out)).toMatchObject({ format: 'prserv-export', rows: [] });
      await writeFile(empty, out);
      const source = await openImportSource(empty);
      for await (const row of source.rows()) throw new Error(`unexpected row ${JSON.stringify(row)}`);
      expect(JSON.parse(await readFile(join(dir, 'rows.json'), 'utf8')).rows).toEqual(rows);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to write a key that an inc file cannot spell, or that BitBake would read as an operation', async () => {
    const refusal = async (row: { version: string; pkgarch: string; checksum: string }) => {
      const chunks = formatRevisions(Readable.from([{ ...row, value: '0' }]), 'inc', { history: true, version: null, pkgarch: null });
      return (async () => {
        for await (const _ of chunks);
      })().catch((error: DataToolError) => error);
    };
    expect(await refusal({ version: '1.0$x', pkgarch: 'a', checksum: 'b' })).toMatchObject({ code: 'FORMAT_UNSUITABLE' });
    // BitBake stops at "_remove" (old override syntax) and applies ":append" to the name before it.
    expect(await refusal({ version: '2.0_remove-r0', pkgarch: 'a', checksum: 'b' })).toMatchObject({
      code: 'FORMAT_UNSUITABLE',
      message: expect.stringContaining('"_remove", which BitBake reads as an operation'),
    });
    expect(await refusal({ version: '2.0', pkgarch: 'a', checksum: 'b:append' })).toMatchObject({ code: 'FORMAT_UNSUITABLE' });
    // Only the package's maximum line, PRAUTO_<version>_<pkgarch>, spells this one.
    expect(await refusal({ version: '2.0', pkgarch: 'prepend-arch', checksum: 'b' })).toMatchObject({ code: 'FORMAT_UNSUITABLE' });
    expect(await refusal({ version: '2.0-appendix', pkgarch: 'a', checksum: 'b' })).toBeUndefined();
  });
});
