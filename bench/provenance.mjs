#!/usr/bin/env node
// The write-path cost of provenance: allocations/s of this build against a baseline build without
// it (the previous commit, built in a git worktree), on the same cells, interleaved. Every request
// of a cell stores a row (--new 1.0 by default), so the figure is the cost per allocation; lookups
// do not change. See bench/README.md ("Provenance on the write path").
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fmt, markdownTable, median, numberList, parseArgs, writeResults } from './lib/common.mjs';
import { CLOCK_TICKS, installExitHandlers, runScript } from './lib/proc.mjs';
import { prepareRun, RUN_OPTIONS } from './lib/run-setup.mjs';
import { runCell } from './lib/stress.mjs';
import { createTargets, DEFAULT_DATABASE_URL } from './lib/targets.mjs';

const USAGE = `Usage: node bench/provenance.mjs --baseline-cli PATH [options]

  --baseline-cli PATH     the server CLI of a build without provenance, e.g. the previous commit
                          built in a worktree: /tmp/prserv-baseline/packages/server/dist/cli.js
  --connections LIST      default 8,64
  --packages LIST         default 1,100
  --new LIST              share of new checksums, default 1.0
  --mode MODE             history, nohist (default) or legacy
  --stores LIST           pg,embedded (default both)
  --duration S            seconds per cell and build (default 5)
  --requests N            request cap per cell and build (default 200000)
  --warmup S              unmeasured warm-up per cell and build (default 1)
  --rounds N              repeat, report medians (default 3)
  --server-cli PATH       this build's CLI (default packages/server/dist/cli.js)
  --out PATH, --no-write, --no-snapshot, --force   as for compare.mjs

Environment: PRSERV_BENCH_DATABASE_URL (default ${DEFAULT_DATABASE_URL}).`;

const opts = parseArgs(process.argv.slice(2), {
  baselineCli: null,
  connections: '8,64',
  packages: '1,100',
  new: '1.0',
  mode: 'nohist',
  stores: 'pg,embedded',
  duration: '5',
  requests: '200000',
  warmup: '1',
  rounds: '3',
  ...RUN_OPTIONS,
}, USAGE);

if (!opts.baselineCli || !existsSync(opts.baselineCli)) {
  console.error(`--baseline-cli must name a built server CLI\n\n${USAGE}`);
  process.exit(2);
}
const stores = opts.stores.split(',').map((s) => s.trim());
const databaseUrl = process.env.PRSERV_BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
const duration = Number(opts.duration);
const requests = Number(opts.requests);
const warmup = Math.max(0, Number(opts.warmup) || 0);
const rounds = Math.max(1, Math.min(20, Number(opts.rounds) || 1));

installExitHandlers();

