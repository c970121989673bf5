// Drives the project's load generator, `prserv client stress`, and reads its JSON summary.
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS, cpuSnapshot, runningTestSuites, runToEnd, waitForQuiet } from './proc.mjs';

/**
 * Checks that `cli` has `client stress`; throws a readable error otherwise (for example when the
 * packages were built before the command existed). Returns its help text and whether it takes
 * `--package-prefix` (needed for warm-ups that stay off the measured packages).
 */
export async function probeStress(cli) {
  const { code, stdout, stderr, timedOut } = await runToEnd(process.execPath, [cli, 'client', 'stress', '--help'], { timeoutMs: 30_000 });
  // An older CLI answers `client stress --help` with the generic client help: look for a stress flag.
  if (code !== 0 || timedOut || !/--new-ratio/.test(stdout + stderr)) {
    throw new Error(
      `${cli} has no working "client stress" (exit ${code}${timedOut ? ', timed out' : ''}).\n` +
        `Build the packages first (see bench/README.md).\n${(stderr || stdout).trim().slice(0, 800)}`,
    );
  }
  return { help: stdout, packagePrefix: stdout.includes('--package-prefix') };
}

/**
 * Runs one load: `prserv client stress --server … --connections C --packages K --new-ratio R
 * --mode M --requests N --duration S --json` (plus `extraArgs`). Resolves with
 * `{ exitCode, result, stderr }`; `result` is the parsed JSON summary or null. Killed after
 * the duration plus `slackMs`.
 */
export async function runStress({ cli, ports, connections, packages, newRatio, mode, requests, duration, extraArgs = [], slackMs = 120_000 }) {
  const args = [cli, 'client', 'stress'];
  for (const port of ports) args.push('--server', `127.0.0.1:${port}`);
  args.push(
    '--connections', String(connections),
    '--packages', String(packages),
    '--new-ratio', String(newRatio),
    '--mode', mode,
    '--requests', String(requests),
    '--duration', String(duration),
    '--json',
    ...extraArgs,
  );
  const { code, stdout, stderr, timedOut } = await runToEnd(process.execPath, args, { timeoutMs: duration * 1000 + slackMs });
  let result = null;
  for (const line of stdout.trim().split('\n').reverse()) {
    try {
      const parsed = JSON.parse(line);
      if (parsed && typeof parsed === 'object' && 'requestsPerSecond' in parsed) {
        result = parsed;
        break;
      }
    } catch {
      // not the summary line
    }
  }
  return { exitCode: timedOut ? 'timeout' : code, result, stderr: stderr.trim().slice(-2000), args: args.slice(1) };
}

/** Established client sockets (as /proc/net/tcp lists them) whose remote port is one of `ports`. */
function clientConnections(ports) {
  let text;
  try {
    text = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return null;
  }
  const wanted = new Set(ports.map((p) => p.toString(16).toUpperCase().padStart(4, '0')));
  let count = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // f[2] is rem_address "0100007F:1F90", f[3] the state (01 = ESTABLISHED)
    if (f.length > 3 && f[3] === '01' && wanted.has(f[2].slice(-4))) count += 1;
  }
  return count;
}

function sampleCpu(pids, database) {
  const snap = cpuSnapshot(pids, database);
  const server = snap.servers.some((t) => t === null) ? null : snap.servers.reduce((a, b) => a + b, 0);
  return { t: performance.now(), server, postgres: snap.postgres?.ticks ?? null };
}

/** Linear interpolation of `key` over time-ordered samples; clamps at both ends. */
function cpuAt(samples, t, key) {
  const usable = samples.filter((x) => x[key] !== null);
  if (usable.length === 0) return null;
  if (t <= usable[0].t) return usable[0][key];
  for (let i = 1; i < usable.length; i += 1) {
    const b = usable[i];
    if (t <= b.t) {
      const a = usable[i - 1];
      return a[key] + ((b[key] - a[key]) * (t - a.t)) / Math.max(1e-9, b.t - a.t);
    }
  }
  return usable[usable.length - 1][key];
}

/**
 * One measured load against a running instance, with the CPU of its server pids and of
 * PostgreSQL counted over the load phase only.
 *
 * The stress tool connects, runs the load (its `durationMs`, timed from the moment every
 * connection is up) and then reads every answer back (test-pr per checksum: as many requests
 * again when every checksum is new). That read-back must not count, so while it runs we sample
 * CPU every 50 ms and watch /proc/net/tcp every 10 ms for the moment all its connections are
 * established: the load window is [that moment, + durationMs], and the CPU at both ends is
 * interpolated between samples. The whole run's CPU is kept too (`cpu.wholeRun`). Every 0.5 s
 * it also looks for test suites, builds and foreign loads (`disturbedBy`).
 */
