#!/usr/bin/env node
// How allocation cost grows with the size of one package: a single package (version, pkgarch)
// holding about 0, 1,000 and 5,000 rows, loaded with 8 connections asking for new checksums
// only (every request allocates and stores a row). On PostgreSQL the database is never analysed
// (the script checks pg_stat_user_tables and reports it), so the planner works from defaults, as
// on a fresh production database. See bench/README.md.
import { fmt, markdownTable, numberList, parseArgs, writeResults, targetLabel } from './lib/common.mjs';
import { installExitHandlers, runScript, runningTestSuites, waitForQuiet, CLOCK_TICKS } from './lib/proc.mjs';
import { pgConnect, ident } from './lib/pg-mini.mjs';
import { measure, warmUp } from './lib/stress.mjs';
import { DEFAULT_DATABASE_URL, DEFAULT_SERVER_CLI } from './lib/targets.mjs';
import { prepareRun, RUN_OPTIONS } from './lib/run-setup.mjs';
import { openWire } from './lib/wire.mjs';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

const TARGETS = ['bitbake', 'ours-pg', 'ours-embedded'];
const USAGE = `Usage: node bench/growth.mjs [--quick] [options]

  --quick               smoke run: 200 requests per measurement, sizes 0,1000
  --sizes LIST          package sizes (rows) to measure at, default 0,1000,5000
  --connections N       default 8
  --requests N          requests per measurement (each adds one row), default 1000
  --duration S          time bound per measurement, default 10
  --mode MODE           history (default), nohist, or legacy (no history key: not for BitBake 6.0)
  --warmup S            unmeasured warm-up of each fresh server, on other packages (default 1)
  --targets LIST        among ${TARGETS.join(',')} (default: all available; bitbake only with BITBAKE_DIR)
  --max-connections N   our server's PostgreSQL pool size (default: the server's default)
  --server-cli PATH     our built CLI (default packages/server/dist/cli.js)
  --stress-cli PATH     the CLI providing "client stress" (default: --server-cli)
  --out PATH            results file (default bench/results/<date>-growth.json)
  --no-snapshot         run packages/*/dist in place (default: a copy taken at the start)
  --no-write            print only
  --force               run even when a test suite is running

Environment: PRSERV_BENCH_DATABASE_URL (default ${DEFAULT_DATABASE_URL}), BITBAKE_DIR.`;

const opts = parseArgs(process.argv.slice(2), {
  quick: false,
  sizes: null,
  connections: '8',
  requests: null,
  duration: null,
  mode: 'history',
  warmup: '1',
  targets: null,
  ...RUN_OPTIONS,
}, USAGE);

const sizes = numberList(opts.sizes ?? (opts.quick ? '0,1000' : '0,1000,5000')).sort((a, b) => a - b);
const connections = Number(opts.connections);
const requests = Number(opts.requests ?? (opts.quick ? 200 : 1000));
const duration = Number(opts.duration ?? (opts.quick ? 3 : 10));
const databaseUrl = process.env.PRSERV_BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
const bitbakeDir = process.env.BITBAKE_DIR || null;
const history = opts.mode === 'history';
const warmup = Math.max(0, Math.min(60, Number(opts.warmup) || 0));
if (!['history', 'nohist', 'legacy'].includes(opts.mode) || !(duration > 0 && duration <= 600) || !(requests > 0) || sizes.some((s) => s < 0 || s > 1_000_000)) {
  console.error(USAGE);
  process.exit(2);
}
const wanted = opts.targets ? opts.targets.split(',').map((s) => s.trim()) : TARGETS.filter((t) => t !== 'bitbake' || bitbakeDir);
for (const t of wanted) {
  if (!TARGETS.includes(t) || (t === 'bitbake' && !bitbakeDir)) {
    console.error(`target ${t} unknown or unavailable (bitbake needs BITBAKE_DIR)`);
    process.exit(2);
  }
}
if (wanted.some((t) => t.startsWith('ours')) && (opts.noSnapshot || opts.serverCli !== DEFAULT_SERVER_CLI) && !existsSync(opts.serverCli)) {
  console.error(`${opts.serverCli} not found: build first (npx -y pnpm@12.4.2 run build)`);
  process.exit(2);
}

installExitHandlers();

const prefix = `growth-${randomBytes(3).toString('hex')}`;

/** The package the stress tool used: the only one in the database (from a no-history export). */
/** The CLI running `client stress`, once prepareRun has taken the build. */
let stressCli;

