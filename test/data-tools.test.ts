import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDataStore } from '@prserv/core';
import { type CliResult, runCliProcess, STORE_KINDS, startServerProcess, type TestDatabase } from '@prserv/test-support';
import { legacyHistRows, legacyNohistRows, modernRows, writeBitbakeDatabase } from '../packages/core/test/data/bitbake-fixtures.js';

// The data commands end to end through the built CLI (`pnpm build` first). The import and
// max-guard path runs on both stores; the other commands, whose store-specific parts the core
// suite (packages/core/test/data) covers on both, run on PostgreSQL only: each CLI run on an
// embedded store opens PGlite anew, which costs seconds.

let workDir: string;

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'prserv-data-tools-'));
});

afterAll(async () => {
  await rm(workDir, { recursive: true, force: true });
});

const prserv = (...args: string[]): Promise<CliResult> => runCliProcess(args);

/** Runs a command that must succeed; its stdout. */
async function ok(...args: string[]): Promise<string> {
  const result = await prserv(...args);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

/** A maker of fresh databases of one kind, all dropped once the suite is done. */
function databasesDroppedAfterAll(create: (label: string) => Promise<TestDatabase>, kind: string): (label: string) => Promise<string> {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.drop();
  });
  return async (label) => {
    const database = await create(`${label}_${kind}`);
    databases.push(database);
    return database.url;
  };
}

describe.each(STORE_KINDS)('data commands on $kind', ({ kind, create }) => {
  const newDatabase = databasesDroppedAfterAll(create, kind);

  it('imports a BitBake 5.0 file; dry run and a refused lowering import write nothing; --allow-lower does', async () => {
    const target = await newDatabase('cli_import');
    const version = `1.0-r0-${randomUUID().slice(0, 8)}`;
    const legacy = join(workDir, `${kind}-legacy.sqlite3`);
    await writeBitbakeDatabase(legacy, { PRMAIN_nohist: legacyNohistRows(version) });
    const dry = await ok('import', legacy, '--database', target, '--dry-run');
    expect(dry).toMatch(/^dry run: 16 rows read, 16 new \(2 new packages\), 0 already present, 0 skipped, 0 conflicts; nothing written/m);
    // Still 16 new: the dry run wrote nothing.
    expect(await ok('import', legacy, '--database', target)).toMatch(/^import: 16 rows read, 16 new \(2 new packages\).*written to/m);
    const before = await ok('export', '--database', target, '--format', 'csv', '--history');
    expect(before.split('\n')).toHaveLength(18);

    const restarted = join(workDir, `${kind}-restarted.sqlite3`);
    await writeBitbakeDatabase(restarted, { PRMAIN: [[version, 'core2-64', 'c0', '0'], [version, 'core2-64', 'fresh', '5']] });
    const refused = await prserv('import', restarted, '--database', target);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain(`conflict lowers-checksum: ${version} core2-64 c0 = 0 (the store has it from 4)`);
    expect(refused.stdout).toMatch(/1 conflicts; stopped: nothing written/);
    expect(await ok('export', '--database', target, '--format', 'csv', '--history')).toBe(before);

    const allowed = JSON.parse(await ok('import', restarted, '--database', target, '--allow-lower', '--json'));
    expect(allowed).toMatchObject({ rowsNew: 2, conflictCount: 1, written: true, refused: false });
  });

});

