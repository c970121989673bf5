import { ConfigError } from '../errors.js';
import { type AllocationMode, type AnswerLog, type CheckResult, runAnswerChecks } from './answer-checks.js';
import { LoadPhase, type LoadRecord } from './load-phase.js';
import { runQueryPass } from './query-pass.js';
import { resolveStressSettings, type StressMode, type StressOptions, type StressSettings } from './stress-settings.js';

/**
 * The outcome of a stress run. The fields up to `checks` are what `--json` prints, with these
 * exact keys (scripts read them); the rest is for readable output and in-process callers.
 */
export interface StressReport {
  /** Every check holds and no request failed. */
  readonly ok: boolean;
  readonly servers: readonly string[];
  readonly mode: StressMode;
  readonly connections: number;
  readonly packages: number;
  readonly newRatio: number;
  /** Requests of the load that were answered with a PR. */
  readonly requests: number;
  /** Failed requests and connections: invoke-errors, drops, refused connects, odd answers. */
  readonly errors: number;
  /** The load phase only (not the read-back), in ms. */
  readonly durationMs: number;
  readonly requestsPerSecond: number;
  /** Request latency percentiles over the answered load requests, in ms (0 with no answer). */
  readonly latencyMs: { readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number };
  readonly checks: readonly CheckResult[];
  /** Package versions are `<packagePrefix>-<k>`. */
  readonly packagePrefix: string;
  readonly pkgarch: string;
  /** The first error, for the operator; null without errors. */
  readonly firstError: string | null;
  /** CPU time this process spent during the load phase, in ms (user + system). */
  readonly clientCpuMs: number;
  /** For legacy runs: the mode the server showed for requests without `history`. */
  readonly servedMode: AllocationMode;
}

/** The fields `prserv client stress --json` prints, in order. */
export const STRESS_JSON_KEYS = [
  'ok',
  'servers',
  'mode',
  'connections',
  'packages',
  'newRatio',
  'requests',
  'errors',
  'durationMs',
  'requestsPerSecond',
  'latencyMs',
  'checks',
] as const;

/**
 * Runs a stress load against PR servers and checks every answer (see `runAnswerChecks`):
 * optionally reads the packages' greatest PRs first (given prefix), runs the load, reads back
 * test-pr per checksum and max-package-pr per package, then judges.
 *
 * ```ts
 * const report = await runStress({ servers: ['127.0.0.1:8585'], connections: 8, requests: 400 });
 * if (!report.ok) console.error(report.checks.filter((check) => !check.ok));
 * ```
 * @throws ConfigError when an option is out of range, or a server is read-only.
 */