async function main() {
  const wanted = stores.map((store) => `ours-${store}`);
  // This build's targets come from the common set-up (a frozen copy of dist/); the baseline's
  // from its own CLI, whose worktree nothing rebuilds during the run.
  const { stressCli, stress, targets: current, meta } = await prepareRun(opts, { wanted, databaseUrl, bitbakeDir: null });
  const baselineAll = createTargets({ databaseUrl, bitbakeDir: null, serverCli: opts.baselineCli, maxConnections: opts.maxConnections });
  const builds = [];
  for (const [index, name] of wanted.entries()) {
    const baseline = baselineAll[name];
    process.stderr.write(`preparing baseline ${name}…\n`);
    await baseline.prepare();
    builds.push({ store: name, build: 'provenance', target: current[index] }, { store: name, build: 'baseline', target: baseline });
  }

  const cells = [];
  for (const connections of numberList(opts.connections)) {
    for (const packages of numberList(opts.packages)) {
      for (const newRatio of numberList(opts.new)) cells.push({ connections, packages, newRatio });
    }
  }
  const runs = [];
  let step = 0;
  const total = rounds * cells.length * builds.length;
  for (let round = 0; round < rounds; round += 1) {
    for (const [cellIndex, cell] of cells.entries()) {
      for (const store of wanted) {
        // Alternate which build goes first, so drift and warm caches favour neither.
        const pair = builds.filter((b) => b.store === store);
        if ((round + cellIndex) % 2 === 1) pair.reverse();
        for (const { build, target } of pair) {
          step += 1;
          const load = { cli: stressCli, ...cell, mode: opts.mode, requests, duration };
          const record = { round, store, build, ...cell, ...(await runCell({ target, load, warmupSeconds: warmup, stress, force: opts.force })) };
          runs.push(record);
          process.stderr.write(
            `[${step}/${total}] ${cell.connections}×${cell.packages}×${cell.newRatio} ${store} ${build}: ${fmt(record.rps)} req/s, ` +
              `cpu ${fmt(record.cpu.serverUsPerReq)} µs/req${store === 'ours-pg' ? ` + postgres ${fmt(record.cpu.postgresUsPerReq)}` : ''}` +
              `${record.exitCode !== 0 ? ` [exit ${record.exitCode}]` : ''}${record.disturbed ? ' [disturbed]' : ''}\n`,
          );
        }
      }
    }
  }

  const summary = [];
  for (const cell of cells) {
    for (const store of wanted) {
      const of = (build) =>
        runs.filter((r) => r.store === store && r.build === build && r.connections === cell.connections && r.packages === cell.packages && r.newRatio === cell.newRatio);
      const figures = (mine) => ({
        rps: median(mine.map((r) => r.rps)),
        serverUsPerReq: median(mine.map((r) => r.cpu.serverUsPerReq)),
        postgresUsPerReq: median(mine.map((r) => r.cpu.postgresUsPerReq)),
        problems: mine.filter((r) => r.exitCode !== 0 || r.disturbed).length,
      });
      const baseline = figures(of('baseline'));
      const provenance = figures(of('provenance'));
      summary.push({ ...cell, store, baseline, provenance, change: provenance.rps / baseline.rps - 1 });
    }
  }
  const pct = (value) => `${value >= 0 ? '+' : ''}${(value * 100).toFixed(1)} %`;
  const table = markdownTable(
    ['cell (conns × packages × new share)', 'store', 'baseline alloc/s', 'provenance alloc/s', 'change', 'CPU µs/alloc baseline → provenance'],
    summary.map((s) => [
      `${s.connections} × ${s.packages} × ${s.newRatio.toFixed(1)}`,
      s.store,
      `${fmt(s.baseline.rps)}${s.baseline.problems ? ' !' : ''}`,
      `${fmt(s.provenance.rps)}${s.provenance.problems ? ' !' : ''}`,
      pct(s.change),
      s.store === 'ours-pg'
        ? `${fmt(s.baseline.serverUsPerReq)} + ${fmt(s.baseline.postgresUsPerReq)} → ${fmt(s.provenance.serverUsPerReq)} + ${fmt(s.provenance.postgresUsPerReq)} (node + postgres)`
        : `${fmt(s.baseline.serverUsPerReq)} → ${fmt(s.provenance.serverUsPerReq)}`,
    ]),
  );
  console.log(`\nprovenance: mode ${opts.mode}, ${duration} s per cell (cap ${requests}), warm-up ${warmup} s, medians of ${rounds} round(s), ${meta.cores} cores\n`);
  console.log(table);
  if (!opts.noWrite) {
    const file = writeResults(
      {
        script: 'provenance',
        meta,
        settings: { mode: opts.mode, duration, requests, rounds, warmup, baselineCli: basename(dirname(dirname(dirname(dirname(opts.baselineCli))))), clockTicks: CLOCK_TICKS, stores },
        summary,
        runs,
        markdown: table,
      },
      { suffix: '-provenance', path: opts.out ?? undefined },
    );
    console.log(`\nraw results: ${file}`);
  }
}

runScript(main);
