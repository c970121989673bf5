import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, lstat, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, type TestDatabase } from '@prserv/test-support';
import { runInProcess } from './run-in-process.js';

// The data commands in process, on PostgreSQL: where they find the database, and what they print.

let database: TestDatabase;
let dir: string;

beforeAll(async () => {
  database = await createPostgresDatabase('data_commands');
  dir = await mkdtemp(join(tmpdir(), 'prserv-data-commands-'));
});

afterAll(async () => {
  await database?.drop();
  await rm(dir, { recursive: true, force: true });
});

const run = runInProcess;

const incFile = async (name: string, lines: string[]) => {
  const path = join(dir, name);
  await writeFile(path, `${lines.join('\n')}\n`);
  return path;
};

describe('data commands', () => {
  it('find the database as prserv server does: --database, then PRSERV_DATABASE, then the config file', async () => {
    const source = await incFile('one.inc', ['PRAUTO$1.0$a$c0 = "0"', 'PRAUTO$1.0$a$c1 = "1"']);
    const imported = await run(['import', source], { PRSERV_DATABASE: database.url });
    expect(imported.stderr).toContain(`reading bitbake-prserv-tool export file ${source}`);
    expect(imported.stdout).toMatch(/^import: 2 rows read, 2 new \(1 new packages\), 0 already present, 0 skipped, 0 conflicts; written to postgres:/);
    expect(imported.code).toBe(0);

    const config = join(dir, 'prserv.yaml');
    await writeFile(config, `server:\n  database: ${database.url}\n`);
    const exported = await run(['export', '--config', config, '--format', 'csv']);
    expect(exported).toMatchObject({ code: 0, stdout: 'version,pkgarch,checksum,value\n1.0,a,c1,1\n' });

    // The flag wins over the environment.
    const flagged = await run(['export', '--database', database.url, '--format', 'inc', '--history'], { PRSERV_DATABASE: 'pg://nowhere' });
    expect(flagged.stdout).toContain('PRAUTO$1.0$a$c0 = "0"\nPRAUTO$1.0$a$c1 = "1"\nPRAUTO_1.0_a = "1"\n');
  });

  it('refuses a database URL of another scheme, naming where it came from', async () => {
    const result = await run(['verify'], { PRSERV_DATABASE: 'mysql://db/prserv' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('invalid PRSERV_DATABASE: "mysql://" is not a database URL prserv knows');
  });

  /** The URL as the store names it: never with its password. */
  const redacted = (url: string) => {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  };

  it('lists the conflicts of a refused import and says nothing was written', async () => {
    const lowering = await incFile('lower.inc', ['PRAUTO$1.0$a$c1 = "0"', 'PRAUTO$1.0$a$new = "1"']);
    const result = await run(['import', lowering, '--database', database.url]);
    expect(result.code).toBe(1);
    expect(result.stdout.split('\n')).toEqual([
      'conflict lowers-checksum: 1.0 a c1 = 0 (the store has it from 1)',
      'conflict value-taken: 1.0 a new = 1 (checksum c1 holds 1 in the store)',
      `import: 2 rows read, 2 new (0 new packages), 0 already present, 0 skipped, 2 conflicts; stopped: nothing written to ${redacted(database.url)} (--allow-lower writes them anyway)`,
      '',
    ]);
    const dry = await run(['import', lowering, '--database', database.url, '--dry-run', '--json']);
    expect(dry.code).toBe(1);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, refused: true, written: false, conflictCount: 2 });
  });

  it('creates no store where there is none: export, verify, history, freeze, thaw and a migrate source', async () => {
    const missing = join(dir, 'no-store-here');
    const target = join(dir, 'never-made');
    for (const args of [
      ['export', '--database', missing],
      ['verify', '--database', missing],
      ['history', '1.0', 'a', '--database', missing],
      ['freeze', '--list', '--database', missing],
      ['freeze', 'linux-*', '--database', missing],
      ['thaw', 'linux-*', '--database', missing],
      ['migrate', '--from', missing, '--to', target],
    ]) {
      const result = await run(args);
      expect(result.stderr, args.join(' ')).toContain(`no embedded prserv store at ${missing}`);
      expect(result.code, args.join(' ')).toBe(1);
    }
    expect(existsSync(missing)).toBe(false);
    expect(existsSync(target)).toBe(false);

    // A PostgreSQL database without the schema: refused, and left without it.
    const empty = await createPostgresDatabase('data_commands_empty');
    try {
      for (const args of [['verify'], ['freeze', 'linux-*']]) {
        const result = await run([...args, '--database', empty.url]);
        expect(result.stderr, args.join(' ')).toContain(`no prserv store in the PostgreSQL database ${redacted(empty.url)}`);
        expect(result.code, args.join(' ')).toBe(1);
      }
      const client = new pg.Client({ connectionString: empty.url });
      await client.connect();
      try {
        expect((await client.query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).rows).toEqual([]);
      } finally {
        await client.end();
      }
    } finally {
      await empty.drop();
    }
  });

  it('writes --output in place where a rename would replace what is there, and keeps a file’s permissions', async () => {
    const expected = (await run(['export', '--database', database.url, '--format', 'inc'])).stdout;
    expect(expected).toContain('PRAUTO_1.0_a');

    // A FIFO (as /dev/null, a device) stays what it is; its reader gets the export.
    const fifo = join(dir, 'export.fifo');
    execFileSync('mkfifo', [fifo]);
    const chunks: Buffer[] = [];
    const reading = new Promise<void>((resolve, reject) =>
      createReadStream(fifo).on('data', (chunk) => chunks.push(chunk as Buffer)).on('end', resolve).on('error', reject),
    );
    const toFifo = await run(['export', '--database', database.url, '--format', 'inc', '--output', fifo]);
    await reading;
    expect(toFifo.code).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe(expected);
    expect((await lstat(fifo)).isFIFO()).toBe(true);

    // A symbolic link is followed: the link stays, its target gets the export.
    const linked = join(dir, 'linked-export.inc');
    const link = join(dir, 'export-link.inc');
    await symlink(linked, link);
    expect((await run(['export', '--database', database.url, '--format', 'inc', '--output', link])).code).toBe(0);
    expect(await readlink(link)).toBe(linked);
    expect(await readFile(linked, 'utf8')).toBe(expected);

    // A regular file is replaced whole, with the permissions it had.
    const file = join(dir, 'private-export.inc');
    await writeFile(file, 'old');
    await chmod(file, 0o640);
    expect((await run(['export', '--database', database.url, '--format', 'inc', '--output', file])).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(expected);
    expect((await stat(file)).mode & 0o777).toBe(0o640);
    expect(existsSync(`${file}.partial`)).toBe(false);
  });

  it('reports a source it cannot read with exit code 1 and no stack', async () => {
    const result = await run(['import', join(dir, 'missing.sqlite3'), '--database', database.url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^prserv: cannot read .*missing\.sqlite3: ENOENT/);
    expect(result.stderr).not.toContain('    at ');
  });
});
