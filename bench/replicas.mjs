#!/usr/bin/env node
// Several `prserv server` replicas on one PostgreSQL database: 64 connections spread over 3
// replicas against the same load on 1 replica, interleaved, each on a fresh database. Every
// stress check (consistent answers, no value handed out twice) must hold across replicas.
// See bench/README.md.
import { fmt, markdownTable, median, numberList, parseArgs, ratio, writeResults } from './lib/common.mjs';
import { installExitHandlers, runScript, CLOCK_TICKS } from './lib/proc.mjs';
import { runCell } from './lib/stress.mjs';
import { DEFAULT_DATABASE_URL, DEFAULT_SERVER_CLI } from './lib/targets.mjs';
import { prepareRun, RUN_OPTIONS } from './lib/run-setup.mjs';
import { existsSync } from 'node:fs';

const USAGE = `Usage: node bench/replicas.mjs [--quick] [options]

  --quick               smoke run: 1 round, 2 s per run
  --replicas N          servers sharing the database (default 3)
  --connections N       default 64, spread over the replicas
  --packages LIST       default 1,100
  --new LIST            share of new checksums, default 1.0,0.1
  --mode MODE           history (default), nohist, or legacy (no history key: not for BitBake 6.0)
  --duration S          seconds per run (default 5)
  --warmup S            unmeasured warm-up per run, on other packages (default 5; --quick 1)
  --requests N          request cap per run (default 200000)
  --rounds N            repetitions, medians reported (default 3; --quick 1)
  --max-connections N   each server's PostgreSQL pool size (default: the server's default)
  --server-cli PATH     our built CLI (default packages/server/dist/cli.js)
  --stress-cli PATH     the CLI providing "client stress" (default: --server-cli)
  --out PATH            results file (default bench/results/<date>-replicas.json)
  --no-snapshot         run packages/*/dist in place (default: a copy taken at the start)
  --no-write            print only
  --force               run even when a test suite is running

Environment: PRSERV_BENCH_DATABASE_URL (default ${DEFAULT_DATABASE_URL}).`;

const opts = parseArgs(process.argv.slice(2), {
  quick: false,
  replicas: '3',
  connections: '64',
  packages: '1,100',
  new: '1.0,0.1',
  mode: 'history',
  duration: null,
  warmup: null,
  requests: '200000',
  rounds: null,
  ...RUN_OPTIONS,
}, USAGE);

const replicas = Math.max(2, Math.min(8, Number(opts.replicas) || 3));
const connections = Number(opts.connections);
const packagesList = numberList(opts.packages);
const newList = numberList(opts.new);
const duration = Number(opts.duration ?? (opts.quick ? 2 : 5));
const requests = Number(opts.requests);
const warmup = Math.max(0, Math.min(60, Number(opts.warmup ?? (opts.quick ? 1 : 5)) || 0));
const rounds = Math.max(1, Math.min(20, Number(opts.rounds ?? (opts.quick ? 1 : 3))));
const databaseUrl = process.env.PRSERV_BENCH_DATABASE_URL || DEFAULT_DATABASE_URL;
if (!['history', 'nohist', 'legacy'].includes(opts.mode) || !(duration > 0 && duration <= 600) || !(requests > 0) || !(connections > 0)) {
  console.error(USAGE);
  process.exit(2);
}
if ((opts.noSnapshot || opts.serverCli !== DEFAULT_SERVER_CLI) && !existsSync(opts.serverCli)) {
  console.error(`${opts.serverCli} not found: build first (npx -y pnpm@12.4.2 run build)`);
  process.exit(2);
}

installExitHandlers();

