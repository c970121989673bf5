#!/usr/bin/env node
// Compares our PR server (on PostgreSQL and on the embedded store) with BitBake's own PR server
// and with the echo ceiling, over a matrix of connections × packages × share of new checksums.
// Cells are interleaved: each cell runs every target back to back, in an order that rotates from
// cell to cell, each on a fresh database, so the machine's drift hits all targets alike.
// See bench/README.md.
import { numberList, parseArgs, median, fmt, ratio, writeResults, markdownTable, targetLabel } from './lib/common.mjs';
import { installExitHandlers, runScript, CLOCK_TICKS } from './lib/proc.mjs';
import { runCell } from './lib/stress.mjs';
import { DEFAULT_DATABASE_URL, DEFAULT_SERVER_CLI, TARGET_NAMES } from './lib/targets.mjs';
import { prepareRun, RUN_OPTIONS } from './lib/run-setup.mjs';
import { existsSync } from 'node:fs';

const USAGE = `Usage: node bench/compare.mjs [--quick] [options]

  --quick                 smoke run: connections 1,64; 1 s per cell
  --connections LIST      default 1,8,64
  --packages LIST         default 1,100
  --new LIST              share of new checksums, default 1.0,0.1
  --mode MODE             history (default), nohist, or legacy (no history key: not for BitBake 6.0)
  --duration S            seconds per cell and target (default 5; --quick 1)
  --requests N            request cap per cell and target (default 200000; --quick 20000)
  --warmup S              unmeasured warm-up per cell and target, on other packages
                          (default 5; --quick 1; 0 = none)
  --rounds N              repeat the whole matrix N times, report medians (default 1)
  --targets LIST          among ${TARGET_NAMES.join(',')} (default: all available;
                          bitbake only when BITBAKE_DIR is set)
  --max-connections N     our server's PostgreSQL pool size (default: the server's default)
  --server-cli PATH       our built CLI (default packages/server/dist/cli.js)
  --stress-cli PATH       the CLI providing "client stress" (default: --server-cli)
  --out PATH              results file (default bench/results/<date>.json)
  --no-snapshot           run packages/*/dist in place (default: a copy taken at the start)
  --no-write              print only
  --force                 run even when a test suite is running

Environment: PRSERV_BENCH_DATABASE_URL (default ${DEFAULT_DATABASE_URL}),
BITBAKE_DIR (a BitBake checkout, e.g. tag yocto-6.0; enables the bitbake target).`;

const opts = parseArgs(process.argv.slice(2), {
  quick: false,
  connections: null,
  packages: null,
  new: null,
  mode: 'history',
  duration: null,
  requests: null,
  rounds: '1',
  warmup: null,
  targets: null,
  ...RUN_OPTIONS,
}, USAGE);

const connectionsList = numberList(opts.connections ?? (opts.quick ? '1,64' : '1,8,64'));
const packagesList = numberList(opts.packages ?? '1,100');
const newList = numberList(opts.new ?? '1.0,0.1');
const duration = Number(opts.duration ?? (opts.quick ? 1 : 5));
const requests = Number(opts.requests ?? (opts.quick ? 20_000 : 200_000));
const warmup = Math.max(0, Math.min(60, Number(opts.warmup ?? (opts.quick ? 1 : 5)) || 0));
const rounds = Math.max(1, Math.min(20, Number(opts.rounds) || 1));
const databaseUrl = process.env.PRSERV_BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
const bitbakeDir = process.env.BITBAKE_DIR || null;
if (!['history', 'nohist', 'legacy'].includes(opts.mode)) {
  console.error(`--mode must be history, nohist or legacy\n\n${USAGE}`);
  process.exit(2);
}
if (!(duration > 0 && duration <= 600 && requests > 0)) {
  console.error(`--duration must be in (0, 600] and --requests positive\n\n${USAGE}`);
  process.exit(2);
}

installExitHandlers();