async function discoverPackage(port) {
  const wire = await openWire({ port });
  try {
    const answer = await wire.call('export', { version: null, pkgarch: null, checksum: null, colinfo: false, history: false });
    const packages = new Map();
    for (const row of answer.datainfo ?? []) packages.set(`${row.version}\0${row.pkgarch}`, { version: row.version, pkgarch: row.pkgarch });
    return [...packages.values()];
  } finally {
    wire.close();
  }
}

/** Rows of the package: its greatest PR + 1 (values are 0, 1, 2, … when every checksum is new). */
async function packageRows(port, pkg) {
  const wire = await openWire({ port });
  try {
    const { value } = await wire.call('max-package-pr', { version: pkg.version, pkgarch: pkg.pkgarch });
    return value === null || value === undefined ? 0 : Number(String(value).split('.')[0]) + 1;
  } finally {
    wire.close();
  }
}

/** Adds `count` rows to the package with get-pr of fresh checksums over 8 connections. */
async function grow(port, pkg, count) {
  if (count <= 0) return;
  const deadline = Date.now() + 600_000;
  let issued = 0;
  const tag = randomBytes(4).toString('hex');
  await Promise.all(
    Array.from({ length: Math.min(8, count) }, async () => {
      const wire = await openWire({ port });
      try {
        while (issued < count && Date.now() < deadline) {
          issued += 1;
          const params = { version: pkg.version, pkgarch: pkg.pkgarch, checksum: `grow-${tag}-${issued}` };
          await wire.call('get-pr', opts.mode === 'legacy' ? params : { ...params, history });
        }
      } finally {
        wire.close();
      }
    }),
  );
  if (issued < count) throw new Error(`growing the package timed out after ${issued} of ${count} rows`);
}

/** Analysis state of the tables of our PostgreSQL database. */
async function analysisState(url) {
  const pg = await pgConnect(url);
  try {
    return await pg.query(
      'SELECT relname, n_live_tup::int AS live_rows, last_analyze, last_autoanalyze, analyze_count::int, autoanalyze_count::int FROM pg_stat_user_tables ORDER BY relname',
    );
  } finally {
    pg.close();
  }
}

/** Turns autovacuum (and so autoanalyze) off for every table of the bench database. */
async function keepUnanalysed(url) {
  const pg = await pgConnect(url);
  try {
    const tables = await pg.query("SELECT schemaname, relname FROM pg_stat_user_tables");
    for (const t of tables) {
      await pg.query(`ALTER TABLE ${ident(t.schemaname)}.${ident(t.relname)} SET (autovacuum_enabled = false)`);
    }
    return tables.length;
  } finally {
    pg.close();
  }
}