export async function measure(instance, load) {
  const started = performance.now();
  const samples = [sampleCpu(instance.pids, instance.databaseName ?? null)];
  let loadStart = null;
  let firstSeen = null;
  let ticks = 0;
  const disturbers = new Set();
  const timer = setInterval(() => {
    ticks += 1;
    // A test suite or build that starts and ends inside the measurement must be seen too.
    if (ticks % 50 === 0) for (const line of runningTestSuites()) disturbers.add(line);
    if (loadStart === null) {
      const count = clientConnections(instance.ports);
      if (count !== null && count > 0) {
        firstSeen ??= performance.now();
        if (count >= load.connections) loadStart = performance.now() - 5; // half a poll interval
      }
    }
    if (ticks % 5 === 0) samples.push(sampleCpu(instance.pids, instance.databaseName ?? null));
  }, 10);
  let run;
  try {
    run = await runStress({ ...load, ports: instance.ports });
  } finally {
    clearInterval(timer);
  }
  samples.push(sampleCpu(instance.pids, instance.databaseName ?? null));
  const wallMs = performance.now() - started;
  const r = run.result;
  const requests = r?.requests ?? 0;

  const windowStart = loadStart ?? firstSeen ?? started;
  const windowEnd = r?.durationMs ? windowStart + r.durationMs : samples[samples.length - 1].t;
  const tickUs = 1e6 / CLOCK_TICKS;
  const spent = (key, from, to) => {
    const a = cpuAt(samples, from, key);
    const b = cpuAt(samples, to, key);
    return a === null || b === null ? null : (b - a) * tickUs;
  };
  const serverUs = spent('server', windowStart, windowEnd);
  const postgresUs = spent('postgres', windowStart, windowEnd);
  const perRequest = (us) => (us === null || requests === 0 ? null : us / requests);
  const first = samples[0];
  const last = samples[samples.length - 1];
  const failedChecks = (r?.checks ?? []).filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail ?? ''}`.trim());
  return {
    target: instance.name,
    exitCode: run.exitCode,
    ok: r?.ok ?? false,
    requests,
    errors: r?.errors ?? null,
    durationMs: r?.durationMs ?? null,
    wallMs: Math.round(wallMs),
    rps: r?.requestsPerSecond ?? null,
    latencyMs: r?.latencyMs ?? null,
    failedChecks,
    cpu: {
      serverUs,
      postgresUs,
      serverUsPerReq: perRequest(serverUs),
      postgresUsPerReq: perRequest(postgresUs),
      window: loadStart !== null ? 'load phase' : firstSeen !== null ? 'from first connection' : 'whole run',
      samples: samples.length,
      wholeRun: {
        serverUs: first.server === null || last.server === null ? null : (last.server - first.server) * tickUs,
        postgresUs: first.postgres === null || last.postgres === null ? null : (last.postgres - first.postgres) * tickUs,
      },
    },
    disturbedBy: [...disturbers].slice(0, 5),
    stderr: r ? undefined : run.stderr,
  };
}

/**
 * Warms a fresh instance up (JIT, caches, connection pools) with `seconds` of the same load on
 * packages of their own (`--package-prefix`), so the measured packages stay untouched. Needs a
 * stress tool with `--package-prefix`; returns a note saying what was done.
 */
export async function warmUp(instance, load, seconds, { packagePrefix }) {
  if (!(seconds > 0)) return 'none';
  if (!packagePrefix) return 'skipped: the stress tool has no --package-prefix';
  const prefix = `warmup-${Math.random().toString(36).slice(2, 8)}`;
  const run = await runStress({
    ...load,
    ports: instance.ports,
    duration: seconds,
    // Time, not a request count, ends it: V8 optimizes a path after it has run often enough,
    // and a fast cell would otherwise be measured while still compiling.
    requests: load.requests,
    extraArgs: [...(load.extraArgs ?? []).filter((a, i, all) => a !== '--package-prefix' && all[i - 1] !== '--package-prefix'), '--package-prefix', prefix],
  });
  return run.result ? `${seconds} s, ${run.result.requests} requests on packages ${prefix}*` : `failed (exit ${run.exitCode}): ${run.stderr.slice(0, 200)}`;
}

/**
 * One cell for one target, on a fresh instance: wait until no test suite or foreign load runs,
 * start the instance, warm it up, measure, stop it. A measurement that a test suite or foreign
 * load overlapped is taken again (at most twice more) and otherwise kept, marked `disturbed`.
 * With `force`, nothing is waited for or taken again (but `disturbed` is still noted).
 */
export async function runCell({ target, load, warmupSeconds, stress, force, startOptions }) {
  let record;
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    if (!force) await waitForQuiet();
    const instance = await target.start(startOptions);
    let warmed;
    try {
      warmed = await warmUp(instance, load, warmupSeconds, stress);
      record = await measure(instance, load);
    } finally {
      await instance.stop();
    }
    const disturbers = [...record.disturbedBy, ...runningTestSuites()];
    record = { ...record, warmup: warmed, attempts: attempt, disturbed: disturbers.length > 0, disturbedBy: disturbers.slice(0, 5) };
    if (!record.disturbed || force) return record;
    process.stderr.write(`  ${target.name}: a test suite, a build or another load overlapped the measurement; measuring again\n`);
  }
  return record;
}