describe.each(STORE_KINDS.filter(({ kind }) => kind === 'postgres'))('data commands on $kind', ({ kind, create }) => {
  const newDatabase = databasesDroppedAfterAll(create, kind);

  it('round trip through the CLI: export json → import into a fresh store → identical export; inc reads back', async () => {
    const source = await newDatabase('cli_source');
    const version = `2.0-r0-${randomUUID().slice(0, 8)}`;
    const files = {
      modern: join(workDir, `${kind}-modern.sqlite3`),
      hist: join(workDir, `${kind}-hist.sqlite3`),
    };
    await writeBitbakeDatabase(files.modern, { PRMAIN: modernRows(version) }, { wal: true });
    await writeBitbakeDatabase(files.hist, { PRMAIN_hist: legacyHistRows(`${version}-h`) });
    await ok('import', files.modern, files.hist, '--database', source);
    const exported = join(workDir, `${kind}-export.json`);
    expect(await ok('export', '--database', source, '--history', '--output', exported)).toBe('');
    const json = await readFile(exported, 'utf8');
    expect(JSON.parse(json).rows).toHaveLength(26);

    const copy = await newDatabase('cli_copy');
    await ok('import', exported, '--database', copy);
    expect(await ok('export', '--database', copy, '--history')).toBe(json);

    const inc = join(workDir, `${kind}-export.inc`);
    await ok('export', '--database', source, '--history', '--format', 'inc', '--output', inc);
    const incText = await readFile(inc, 'utf8');
    expect(incText).toContain(`PRAUTO$${version}$armv8a$m0 = "11"\n`);
    expect(incText).toContain(`PRAUTO_${version}_armv8a = "11"\n`);
    const again = JSON.parse(await ok('import', inc, '--database', copy, '--json'));
    expect(again).toMatchObject({ rowsRead: 26, rowsNew: 0, rowsPresent: 26, conflictCount: 0 });

    // Without --history, as BitBake's export: the rows at each package's greatest PR.
    const latest = await ok('export', '--database', source, '--format', 'csv', '--version', version);
    expect(latest).toBe(`version,pkgarch,checksum,value\n${version},armv8a,m0,11\n`);
  });

  it("reports a damaged source as the source's error (exit code 1) and writes nothing", async () => {
    const target = await newDatabase('cli_bad_source');
    const version = `5.0-r0-${randomUUID().slice(0, 8)}`;
    const good = join(workDir, `${kind}-good.sqlite3`);
    await writeBitbakeDatabase(good, { PRMAIN_nohist: legacyNohistRows(version) });
    await ok('import', good, '--database', target);
    const before = await ok('export', '--database', target, '--history');

    // The store's own export, renamed to a version it lacks (every row new), cut in the middle.
    const renamed = before.replaceAll(version, `${version}-new`);
    const cut = join(workDir, `${kind}-cut.json`);
    await writeFile(cut, renamed.slice(0, renamed.indexOf('"checksum"', renamed.length / 2) + 5));
    const json = await prserv('import', cut, '--database', target);
    expect(json.code).toBe(1);
    expect(json.stderr).toMatch(new RegExp(`^prserv: ${cut.replaceAll('.', '\\.')}:\\d+: not valid JSON`, 'm'));
    expect(json.stderr).not.toContain('database');

    // As `head -c 4096 FILE`: sql.js's error, once with a stack trace.
    const truncated = join(workDir, `${kind}-truncated.sqlite3`);
    await writeFile(truncated, (await readFile(good)).subarray(0, 4096));
    const sqlite = await prserv('import', truncated, '--database', target);
    expect(sqlite.code).toBe(1);
    expect(sqlite.stderr).toBe(`prserv: ${truncated} is not a readable sqlite database: database disk image is malformed\n`);

    expect(await ok('export', '--database', target, '--history')).toBe(before);
  });

  it('imports every row of a running server with --from-server, or from its export answer saved by client export --json', async () => {
    const serverDb = await newDatabase('cli_served');
    const version = `3.0-r0-${randomUUID().slice(0, 8)}`;
    const file = join(workDir, `${kind}-served.sqlite3`);
    await writeBitbakeDatabase(file, { PRMAIN: modernRows(version) });
    await ok('import', file, '--database', serverDb);
    const expected = await ok('export', '--database', serverDb, '--history');
    const server = await startServerProcess({ database: serverDb });
    try {
      const target = await newDatabase('cli_pulled');
      expect(await ok('import', '--from-server', server.address, '--database', target)).toMatch(/15 new \(2 new packages\)/);
      expect(await ok('export', '--database', target, '--history')).toBe(expected);

      const saved = join(workDir, `${kind}-export-answer.json`);
      await writeFile(saved, await ok('client', '--server', server.address, '--json', 'export', '--history', '--colinfo'));
      const fromFile = await newDatabase('cli_saved_answer');
      expect(await ok('import', saved, '--database', fromFile)).toMatch(/15 new \(2 new packages\)/);
      expect(await ok('export', '--database', fromFile, '--history')).toBe(expected);
    } finally {
      await server.stop();
    }
  });

  it('verify reports a revision held by two checksums, and notes one an upstream explains', async () => {
    const target = await newDatabase('cli_verify');
    const data = await openDataStore({ database: target });
    try {
      // Without provenance (stored before it was recorded): judged by deeper revisions.
      const unrecorded = [['1.0', 'x', '3'], ['1.0', 'y', '3'], ['2.0', 'u0', '2'], ['2.0', 'u1', '2'], ['2.0', 'u2', '2.0']];
      // With it: what a chained server stores (contract §5: c1 moved to 1, then c5 got the
      // upstream's 1), and a standalone package where a dotted row explains nothing.
      const recorded = [
        ['3.0', 'c1', '0', 'get-pr-nohist-upstream'],
        ['3.0', 'c1', '1', 'get-pr-nohist'],
        ['3.0', 'c5', '1', 'get-pr-nohist-upstream'],
        ['4.0', 'p', '5', 'get-pr-history'],
        ['4.0', 'q', '5', 'get-pr-history'],
        ['4.0', 'r', '5.0', 'import-one'],
      ] as const;
      await data.db
        .insertInto('prserv_revision')
        .values([
          ...unrecorded.map(([version, checksum, value]) => ({ version: version!, pkgarch: 'a', checksum: checksum!, value: value! })),
          ...recorded.map(([version, checksum, value, stored_how]) => ({ version, pkgarch: 'a', checksum, value, stored_how })),
        ])
        .execute();
    } finally {
      await data.store.close();
    }
    const result = await prserv('verify', '--database', target);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      'error (shared-value): 2 revision(s) are held by several checksums of one package, so different builds share a PR: 1.0 a 3 (2 checksums); 4.0 a 5 (2 checksums)',
    );
    expect(result.stdout).toContain('note (shared-value): 2 revision(s) are held by several checksums of packages served through an upstream (a chained server copies upstream revisions): 2.0 a 2 (2 checksums); 3.0 a 1 (2 checksums)');
    const report = JSON.parse((await prserv('verify', '--database', target, '--json')).stdout);
    expect(report).toMatchObject({ rows: 11, packages: 4, ok: false });
  });
});