async function main() {
  const run = await prepareRun(opts, { wanted, databaseUrl, bitbakeDir });
  stressCli = run.stressCli;
  const { stress, targets, meta } = run;

  const state = {};
  for (const t of targets) {
    const instance = await t.start();
    state[t.name] = { instance, pkg: null, notes: [] };
    const warmed = await warmUp(instance, { ...load(5_000), extraArgs: [] }, warmup, stress);
    if (warmed !== 'none') state[t.name].notes.push(`warm-up: ${warmed}`);
    if (t.name === 'ours-pg') {
      const n = await keepUnanalysed(instance.databaseUrl);
      state[t.name].notes.push(`autovacuum_enabled=false on ${n} table(s)`);
    }
  }

  const rows = [];
  let rotation = 0;
  for (const size of sizes) {
    const order = targets.map((_, i) => targets[(i + rotation) % targets.length]);
    rotation += 1;
    for (const t of order) {
      const s = state[t.name];
      const port = s.instance.ports[0];
      let before = s.pkg ? await packageRows(port, s.pkg) : 0;
      if (s.pkg && before < size) {
        await grow(port, s.pkg, size - before);
        before = await packageRows(port, s.pkg);
      } else if (!s.pkg && size > 0) {
        // The stress tool names the package; it exists only after a first load. Seed it with one
        // request, learn its name, then grow it.
        await measure(s.instance, load(1));
        s.pkg = await onePackage(port);
        await grow(port, s.pkg, size - (await packageRows(port, s.pkg)));
        before = await packageRows(port, s.pkg);
      }
      if (!opts.force) await waitForQuiet();
      const record = await measure(s.instance, load(requests));
      record.disturbed = runningTestSuites().length > 0;
      if (record.disturbed) s.notes.push(`size ${size}: a test suite or another load overlapped the measurement`);
      if (!s.pkg) s.pkg = await onePackage(port);
      const after = await packageRows(port, s.pkg);
      let analysis = null;
      if (t.name === 'ours-pg') analysis = await analysisState(s.instance.databaseUrl);
      const neverAnalysed = analysis ? analysis.every((r) => r.last_analyze === null && r.last_autoanalyze === null) : null;
      const entry = { size, target: t.name, rowsBefore: before, rowsAfter: after, ...record, neverAnalysed, analysis };
      rows.push(entry);
      process.stderr.write(
        `size ${size} ${t.name}: rows ${before}→${after}, ${fmt(record.rps)} req/s, p99 ${fmt(record.latencyMs?.p99, 2)} ms, ` +
          `cpu ${fmt(record.cpu.serverUsPerReq)} µs/req${t.name === 'ours-pg' ? ` + postgres ${fmt(record.cpu.postgresUsPerReq)}; never analysed: ${neverAnalysed}` : ''}` +
          `${record.exitCode !== 0 ? ` [exit ${record.exitCode}${record.failedChecks.length ? `: ${record.failedChecks.join('; ')}` : ''}]` : ''}\n`,
      );
      if (after - before < Math.min(requests, record.requests) * 0.9) {
        s.notes.push(`size ${size}: the load added ${after - before} rows for ${record.requests} requests (checksums not all new?)`);
      }
    }
  }
  for (const t of targets) await state[t.name].instance.stop();

  const header = ['rows in the package at the start'];
  for (const t of targets) header.push(`${targetLabel(t.name)} req/s`, `${targetLabel(t.name)} p99 ms`, `${targetLabel(t.name)} CPU µs/req`);
  const table = markdownTable(
    header,
    sizes.map((size) => {
      const cells = [];
      const before = new Set();
      for (const t of targets) {
        const r = rows.find((x) => x.size === size && x.target === t.name);
        before.add(r.rowsBefore);
        const cpu = t.name === 'ours-pg' ? `${fmt(r.cpu.serverUsPerReq)} + ${fmt(r.cpu.postgresUsPerReq)}` : fmt(r.cpu.serverUsPerReq);
        cells.push(`${fmt(r.rps)}${r.exitCode !== 0 || r.disturbed ? ' !' : ''}`, fmt(r.latencyMs?.p99, 1), cpu);
      }
      return [[...before].map((n) => fmt(n)).join(' / '), ...cells];
    }),
  );
  const pgRows = rows.filter((r) => r.target === 'ours-pg');
  const analysedNote = pgRows.length
    ? `PostgreSQL never analysed during the run: ${pgRows.every((r) => r.neverAnalysed) ? 'yes' : 'NO'} (pg_stat_user_tables.last_analyze and last_autoanalyze null at every step).`
    : '';
  const notes = targets.flatMap((t) => state[t.name].notes.map((n) => `- ${t.name}: ${n}`));
  const text = [
    `growth: one package, ${connections} connections, all checksums new, mode ${opts.mode}, ${requests} requests per step (bound ${duration} s)`,
    '',
    table,
    '',
    'ours-pg CPU is node + postgres. Every measured request stores a row, so a step ends with up to',
    `${fmt(requests)} rows more than it started with (fewer when the time bound stops it first: rowsAfter in the JSON).`,
    analysedNote,
    notes.length ? `Notes:\n${notes.join('\n')}` : '',
  ].join('\n').trimEnd();
  console.log(`\n${text}`);

  if (!opts.noWrite) {
    const file = writeResults(
      {
        script: 'growth',
        meta,
        settings: { sizes, connections, requests, duration, mode: opts.mode, quick: opts.quick, clockTicks: CLOCK_TICKS, targets: wanted },
        packages: Object.fromEntries(targets.map((t) => [t.name, state[t.name].pkg])),
        rows: rows.map(({ stderr, ...r }) => r),
        markdown: text,
      },
      { suffix: opts.quick ? '-growth-quick' : '-growth', path: opts.out ?? undefined },
    );
    console.log(`\nraw results: ${file}`);
  }
}

function load(count) {
  return {
    cli: stressCli,
    connections: Math.min(connections, count),
    packages: 1,
    newRatio: 1,
    mode: opts.mode,
    requests: count,
    duration,
    extraArgs: ['--package-prefix', prefix],
  };
}

async function onePackage(port) {
  const all = await discoverPackage(port);
  // Warm-up packages live beside ours: keep the ones named after this run's prefix.
  const found = all.length === 1 ? all : all.filter((p) => `${p.version} ${p.pkgarch}`.includes(prefix));
  if (found.length !== 1) {
    throw new Error(`expected one package named after ${prefix}, found ${found.length} among ${all.length}`);
  }
  return found[0];
}


runScript(main);