const wanted = opts.targets ? opts.targets.split(',').map((s) => s.trim()) : TARGET_NAMES.filter((t) => t !== 'bitbake' || bitbakeDir);
for (const t of wanted) {
  if (!TARGET_NAMES.includes(t)) {
    console.error(`unknown target ${t}; known: ${TARGET_NAMES.join(', ')}`);
    process.exit(2);
  }
  if (t === 'bitbake' && !bitbakeDir) {
    console.error('target bitbake needs BITBAKE_DIR (a BitBake checkout)');
    process.exit(2);
  }
}
if (wanted.some((t) => t.startsWith('ours')) && (opts.noSnapshot || opts.serverCli !== DEFAULT_SERVER_CLI) && !existsSync(opts.serverCli)) {
  console.error(`${opts.serverCli} not found: build first (npx -y pnpm@12.4.2 run build)`);
  process.exit(2);
}

async function main() {
  const { stressCli, stress, targets, meta } = await prepareRun(opts, { wanted, databaseUrl, bitbakeDir });

  const cells = [];
  for (const connections of connectionsList) {
    for (const packages of packagesList) {
      for (const newRatio of newList) cells.push({ connections, packages, newRatio });
    }
  }
  const total = cells.length * targets.length * rounds;
  const runs = [];
  let step = 0;
  let rotation = 0;
  for (let round = 0; round < rounds; round += 1) {
    for (const cell of cells) {
      const order = targets.map((_, i) => targets[(i + rotation) % targets.length]);
      rotation += 1;
      for (const target of order) {
        step += 1;
        const label = `${cell.connections}×${cell.packages}×${cell.newRatio}`;
        const load = {
          cli: stressCli,
          connections: cell.connections,
          packages: cell.packages,
          newRatio: cell.newRatio,
          mode: opts.mode,
          requests,
          duration,
        };
        let record = await runCell({ target, load, warmupSeconds: warmup, stress, force: opts.force });
        record = { round, ...cell, ...record };
        runs.push(record);
        const pg = record.cpu.postgresUsPerReq;
        process.stderr.write(
          `[${step}/${total}] ${label} ${target.name}: ${fmt(record.rps)} req/s, p99 ${fmt(record.latencyMs?.p99, 2)} ms, ` +
            `cpu ${fmt(record.cpu.serverUsPerReq)} µs/req${target.name === 'ours-pg' ? ` + postgres ${fmt(pg)}` : ''}` +
            `${record.exitCode !== 0 && target.name !== 'echo' ? ` [exit ${record.exitCode}${record.failedChecks.length ? `: ${record.failedChecks.join('; ')}` : ''}]` : ''}` +
            `${record.disturbed ? ' [disturbed by a test suite or another load]' : ''}` +
            `${record.stderr ? `\n  ${record.stderr}` : ''}\n`,
        );
      }
    }
  }

  // Median over rounds per cell and target.
  const summary = cells.map((cell) => {
    const per = {};
    for (const target of targets) {
      const mine = runs.filter((r) => r.target === target.name && r.connections === cell.connections && r.packages === cell.packages && r.newRatio === cell.newRatio);
      per[target.name] = {
        rps: median(mine.map((r) => r.rps)),
        p99: median(mine.map((r) => r.latencyMs?.p99)),
        serverUsPerReq: median(mine.map((r) => r.cpu.serverUsPerReq)),
        postgresUsPerReq: median(mine.map((r) => r.cpu.postgresUsPerReq)),
        // Against echo, checks fail by design (its answers are fixed).
        problems: [
          ...(target.name === 'echo' ? [] : mine.filter((r) => r.exitCode !== 0).map((r) => `exit ${r.exitCode}${r.errors ? `, ${r.errors} errors` : ''}${r.failedChecks.length ? `, ${r.failedChecks.join('; ')}` : ''}`)),
          ...mine.filter((r) => r.disturbed).map(() => 'a test suite or another load overlapped the measurement'),
        ],
      };
    }
    return { ...cell, targets: per };
  });

  const markdown = renderTable(summary, targets.map((t) => t.name));
  const notes = summary.flatMap((s) =>
    Object.entries(s.targets).flatMap(([name, t]) => t.problems.map((p) => `- ${s.connections}×${s.packages}×${s.newRatio} ${name}: ${p}`)),
  );
  const text = `${markdown}${notes.length ? `\n\nProblems (marked !):\n${notes.join('\n')}` : ''}`;
  const warmNote = runs.find((r) => r.warmup !== 'none' && !String(r.warmup).endsWith('*'))?.warmup;
  console.log(
    `\ncompare: mode ${opts.mode}, ${duration} s per cell (cap ${requests} requests), warm-up ${warmup} s${warmNote ? ` (${warmNote})` : ''}, ` +
      `${rounds} round(s), ${meta.cores} cores\n`,
  );
  console.log(text);

  if (!opts.noWrite) {
    const file = writeResults(
      {
        script: 'compare',
        meta,
        settings: { mode: opts.mode, duration, requests, rounds, warmup, quick: opts.quick, maxConnections: opts.maxConnections, clockTicks: CLOCK_TICKS, targets: wanted },
        summary,
        runs,
        markdown: text,
      },
      { suffix: opts.quick ? '-quick' : '', path: opts.out ?? undefined },
    );
    console.log(`\nraw results: ${file}`);
  }
}