export async function runStress(options: StressOptions): Promise<StressReport> {
  const settings = resolveStressSettings(options);
  const onProgress = options.onProgress;
  let errors = 0;
  let firstError: string | null = null;
  const noteErrors = (count: number, first: string | null) => {
    errors += count;
    firstError ??= first;
  };

  await refuseReadOnly(settings);
  const baseline = settings.prefixGiven ? await readBaseline(settings, noteErrors) : undefined;

  const cpuBefore = process.cpuUsage();
  const load = await new LoadPhase(settings, onProgress).run();
  const cpu = process.cpuUsage(cpuBefore);
  noteErrors(load.errors, load.firstError);

  // A load that reached no server has nothing to read back (and would only count more refusals).
  const readBack = load.count > 0 || load.checksumNames.length > 0 ? await readBackAnswers(settings, load, noteErrors, onProgress) : undefined;
  const servedMode = settings.mode === 'legacy' ? (readBack?.servedMode ?? inferMode(load)) : settings.mode;
  const modeNote =
    settings.mode !== 'legacy'
      ? undefined
      : readBack?.servedMode
        ? `legacy requests served in ${servedMode === 'history' ? 'history' : 'no-history'} mode, as the server's export says`
        : `legacy requests served in ${servedMode === 'history' ? 'history' : 'no-history'} mode, judging by the answers`;

  const log: AnswerLog = {
    mode: servedMode,
    ...(modeNote ? { modeNote } : {}),
    packageNames: load.packageNames,
    checksumNames: load.checksumNames,
    checksumPackage: load.checksumPackage,
    count: load.count,
    checksumOf: load.checksumOf,
    fresh: load.fresh,
    values: load.values,
    startedAt: load.startedAt,
    endedAt: load.endedAt,
    ...(baseline ? { baseline } : {}),
    failedChecksums: load.failedChecksums,
    ...(load.malformed > 0 ? { malformed: { count: load.malformed, first: load.firstMalformed } } : {}),
    ...(readBack ? { readBack: { testPr: readBack.testPr, maxPackagePr: readBack.maxPackagePr } } : {}),
  };
  const checks = runAnswerChecks(log);
  const durationMs = round(load.durationMs);
  return {
    ok: errors === 0 && checks.every((check) => check.ok),
    servers: settings.servers,
    mode: settings.mode,
    connections: settings.connections,
    packages: settings.packages,
    newRatio: settings.newRatio,
    requests: load.count,
    errors,
    durationMs,
    requestsPerSecond: load.durationMs > 0 ? Math.round((load.count * 1000) / load.durationMs) : 0,
    latencyMs: latencyPercentiles(load),
    checks,
    packagePrefix: settings.packagePrefix,
    pkgarch: settings.pkgarch,
    firstError,
    clientCpuMs: round((cpu.user + cpu.system) / 1000),
    servedMode,
  };
}

/** Exit code of `prserv client stress`: 0 all well, 1 a check failed, 3 only requests failed. */
export function stressExitCode(report: StressReport): number {
  if (report.checks.some((check) => !check.ok)) return 1;
  return report.errors > 0 ? 3 : 0;
}

type NoteErrors = (count: number, first: string | null) => void;

/**
 * Asks every server whether it is read-only. A read-only server stores nothing, so two new
 * checksums may get one PR (docs/protocol.md §6) and the checks do not apply: refused up front.
 * A server that cannot be asked is left to the load, which counts its failures.
 */
async function refuseReadOnly(settings: StressSettings): Promise<void> {
  for (const [index, address] of settings.addresses.entries()) {
    const pass = await runQueryPass([address], 1, ['{"is-readonly": {}}\n'], settings.protocol);
    if ((pass.answers[0] as { readonly?: unknown } | undefined)?.readonly === true) {
      throw new ConfigError(`${settings.servers[index]} is read-only (for this client): stress allocates PRs, so it needs a server that stores them`);
    }
  }
}

/** max-package-pr of every package before the load; undefined where it could not be read. */
async function readBaseline(settings: StressSettings, noteErrors: NoteErrors): Promise<(string | null | undefined)[]> {
  const lines = packageVersions(settings).map((version) => `{"max-package-pr": {"version": "${version}", "pkgarch": "${settings.pkgarch}"}}\n`);
  const pass = await runQueryPass(settings.addresses, settings.connections, lines, settings.protocol);
  const baseline = pass.answers.map(wireValue);
  noteErrors(pass.errors + baseline.filter((value, index) => value === undefined && pass.answers[index] !== undefined).length, pass.firstError);
  return baseline;
}

interface ReadBack {
  readonly testPr: (string | null | undefined)[];
  readonly maxPackagePr: (string | null | undefined)[];
  /** Legacy runs: the mode the export metainfo names; undefined when unknown. */
  readonly servedMode: AllocationMode | undefined;
}

