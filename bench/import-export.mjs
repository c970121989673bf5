// Bulk data tools at scale: `prserv import` of a large source and `prserv export` of the result,
// on PostgreSQL and on the embedded store. Reports rows/s and the peak RSS of the CLI process (its
// own report at exit; for the embedded store that includes PGlite, which runs inside it).
import { execFileSync } from 'node:child_process';
import { createWriteStream, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, markdownTable, parseArgs, runMetadata, writeResults } from './lib/common.mjs';
import { installExitHandlers, onCleanup, runScript, runToEnd, runningTestSuites, scratchDir, trackDatabase, waitForQuiet } from './lib/proc.mjs';
import { ident, pgQuery, withDatabase } from './lib/pg-mini.mjs';
import { DEFAULT_DATABASE_URL, DEFAULT_SERVER_CLI } from './lib/targets.mjs';

const USAGE = `Usage: node bench/import-export.mjs [options]

  --rows N            rows of the source (default 1000000), over N/10 packages
  --sources LIST      json (prserv's export, streamed), sqlite (a BitBake 6.0 PRMAIN database,
                      made with python3's sqlite3) or both (default json,sqlite)
  --stores LIST       postgres, embedded or both (default postgres,embedded)
  --server-cli PATH   our built CLI (default packages/server/dist/cli.js)
  --no-write          print only
  --force             run even when a test suite is running (figures are then labelled)

Environment: PRSERV_BENCH_DATABASE_URL (default ${DEFAULT_DATABASE_URL}).`;

/** Writes a JSON export of `rows` rows, laid out as prserv export writes it. */
async function writeJsonSource(path, rows) {
  const out = createWriteStream(path);
  out.write('{"format":"prserv-export","formatVersion":1,"history":true,"version":null,"pkgarch":null,"rows":[\n');
  for (let index = 0; index < rows; index += 1) {
    const row = JSON.stringify(rowAt(index));
    if (!out.write(index === rows - 1 ? `${row}\n` : `${row},\n`)) await new Promise((resolve) => out.once('drain', resolve));
  }
  out.end(']}\n');
  await new Promise((resolve) => out.once('finish', resolve));
}

/** Row `index`: ten checksums per package, 64-character checksums as BitBake's. */
function rowAt(index) {
  const checksum = `${index.toString(16).padStart(8, '0')}${'0123456789abcdef'.repeat(4)}`.slice(0, 64);
  return { version: `pkg-${Math.floor(index / 10)}-1.0-r0`, pkgarch: 'core2-64', checksum, value: String(index % 10) };
}

/** A BitBake 6.0 database (lib/prserv/db.py's PRMAIN schema) of the same rows, by python3's sqlite3. */
function writeSqliteSource(path, rows) {
  const script = `
import sqlite3, sys
path, rows = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.execute("CREATE TABLE IF NOT EXISTS PRMAIN (version TEXT NOT NULL, pkgarch TEXT NOT NULL, checksum TEXT NOT NULL, value TEXT, PRIMARY KEY (version, pkgarch, checksum, value))")
tail = '0123456789abcdef' * 4
db.executemany("INSERT INTO PRMAIN VALUES (?, ?, ?, ?)",
  (("pkg-%d-1.0-r0" % (i // 10), "core2-64", ("%08x" % i + tail)[:64], str(i % 10)) for i in range(rows)))
db.commit()
db.close()
`;
  execFileSync('python3', ['-c', script, path, String(rows)], { stdio: 'inherit' });
}

/** Runs the CLI to the end; its wall time and peak RSS. */
async function timed(cli, preload, args) {
  const started = performance.now();
  const result = await runToEnd(process.execPath, ['--import', pathToFileURL(preload).href, cli, ...args], { timeoutMs: 60 * 60_000 });
  const seconds = (performance.now() - started) / 1000;
  const peak = /max-rss-kb (\d+)/.exec(result.stderr);
  if (result.code !== 0 || !peak) throw new Error(`prserv ${args.join(' ')} failed (exit ${result.code}): ${result.stderr}`);
  return { seconds, peakRssMb: Number(peak[1]) / 1024, stdout: result.stdout.trim() };
}