function renderTable(summary, names) {
  const has = (n) => names.includes(n);
  const header = ['cell (conns × packages × new share)'];
  if (has('bitbake')) header.push('BitBake req/s');
  const withRatio = (name) => (has('bitbake') ? [`${name} req/s`, 'ratio'] : [`${name} req/s`]);
  if (has('ours-pg')) header.push(...withRatio('ours-pg'));
  if (has('ours-embedded')) header.push(...withRatio('ours-embedded'));
  if (has('echo')) header.push('echo req/s');
  const p99Names = ['bitbake', 'ours-pg', 'ours-embedded'].filter(has);
  if (p99Names.length) header.push(`p99 ms ${p99Names.map(targetLabel).join(' / ')}`);
  const cpuCols = [];
  if (has('bitbake')) cpuCols.push(['BitBake', (t) => t.bitbake.serverUsPerReq]);
  if (has('ours-pg')) cpuCols.push(['ours-node', (t) => t['ours-pg'].serverUsPerReq], ['ours-postgres', (t) => t['ours-pg'].postgresUsPerReq]);
  if (has('ours-embedded')) cpuCols.push(['embedded', (t) => t['ours-embedded'].serverUsPerReq]);
  if (cpuCols.length) header.push(`CPU µs/req ${cpuCols.map((c) => c[0]).join(' / ')}`);

  const rows = summary.map((s) => {
    const t = s.targets;
    const rps = (n) => `${fmt(t[n].rps)}${t[n].problems.length ? ' !' : ''}`;
    const row = [`${s.connections} × ${s.packages} × ${s.newRatio.toFixed(1)}`];
    if (has('bitbake')) row.push(rps('bitbake'));
    const ours = (name) => (has('bitbake') ? [rps(name), ratio(t[name].rps, t.bitbake.rps)] : [rps(name)]);
    if (has('ours-pg')) row.push(...ours('ours-pg'));
    if (has('ours-embedded')) row.push(...ours('ours-embedded'));
    if (has('echo')) row.push(rps('echo'));
    if (p99Names.length) row.push(p99Names.map((n) => fmt(t[n].p99, 1)).join(' / '));
    if (cpuCols.length) row.push(cpuCols.map(([, get]) => fmt(get(t))).join(' / '));
    return row;
  });
  const table = markdownTable(header, rows);
  return has('bitbake') ? `${table}\n\nratio = req/s of ours ÷ BitBake's in the same cell (above 1: ours is faster).` : table;
}


runScript(main);
