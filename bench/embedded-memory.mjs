// Memory and start-up time of the embedded store, the zero-setup default: a new store (ready time,
// peak RSS), a reopened idle server (RSS), and the same server under the 64-connection read-heavy
// load (peak RSS). RSS is read from /proc: VmRSS now, VmHWM the peak since the process started.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, markdownTable, parseArgs, runMetadata, writeResults } from './lib/common.mjs';
import { freePort, runScript, scratchDir, startChild, stopChild, waitForQuiet } from './lib/proc.mjs';
import { runStress } from './lib/stress.mjs';
import { DEFAULT_SERVER_CLI } from './lib/targets.mjs';
import { waitUntilServing } from './lib/wire.mjs';

const USAGE = `Usage: node bench/embedded-memory.mjs [options]

  --rounds N          repetitions, medians reported (default 3)
  --idle S            seconds the reopened server sits idle before its RSS is read (default 5)
  --duration S        seconds of load (default 10)
  --server-cli PATH   our built CLI (default packages/server/dist/cli.js)
  --no-write          print only
  --force             run even when a test suite is running`;

/** RSS now and at its peak, in MB, of process `pid`. */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

async function startServer(cli, folder) {
  const port = await freePort();
  const started = performance.now();
  const child = startChild(process.execPath, [cli, 'server', '--database', folder, '--bind', `127.0.0.1:${port}`, '--log-level', 'warn']);
  await waitUntilServing({ port, timeoutMs: 120_000, isAlive: child.alive });
  return { child, port, readyMs: performance.now() - started };
}

async function oneRound(cli, options) {
  const folder = join(scratchDir('embedded-memory'), `store-${Date.now()}`);
  // 1. A new store: initdb, migrations, listening.
  const fresh = await startServer(cli, folder);
  const created = { readyMs: fresh.readyMs, peakMb: memoryOf(fresh.child.pid).peakMb };
  await stopChild(fresh.child);

  // 2. The same folder reopened, then idle.
  const reopened = await startServer(cli, folder);
  await new Promise((resolve) => setTimeout(resolve, options.idle * 1000));
  const idle = { readyMs: reopened.readyMs, rssMb: memoryOf(reopened.child.pid).rssMb };

  // 3. The read-heavy cell of compare.mjs: 64 connections, 100 packages, 10 % new checksums.
  let loadPeakMb = 0;
  const sampler = setInterval(() => {
    loadPeakMb = Math.max(loadPeakMb, memoryOf(reopened.child.pid).rssMb);
  }, 100);
  const load = await runStress({
    cli,
    ports: [reopened.port],
    connections: 64,
    packages: 100,
    newRatio: 0.1,
    mode: 'history',
    requests: 1_000_000,
    duration: options.duration,
  });
  clearInterval(sampler);
  loadPeakMb = Math.max(loadPeakMb, memoryOf(reopened.child.pid).rssMb);
  await stopChild(reopened.child);
  if (!load.result) throw new Error(`the stress run failed (exit ${load.exitCode}): ${load.stderr}`);
  return { created, idle, load: { peakMb: loadPeakMb, requestsPerSecond: load.result.requestsPerSecond, ok: load.result.ok } };
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

runScript(async () => {
  const options = parseArgs(process.argv.slice(2), { rounds: '3', idle: '5', duration: '10', serverCli: DEFAULT_SERVER_CLI, noWrite: false, force: false }, USAGE);
  options.idle = Number(options.idle);
  options.duration = Number(options.duration);
  if (!options.force) await waitForQuiet();
  const rounds = [];
  for (let round = 0; round < Number(options.rounds); round += 1) rounds.push(await oneRound(options.serverCli, options));
  const summary = {
    newStoreReadyMs: median(rounds.map((r) => r.created.readyMs)),
    newStorePeakMb: median(rounds.map((r) => r.created.peakMb)),
    reopenedReadyMs: median(rounds.map((r) => r.idle.readyMs)),
    idleRssMb: median(rounds.map((r) => r.idle.rssMb)),
    loadPeakRssMb: median(rounds.map((r) => r.load.peakMb)),
    loadRequestsPerSecond: median(rounds.map((r) => r.load.requestsPerSecond)),
    allChecksHeld: rounds.every((r) => r.load.ok),
  };
  console.log(
    markdownTable(
      ['new store ready', 'new store peak RSS', 'reopened ready', 'idle RSS', 'RSS under load (64 × 100 × 0.1)', 'req/s under load'],
      [[`${fmt(summary.newStoreReadyMs / 1000, 2)} s`, `${fmt(summary.newStorePeakMb)} MB`, `${fmt(summary.reopenedReadyMs / 1000, 2)} s`, `${fmt(summary.idleRssMb)} MB`, `${fmt(summary.loadPeakRssMb)} MB`, fmt(summary.loadRequestsPerSecond)]],
    ),
  );
  if (!summary.allChecksHeld) process.exitCode = 1;
  if (!options.noWrite) writeResults({ ...(await runMetadata({})), summary, rounds }, { suffix: '-embedded-memory' });
});