/** One pass after the load: test-pr of every checksum asked, max-package-pr of every package. */
async function readBackAnswers(
  settings: StressSettings,
  load: LoadRecord,
  noteErrors: NoteErrors,
  onProgress: StressOptions['onProgress'],
): Promise<ReadBack> {
  const versions = packageVersions(settings);
  const flag = settings.mode === 'legacy' ? '' : `, "history": ${settings.mode === 'history'}`;
  const lines: string[] = [];
  for (let checksum = 0; checksum < load.checksumNames.length; checksum += 1) {
    const version = versions[load.checksumPackage[checksum]!]!;
    lines.push(`{"test-pr": {"version": "${version}", "pkgarch": "${settings.pkgarch}", "checksum": "${load.checksumNames[checksum]!}"${flag}}}\n`);
  }
  for (const version of versions) lines.push(`{"max-package-pr": {"version": "${version}", "pkgarch": "${settings.pkgarch}"}}\n`);
  // Legacy requests are served in the server's default mode; its export metainfo names it
  // (PRMAIN_hist or PRMAIN_nohist, docs/protocol.md §4.6). A filter matching nothing keeps it small.
  if (settings.mode === 'legacy') {
    lines.push(`{"export": {"version": "${versions[0]!}", "pkgarch": "${settings.pkgarch}", "checksum": "-", "colinfo": true}}\n`);
  }
  const started = performance.now();
  let answered = 0;
  let failed = 0;
  const progress = onProgress
    ? setInterval(
        () => onProgress({ phase: 'read-back', answered, total: lines.length, errors: failed, elapsedMs: performance.now() - started }),
        250,
      )
    : undefined;
  let pass;
  try {
    pass = await runQueryPass(settings.addresses, settings.connections, lines, settings.protocol, (count, errors) => {
      answered = count;
      failed = errors;
    });
  } finally {
    clearInterval(progress);
  }
  const checksums = load.checksumNames.length;
  const values = pass.answers.slice(0, checksums + versions.length).map(wireValue);
  const odd = values.filter((value, index) => value === undefined && pass.answers[index] !== undefined).length;
  noteErrors(pass.errors + odd, pass.firstError ?? (odd > 0 ? 'read-back answer without a PR value' : null));
  let servedMode: AllocationMode | undefined;
  if (settings.mode === 'legacy') {
    const metainfo = (pass.answers[lines.length - 1] as { metainfo?: { tbl_name?: unknown } } | undefined)?.metainfo;
    servedMode = metainfo?.tbl_name === 'PRMAIN_hist' ? 'history' : metainfo?.tbl_name === 'PRMAIN_nohist' ? 'nohist' : undefined;
  }
  return { testPr: values.slice(0, checksums), maxPackagePr: values.slice(checksums), servedMode };
}

/**
 * The mode legacy answers show when the server would not say: a checksum answered two
 * different values was served in no-history mode.
 */
function inferMode(load: LoadRecord): AllocationMode {
  const first = new Map<number, string>();
  for (let index = 0; index < load.count; index += 1) {
    const seen = first.get(load.checksumOf[index]!);
    if (seen === undefined) first.set(load.checksumOf[index]!, load.values[index]!);
    else if (seen !== load.values[index]) return 'nohist';
  }
  return 'history';
}

/** A PR in an answer (`{"value": "3"}`, legacy `{"value": 3}`, or null); undefined when there is none. */
function wireValue(message: unknown): string | null | undefined {
  if (typeof message !== 'object' || message === null || !('value' in message)) return undefined;
  const { value } = message as { value: unknown };
  if (value === null || typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value);
  return undefined;
}

function packageVersions(settings: StressSettings): string[] {
  return Array.from({ length: settings.packages }, (_, pkg) => `${settings.packagePrefix}-${pkg}`);
}

/** Nearest-rank percentiles of the answered requests' latencies. */
function latencyPercentiles(load: LoadRecord): StressReport['latencyMs'] {
  const count = load.count;
  if (count === 0) return { p50: 0, p95: 0, p99: 0, max: 0 };
  const latencies = new Float64Array(count);
  for (let index = 0; index < count; index += 1) latencies[index] = load.endedAt[index]! - load.startedAt[index]!;
  latencies.sort();
  const rank = (fraction: number) => round(latencies[Math.max(0, Math.ceil(fraction * count) - 1)]!);
  return { p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: round(latencies[count - 1]!) };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