describe('data commands across stores', () => {
  it('migrate copies a store into an empty one and checks it, and refuses a target with rows', async () => {
    if (STORE_KINDS.length < 2) return;
    const [from, to] = [await STORE_KINDS[1]!.create('migrate_from'), await STORE_KINDS[0]!.create('migrate_to')];
    try {
      const version = `4.0-r0-${randomUUID().slice(0, 8)}`;
      const file = join(workDir, 'migrate.sqlite3');
      await writeBitbakeDatabase(file, { PRMAIN_nohist: legacyNohistRows(version) });
      await ok('import', file, '--database', from.url);
      expect(await ok('migrate', '--from', from.url, '--to', to.url)).toMatch(/^migrate: 16 rows copied .*checked: 16 rows and 2 package maxima match/);
      // The same file imported straight into PostgreSQL is what the copy must hold.
      const direct = await STORE_KINDS[0]!.create('migrate_direct');
      try {
        await ok('import', file, '--database', direct.url);
        expect(await ok('export', '--database', to.url, '--history')).toBe(await ok('export', '--database', direct.url, '--history'));
        const again = await prserv('migrate', '--from', to.url, '--to', direct.url);
        expect(again.code).toBe(1);
        expect(again.stderr).toContain('the target already holds 16 rows');
      } finally {
        await direct.drop();
      }
    } finally {
      await from.drop();
      await to.drop();
    }
  });

  it('explains its commands and refuses mistakes with exit code 2', async () => {
    for (const command of ['import', 'export', 'verify', 'migrate']) {
      expect(await ok(command, '--help')).toMatch(new RegExp(`^Usage: prserv ${command}`));
    }
    const none = await prserv('import');
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nothing to import');
    const format = await prserv('export', '--format', 'xml');
    expect(format.code).toBe(2);
    const unreadable = join(workDir, 'notes.txt');
    await writeFile(unreadable, 'hello\n');
    const refused = await prserv('import', unreadable, '--database', join(workDir, 'never-opened'), '--dry-run');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('is neither a BitBake PR database');
  });
});
