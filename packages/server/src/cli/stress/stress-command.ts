import { parseArgs } from 'node:util';
import { checkCommandArguments } from '../arguments.js';
import type { ConfigFile } from '../config-file.js';
import { ConfigError } from '../errors.js';
import type { CliIo } from '../io.js';
import { resolveClientSettings } from '../settings.js';
import { runStress, STRESS_JSON_KEYS, type StressReport, stressExitCode } from './run-stress.js';
import type { StressMode, StressOptions, StressProgress, StressProtocol } from './stress-settings.js';
import { formatCount } from './format-count.js';

/** Options of `prserv client stress`. */
const STRESS_OPTIONS = {
  server: { type: 'string', multiple: true },
  config: { type: 'string' },
  connections: { type: 'string' },
  requests: { type: 'string' },
  duration: { type: 'string' },
  'new-ratio': { type: 'string' },
  packages: { type: 'string' },
  mode: { type: 'string' },
  protocol: { type: 'string' },
  'package-prefix': { type: 'string' },
  pkgarch: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/**
 * `prserv client stress [options]`: runs the load, prints the report (text, or one JSON object
 * with `--json`) and resolves with the exit code: 0 all checks hold and nothing failed, 1 a
 * check failed, 3 no check failed but requests did. Bad options throw (exit 2 in the CLI).
 */
export async function runStressCommand(args: string[], io: CliIo, loadConfig: (path: string) => Promise<ConfigFile>): Promise<number> {
  const options = await parseStressArgs(args, io.env, loadConfig);
  const progress = isTty(io.stderr) ? createProgressLine(io.stderr) : undefined;
  let report: StressReport;
  try {
    report = await runStress({ ...options, ...(progress ? { onProgress: progress.show } : {}) });
  } finally {
    progress?.clear();
  }
  io.stdout.write(options.json ? `${JSON.stringify(stressJson(report))}\n` : formatStressReport(report));
  return stressExitCode(report);
}

/** Parses the options of `prserv client stress` (everything after the word `stress`). */
async function parseStressArgs(
  args: string[],
  env: Readonly<Record<string, string | undefined>>,
  loadConfig: (path: string) => Promise<ConfigFile>,
): Promise<StressOptions & { readonly json: boolean }> {
  checkCommandArguments(args, STRESS_OPTIONS, 'client stress', false);
  const { values } = parseArgs({ args, options: STRESS_OPTIONS, strict: true, allowPositionals: false });
  const file = values.config ? await loadConfig(values.config) : undefined;
  // Each address is checked as the other client commands check theirs; none given: the same default.
  const servers = (values.server ?? [undefined]).map((server) => resolveClientSettings(server, env, file).serverAddr);
  const mode = values.mode;
  if (mode !== undefined && !['history', 'nohist', 'legacy'].includes(mode)) {
    throw new ConfigError(`invalid --mode ${JSON.stringify(mode)}: expected history, nohist or legacy`);
  }
  const integer = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text.trim())) throw new ConfigError(`invalid ${flag} ${JSON.stringify(text)}: expected a positive integer`);
    return Number(text);
  };
  const decimal = (flag: string, text: string | undefined, expected: string) => {
    if (text === undefined) return undefined;
    if (!/^(\d+\.?\d*|\.\d+)$/.test(text.trim())) throw new ConfigError(`invalid ${flag} ${JSON.stringify(text)}: expected ${expected}`);
    return Number(text);
  };
  const options = {
    servers,
    connections: integer('--connections', values.connections),
    requests: integer('--requests', values.requests),
    durationS: decimal('--duration', values.duration, 'seconds, e.g. 60 or 0.5'),
    newRatio: decimal('--new-ratio', values['new-ratio'], 'a number from 0 to 1'),
    packages: integer('--packages', values.packages),
    mode: mode as StressMode | undefined,
    protocol: values.protocol as StressProtocol | undefined,
    packagePrefix: values['package-prefix'],
    pkgarch: values.pkgarch,
  };
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as unknown as StressOptions;
  return { ...defined, json: values.json };
}

/** The `--json` object: exactly {@link STRESS_JSON_KEYS}. */
function stressJson(report: StressReport): Record<(typeof STRESS_JSON_KEYS)[number], unknown> {
  return Object.fromEntries(STRESS_JSON_KEYS.map((key) => [key, report[key]])) as Record<(typeof STRESS_JSON_KEYS)[number], unknown>;
}

/** The readable report: one block of settings, throughput, latency, errors and checks. */
function formatStressReport(report: StressReport): string {
  const number = formatCount;
  const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));
  const servedMode = report.mode === 'legacy' ? ` (served as ${report.servedMode})` : '';
  const cpuPerRequest =
    report.requests > 0 ? `; client CPU ${((report.clientCpuMs * 1000) / report.requests).toFixed(1)} µs/request` : '';
  const width = Math.max(...report.checks.map((check) => check.name.length));
  const lines = [
    `prserv client stress: ${report.mode} mode${servedMode}, ${report.connections} connections to ${report.servers.join(', ')}`,
    `  packages  ${number(report.packages)} (${report.packagePrefix}-0 … ${report.packagePrefix}-${report.packages - 1}, pkgarch ${report.pkgarch}), new-ratio ${report.newRatio}`,
    `  requests  ${number(report.requests)} answered in ${(report.durationMs / 1000).toFixed(2)} s: ${number(report.requestsPerSecond)} req/s${cpuPerRequest}`,
    `  latency   p50 ${ms(report.latencyMs.p50)} ms, p95 ${ms(report.latencyMs.p95)} ms, p99 ${ms(report.latencyMs.p99)} ms, max ${ms(report.latencyMs.max)} ms`,
    `  errors    ${number(report.errors)}${report.firstError ? ` (first: ${report.firstError})` : ''}`,
    '  checks',
    ...report.checks.map((check) => `    ${check.ok ? '✓' : '✗'} ${check.name.padEnd(width)}  ${check.detail}`),
  ];
  const failed = report.checks.filter((check) => !check.ok).length;
  lines.push(
    `  result    ${failed > 0 ? `FAILED: ${failed} check${failed === 1 ? '' : 's'} failed` : report.errors > 0 ? 'ERRORS: checks hold, but requests failed' : 'ok'}`,
  );
  return `${lines.join('\n')}\n`;
}

function isTty(stream: NodeJS.WritableStream): boolean {
  return (stream as { isTTY?: boolean }).isTTY === true;
}

/** One stderr line rewritten in place; cleared at the end so that only the report remains. */
function createProgressLine(stderr: NodeJS.WritableStream): { show: (progress: StressProgress) => void; clear: () => void } {
  let shown = false;
  return {
    show(progress) {
      const seconds = progress.elapsedMs / 1000;
      const rate = seconds > 0 ? Math.round(progress.answered / seconds) : 0;
      stderr.write(
        `\r\x1b[Kstress ${progress.phase}: ${formatCount(progress.answered)}/${formatCount(progress.total)} requests, ${formatCount(rate)}/s, ${progress.errors} errors, ${seconds.toFixed(1)} s`,
      );
      shown = true;
    },
    clear() {
      if (shown) stderr.write('\r\x1b[K');
    },
  };
}