async function newStore(kind, baseUrl, dir, label) {
  if (kind === 'embedded') return join(dir, `store-${label}`);
  const name = `prserv_bench_${process.pid}_${label.replace(/[^a-z0-9]/gi, '_')}`;
  await pgQuery(baseUrl, `CREATE DATABASE ${ident(name)}`);
  const tracked = trackDatabase(baseUrl, name);
  onCleanup(async () => {
    await pgQuery(baseUrl, `DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`);
    tracked.forget();
  });
  return withDatabase(baseUrl, name);
}

runScript(async () => {
  installExitHandlers();
  const options = parseArgs(process.argv.slice(2), { rows: '1000000', sources: 'json,sqlite', stores: 'postgres,embedded', serverCli: DEFAULT_SERVER_CLI, noWrite: false, force: false }, USAGE);
  const rows = Number(options.rows);
  const sources = options.sources.split(',');
  const stores = options.stores.split(',');
  const baseUrl = process.env.PRSERV_BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL;
  if (!options.force) await waitForQuiet();
  const contention = runningTestSuites();
  const dir = scratchDir('import-export');
  const preload = join(dir, 'report-max-rss.mjs');
  writeFileSync(preload, "process.on('exit', () => process.stderr.write(`max-rss-kb ${process.resourceUsage().maxRSS}\\n`));\n");

  const files = {};
  for (const source of sources) {
    const path = join(dir, `source-${source}.${source === 'json' ? 'json' : 'sqlite3'}`);
    process.stderr.write(`writing a ${source} source of ${rows} rows…\n`);
    if (source === 'json') await writeJsonSource(path, rows);
    else writeSqliteSource(path, rows);
    files[source] = { path, bytes: statSync(path).size };
  }

  const results = [];
  for (const store of stores) {
    for (const source of sources) {
      const database = await newStore(store, baseUrl, dir, `${store}-${source}`);
      process.stderr.write(`${store} ← ${source}: import…\n`);
      const imported = await timed(options.serverCli, preload, ['import', files[source].path, '--database', database]);
      if (!imported.stdout.includes(`${rows} new`)) throw new Error(`unexpected import report: ${imported.stdout}`);
      process.stderr.write(`${store}: export…\n`);
      const output = join(dir, `export-${store}-${source}.json`);
      const exported = await timed(options.serverCli, preload, ['export', '--history', '--database', database, '--output', output]);
      results.push({
        store,
        source,
        rows,
        sourceMb: files[source].bytes / 1048576,
        import: { seconds: imported.seconds, rowsPerSecond: rows / imported.seconds, peakRssMb: imported.peakRssMb },
        export: { seconds: exported.seconds, rowsPerSecond: rows / exported.seconds, peakRssMb: exported.peakRssMb, outputMb: statSync(output).size / 1048576 },
      });
    }
  }
  console.log(
    markdownTable(
      ['store', 'source', 'rows', 'import', 'import rows/s', 'import peak RSS', 'export (json)', 'export rows/s', 'export peak RSS'],
      results.map((r) => [
        r.store,
        `${r.source} (${fmt(r.sourceMb)} MB)`,
        fmt(r.rows),
        `${fmt(r.import.seconds, 1)} s`,
        fmt(r.import.rowsPerSecond),
        `${fmt(r.import.peakRssMb)} MB`,
        `${fmt(r.export.seconds, 1)} s`,
        fmt(r.export.rowsPerSecond),
        `${fmt(r.export.peakRssMb)} MB`,
      ]),
    ),
  );
  if (contention.length > 0) console.log(`\nmeasured under contention (--force): ${contention.length} other test or build process(es) ran`);
  if (!options.noWrite) {
    const file = writeResults({ ...(await runMetadata({ databaseUrl: baseUrl })), underContention: contention.length > 0, results }, { suffix: '-import-export' });
    console.log(`\nresults: ${file}`);
  }
});