async function main() {
  const { stressCli, stress, targets: [target], meta } = await prepareRun(opts, { wanted: ['ours-pg'], databaseUrl, bitbakeDir: null });

  const cells = packagesList.flatMap((packages) => newList.map((newRatio) => ({ packages, newRatio })));
  const runs = [];
  let rotation = 0;
  for (let round = 0; round < rounds; round += 1) {
    for (const cell of cells) {
      const order = rotation % 2 === 0 ? [1, replicas] : [replicas, 1];
      rotation += 1;
      for (const count of order) {
        const load = {
          cli: stressCli,
          connections,
          packages: cell.packages,
          newRatio: cell.newRatio,
          mode: opts.mode,
          requests,
          duration,
        };
        const record = await runCell({ target, load, warmupSeconds: warmup, stress, force: opts.force, startOptions: { replicas: count } });
        runs.push({ round, replicas: count, ...cell, ...record });
        process.stderr.write(
          `round ${round + 1} ${cell.packages}×${cell.newRatio} on ${count} replica(s): ${fmt(record.rps)} req/s, p99 ${fmt(record.latencyMs?.p99, 2)} ms, ` +
            `cpu node ${fmt(record.cpu.serverUsPerReq)} + postgres ${fmt(record.cpu.postgresUsPerReq)} µs/req, ` +
            `${record.exitCode === 0 ? 'checks ok' : `exit ${record.exitCode}${record.failedChecks.length ? `: ${record.failedChecks.join('; ')}` : ''}`}` +
            `${record.disturbed ? ' [disturbed by a test suite or another load]' : ''}${record.stderr ? `\n  ${record.stderr}` : ''}\n`,
        );
      }
    }
  }

  const summary = cells.map((cell) => {
    const pick = (count) => runs.filter((r) => r.replicas === count && r.packages === cell.packages && r.newRatio === cell.newRatio);
    const stats = (list) => ({
      rps: median(list.map((r) => r.rps)),
      p99: median(list.map((r) => r.latencyMs?.p99)),
      nodeUsPerReq: median(list.map((r) => r.cpu.serverUsPerReq)),
      postgresUsPerReq: median(list.map((r) => r.cpu.postgresUsPerReq)),
      allChecksHeld: list.every((r) => r.exitCode === 0 && r.ok),
      disturbed: list.filter((r) => r.disturbed).length,
      failures: list.filter((r) => r.exitCode !== 0).map((r) => `exit ${r.exitCode}${r.errors ? `, ${r.errors} errors` : ''}${r.failedChecks.length ? `, ${r.failedChecks.join('; ')}` : ''}`),
    });
    return { ...cell, one: stats(pick(1)), many: stats(pick(replicas)) };
  });

  const table = markdownTable(
    [
      `cell (${connections} conns × packages × new share)`,
      '1 replica req/s',
      `${replicas} replicas req/s`,
      'ratio',
      `p99 ms 1 / ${replicas}`,
      `CPU µs/req node 1 / ${replicas} (all servers)`,
      `CPU µs/req postgres 1 / ${replicas}`,
      'all checks held',
    ],
    summary.map((s) => [
      `${connections} × ${s.packages} × ${s.newRatio.toFixed(1)}`,
      fmt(s.one.rps),
      fmt(s.many.rps),
      ratio(s.many.rps, s.one.rps),
      `${fmt(s.one.p99, 1)} / ${fmt(s.many.p99, 1)}`,
      `${fmt(s.one.nodeUsPerReq)} / ${fmt(s.many.nodeUsPerReq)}`,
      `${fmt(s.one.postgresUsPerReq)} / ${fmt(s.many.postgresUsPerReq)}`,
      s.one.allChecksHeld && s.many.allChecksHeld ? 'yes' : 'NO',
    ]),
  );
  const failures = summary.flatMap((s) => [
    ...s.one.failures.map((f) => `- ${s.packages}×${s.newRatio} on 1 replica: ${f}`),
    ...s.many.failures.map((f) => `- ${s.packages}×${s.newRatio} on ${replicas} replicas: ${f}`),
  ]);
  const disturbed = summary.reduce((n, s) => n + s.one.disturbed + s.many.disturbed, 0);
  const text = [
    `replicas: ${replicas} servers on one PostgreSQL database vs 1, ${connections} connections, mode ${opts.mode}, ${duration} s per run ` +
      `after a ${warmup} s warm-up, median of ${rounds} round(s), ${meta.cores} cores`,
    '',
    table,
    '',
    `ratio = aggregate req/s of ${replicas} replicas ÷ 1 replica's.`,
    failures.length ? `Failures:\n${failures.join('\n')}` : '',
    disturbed ? `${disturbed} run(s) overlapped a test suite or another load (see the JSON).` : '',
  ].join('\n').trimEnd();
  console.log(`\n${text}`);

  if (!opts.noWrite) {
    const file = writeResults(
      {
        script: 'replicas',
        meta,
        settings: { replicas, connections, duration, warmup, requests, rounds, mode: opts.mode, quick: opts.quick, maxConnections: opts.maxConnections, clockTicks: CLOCK_TICKS },
        summary,
        runs: runs.map(({ stderr, ...r }) => r),
        markdown: text,
      },
      { suffix: opts.quick ? '-replicas-quick' : '-replicas', path: opts.out ?? undefined },
    );
    console.log(`\nraw results: ${file}`);
  }
  const allHeld = summary.every((s) => s.one.allChecksHeld && s.many.allChecksHeld);
  if (!allHeld) process.exitCode = 1;
}


runScript(main);
